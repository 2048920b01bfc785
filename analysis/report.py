"""`grok report DIR`: one self-contained HTML page (and PNG files) of a finished or running sweep.

The page is readable offline (plotly.js is inlined once), and holds: the
thresholds used and the time resolution, counts of members by status and phase,
the fits (critical train fraction, grokking time against weight decay), every
phase diagram the swept axes allow, one-axis curves, training curves of members
chosen by the data as typical of each phase, progress measures when recorded
(restricted and excluded loss beside train and test loss, the LLC, key-frequency
spectra, the embedding circle, phase diagrams of progress measures; each only
where its columns exist), the table of members and the sweep spec.

PNG copies of the figures are written with kaleido, which needs a Chromium or
Chrome binary (Debian: `apt-get install chromium`; or point BROWSER_PATH at
one). Without it the HTML report is still written and the page and stderr say
why the PNGs are missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import itertools
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from analysis import figures as F
from analysis import progress_figures as PF
from analysis.axes import axes_remembered, axis_scale, axis_title, format_value, replicate_axes, swept_axes
from analysis.columns import RUNNING_STATUS, SWEEP_COLUMN
from analysis.derive import (
    PHASES,
    BootstrapCache,
    Thresholds,
    applicable_views,
    critical_train_fraction,
    representative_members,
    trainer_disagreements,
    weight_decay_exponent,
)
from analysis.errors import AnalysisError
from analysis.figures import select
from analysis.load import Sweep, load_sweep
from grokcore.layout import REPORT_DIR, SNAPSHOT_DIR
from grokcore.location import filesystem, is_uri, strip_file_scheme
from grokcore.progress import columns as col
from grokcore.verdict import ThresholdsError

if TYPE_CHECKING:
    import plotly.graph_objects as go

PROGRESS_LOSS = 0.1
"""Loss level whose first crossing the progress figures mark (restricted loss falls to it before test loss)."""
MAX_PROGRESS_MEMBERS = 4
MAX_PROGRESS_PAIRS = 3
MAX_SUMMARY = 8
SPECTRUM_PHASES = ("grokking", "comprehension", "test_only", "memorisation")
"""The member whose spectrum and circle are drawn: the first of these phases among the representatives."""
SUMMARY_COLUMNS = (
    col.N_KEY,
    col.EMBED_KEY_FRAC,
    col.LOGIT_COS_FVE,
    col.NEURON_FRAC_KEY,
    col.NEURON_FVE_MEAN,
    col.pca_var(0),
    col.QK_MONOTONIC_FRAC,
    col.OV_COPY_FRAC,
    col.OV_COPY_MARGIN,
)
DRAWN_ELSEWHERE = (
    col.RESTRICTED_LOSS,
    col.EXCLUDED_LOSS,
    col.GRID_LOSS,
    "llc/",
    col.EMBED_NORM_PREFIX,
    col.KEY_FREQ_PREFIX,
    *col.PC_PREFIXES,
    "embed/pca_var_",
    "fourier/logit_cos_coef_",
    "fourier/neuron_frac_key_",
    col.QK_HEAD,
    col.QK_MIN_GAP,
)
"""Progress columns the summary figure leaves out: drawn by their own figure, or one of a family of slots."""

MAX_PAIRS = 10
"""At most this many axis pairs get phase diagrams (each pair: two figures per view)."""
MIN_SAMPLED_VALUES = 8
"""An axis with at least this many distinct numeric values and no grid partner is drawn as a scatter."""
MAX_COLOR_VALUES = 8
PNG_WIDTH = 1000

# Axes a grokking paper puts on x when paired with another; the other goes on y.
X_PREFERENCE = ("train_fraction", "exp_m", "addition_fraction", "noise_n", "noise_fraction", "lr", "weight_decay")


@dataclass
class ReportFigure:
    slug: str
    """File name stem of the PNG and HTML id: letters, digits, '_' and '-' only."""
    section: str
    figure: go.Figure
    caption: str = ""
    png: str | None = None


@dataclass
class Report:
    """What goes on the page; built first so that PNG export and the HTML see the same figures."""

    sweep: Sweep
    thresholds: Thresholds
    times: pd.DataFrame
    figures: list[ReportFigure] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def write_report(
    sweep_dir: str | Path | Sequence[str | Path],
    out_dir: str | Path | None = None,
    png: bool = True,
    thresholds: Thresholds | None = None,
    overrides: dict | None = None,
) -> Path:
    """Write `<out_dir>/index.html` (default out_dir: `<first sweep dir>/report`) and, if `png`, one PNG per
    figure under `<out_dir>/png/`. Returns the path of index.html. Members are judged by the spec's thresholds
    (`thresholds:`, the rule `grok status` and the searches use) unless `thresholds` replaces them or
    `overrides` ({field: value}, grok report's options) changes some; the report then says so."""
    locations = [sweep_dir] if isinstance(sweep_dir, (str, Path)) else list(sweep_dir)
    sweep = load_sweep(locations)
    out = Path(out_dir) if out_dir is not None else _default_out_dir(locations[0])
    th = judged_by(sweep, thresholds, overrides or {})
    report = build_report(sweep, th)
    if th != (spec := _spec_thresholds(sweep)):
        report.notes.insert(
            0,
            f"Judged by thresholds other than the spec's: {_differences(th, spec)}; `grok status`, "
            "the runs rows' verdicts and the searches used the spec's.",
        )
    out.mkdir(parents=True, exist_ok=True)
    if png:
        warning = export_pngs(report.figures, out / "png")
        if warning:
            report.notes.append(warning)
            print(f"warning: {warning}", file=sys.stderr)
    members = members_frame(report.times)
    tmp_csv = out / f".{MEMBERS_FILE}.tmp"
    members.to_csv(tmp_csv, index=False)
    os.replace(tmp_csv, out / MEMBERS_FILE)
    index = out / "index.html"
    tmp = out / ".index.html.tmp"
    tmp.write_text(render_html(report), encoding="utf-8")
    os.replace(tmp, index)  # whole or not at all, as every file of the results layout
    return index


def _spec_thresholds(sweep: Sweep) -> Thresholds | None:
    """The spec's thresholds; None where several sweeps disagree (then the caller must give them)."""
    try:
        return sweep.thresholds()
    except AnalysisError:
        return None


def judged_by(sweep: Sweep, thresholds: Thresholds | None, overrides: dict) -> Thresholds:
    """What the report judges by: `thresholds`, else the spec's; `overrides` changes some fields."""
    if thresholds is not None:
        return dataclasses.replace(thresholds, **overrides)
    base = _spec_thresholds(sweep)
    if base is None and not overrides:
        sweep.thresholds()  # raises, naming the sweeps and what each says
    return dataclasses.replace(base or Thresholds(), **overrides)


def _differences(th: Thresholds, spec: Thresholds | None) -> str:
    if spec is None:
        return f"{th} (the sweeps' specs disagree)"
    return ", ".join(
        f"{f.name} {getattr(th, f.name)!r} (spec: {getattr(spec, f.name)!r})"
        for f in dataclasses.fields(th)
        if getattr(th, f.name) != getattr(spec, f.name)
    )


def _default_out_dir(location: str | Path) -> Path:
    if is_uri(location):
        raise AnalysisError(f"{location} is not a local directory: give an output directory (--out) for the report")
    return Path(strip_file_scheme(location)).expanduser() / REPORT_DIR


# ---- content --------------------------------------------------------------------------------


def build_report(
    sweep: Sweep, thresholds: Thresholds, times: pd.DataFrame | None = None, fits: BootstrapCache | None = None
) -> Report:
    """Every figure and table the swept axes allow. Several sweeps loaded together are drawn one sweep at a time
    (their axes need not be crossed with each other's), and a pair of axes gets a phase diagram only if its
    values are crossed (not one axis determined by the other, as task and noise kind may be). `times`: the
    members' derived times when the caller has them (the live report keeps them per member, analysis/watch.py);
    `fits`: the fits' bootstrap intervals kept from an earlier build (the live report's, BootstrapCache)."""
    with axes_remembered():
        return _build_report(sweep, thresholds, times, fits)


def _build_report(
    sweep: Sweep, thresholds: Thresholds, times: pd.DataFrame | None, fits: BootstrapCache | None
) -> Report:
    times = _with_final_metrics(sweep.member_times(thresholds) if times is None else times, sweep.metrics)
    report = Report(sweep=sweep, thresholds=thresholds, times=times, notes=list(sweep.notes))
    placed = times[times["status"] != RUNNING_STATUS]
    disagreements = trainer_disagreements(times)
    if disagreements is not None and len(disagreements):
        shown = ", ".join(disagreements["run_id"].head(5))
        report.notes.append(
            f"{len(disagreements)} member(s) have first crossings of 0.99 that differ from the trainer's "
            f"epoch_train_99 / epoch_test_99 (e.g. {shown}): the metrics table and the runs table disagree; see "
            "the members table"
        )
    unstable = times[times["phase"] == "unstable"]
    if len(unstable):
        report.notes.append(
            f"{len(unstable)} member(s) are flagged unstable: an accuracy reached its threshold and was below it "
            f"again at their last evaluation (train: {int(unstable['train_fell_back'].sum())}, test: "
            f"{int(unstable['test_fell_back'].sum())}); they count as decided but in no Liu et al. phase, and "
            "filtering the members table for 'unstable' lists them"
        )
    if SWEEP_COLUMN in replicate_axes(times):
        groups = [(str(name), {SWEEP_COLUMN: name}) for name in sorted(placed[SWEEP_COLUMN].dropna().unique())]
    else:
        groups = [("", {})]
    for label, where in groups:
        group = select(times, where)
        # one group is every member, so every metrics row (member_times derives each run_id there): no isin
        # over millions of rows
        mine = sweep.metrics[sweep.metrics["run_id"].isin(group["run_id"])] if where else sweep.metrics
        views = [v.name for v in applicable_views(mine)]
        _add_group(report, group, label, views, fits)
        _add_operations(report, group[group["status"] != RUNNING_STATUS], label)

    # Training curves of members the data picks as typical of each phase.
    representatives = representative_members(placed)
    for run_id, phase in zip(representatives["run_id"], representatives["phase"], strict=True):
        fig = F.training_curves(sweep.metrics, sweep.runs, [run_id], thresholds)
        fig.update_layout(title=dict(text=f"a typical member in the {phase} phase: {run_id}"))
        report.figures.append(
            ReportFigure(
                slug=_slug("curves", phase),
                section="Training curves of representative members",
                figure=fig,
                caption=f"{phase}: the member in the middle of its phase by generalisation epoch, then memorisation "
                "epoch; dotted lines: its memorisation and generalisation epochs as counted above",
            )
        )

    if len(sweep.progress) and len(sweep.progress.columns) > 2:
        _add_progress(report, placed, representatives)
    _add_snapshots(report, representatives)
    return report


def _add_snapshots(report: Report, representatives: pd.DataFrame) -> None:
    """Representative members' snapshots over training (analysis.snapshot_figures), where the sweep kept
    any (its snapshots/ folder, local or on an object store). The weights are read by grokcore.snapshots,
    imported only here: analysis itself stays free of torch."""
    locations = [loc for loc in report.sweep.locations if _has_snapshots(loc)]
    if not locations:
        return
    from analysis import snapshot_figures as SF
    from analysis.load import _open
    from grokcore.damage import check_snapshot_files
    from grokcore.snapshots import snapshot_views

    phase_of = dict(zip(representatives["run_id"], representatives["phase"], strict=True))
    for location in locations:
        check_snapshot_files(*_open(location))  # a damaged file is named, not a safetensors traceback
        spectrum, attention = (pd.DataFrame(rows) for rows in snapshot_views(location, list(phase_of)))
        for run_id, phase in phase_of.items():
            label = f"{phase}: {run_id}"
            for rows, draw, what, shows in (
                (spectrum, SF.spectrum_over_snapshots, "spectrum", "the embedding's Fourier spectrum"),
                (
                    attention,
                    SF.attention_over_snapshots,
                    "attention",
                    ("the first layer's attention from the last position"),
                ),
            ):
                if len(rows) and (rows["run_id"] == run_id).any():
                    report.figures.append(
                        ReportFigure(
                            slug=_slug("snapshots", what, phase),
                            section="Snapshots of representative members",
                            figure=draw(rows, run_id, label),
                            caption=f"{label}: {shows} at each snapshot epoch (grok export DIR {run_id} --epoch E "
                            "writes one snapshot out)",
                        )
                    )


def _has_snapshots(location: str) -> bool:
    """Whether a sweep folder (a path or a filesystem URI, as load_sweep shows it) has snapshots/;
    asked with pyarrow, so a sweep without them never imports torch."""
    if not is_uri(location):
        return (Path(strip_file_scheme(location)).expanduser() / SNAPSHOT_DIR).is_dir()
    import pyarrow.fs as pafs

    fs, path = filesystem(location)
    selector = pafs.FileSelector(f"{path}/{SNAPSHOT_DIR}", allow_not_found=True)
    return any(i.base_name.endswith(".safetensors") for i in fs.get_file_info(selector))


def _add_operations(report: Report, placed: pd.DataFrame, label: str) -> None:
    """Power et al.'s figure where a sweep crosses operations (tasks) with train fractions: the smallest
    fraction that generalises within the budget, per operation, counted by this report's rule (a
    held threshold: the `gen_epoch` above), not the trainer's first crossing."""
    from analysis.tasks_figure import min_fraction_figure, smallest_generalising_fraction

    axes = replicate_axes(placed)
    if not {"task", "train_fraction"} <= set(axes) or "gen_epoch" not in placed.columns:
        return
    prefix = f"{label}: " if label else ""
    runs = placed.assign(epoch_generalised=placed["gen_epoch"])
    table = smallest_generalising_fraction(runs)
    report.tables[f"{prefix}Smallest train fraction that generalises, per operation"] = table
    hardest = table.iloc[0]
    figure = min_fraction_figure(runs)
    figure.update_layout(meta={"kind": "operations"})
    report.figures.append(
        ReportFigure(
            slug=_slug(label, "operations__min_train_fraction"),
            section=f"{prefix}Operations: the data each needs",
            figure=figure,
            caption=f"{len(table)} operations; a fraction counts when at least half of its members generalised "
            f"(test accuracy {report.thresholds.test_acc:g} held); the hardest here: {hardest['operation']}",
        )
    )


FINAL_METRICS = ("train/loss", "train/acc", "test/loss", "test/acc")


def _with_final_metrics(times: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """`final/<metric>` for every member: the runs row's when it has one, else (still running) the last
    evaluation's, so the members table shows where each member ended or stands."""
    last = metrics.drop_duplicates("run_id", keep="last").set_index("run_id")
    out = times.copy()
    for metric in FINAL_METRICS:
        column = f"final/{metric}"
        latest = out["run_id"].map(last[metric]) if metric in last.columns else pd.Series(float("nan"), index=out.index)
        known = pd.to_numeric(out[column], errors="coerce") if column in out.columns else latest * float("nan")
        out[column] = known.fillna(latest).astype("float64")
    out.attrs.update(times.attrs)
    return out


def _finite(table: pd.DataFrame, column: str) -> bool:
    return column in table.columns and bool(pd.to_numeric(table[column], errors="coerce").notna().any())


def _add_progress(report: Report, placed: pd.DataFrame, representatives: pd.DataFrame) -> None:
    """The progress section (analysis.progress_figures), each figure only where its columns were recorded:
    restricted and excluded loss beside train and test loss, the LLC, the embedding's Fourier spectrum and
    principal components (the circle) of one representative member, a summary of the other measures, and
    phase diagrams over crossed swept axes of the epoch restricted loss falls to PROGRESS_LOSS and of the
    final LLC."""
    sweep, section = report.sweep, "Progress measures"
    progress = sweep.progress
    with_progress = set(progress["run_id"].unique().tolist())
    phase_of = dict(zip(representatives["run_id"], representatives["phase"], strict=True))
    chosen = [r for r in representatives["run_id"] if r in with_progress][:MAX_PROGRESS_MEMBERS]
    if not chosen:
        chosen = sorted(with_progress)[:3]
    labels = {r: (f"{phase_of[r]}: {r}" if r in phase_of else r) for r in chosen}
    mine = progress[progress["run_id"].isin(chosen)]

    def add(slug: str, fig, caption: str) -> None:
        report.figures.append(ReportFigure(slug=slug, section=section, figure=fig, caption=caption))

    if _finite(mine, col.RESTRICTED_LOSS) and _finite(mine, col.EXCLUDED_LOSS):
        fig = PF.loss_and_progress(progress, sweep.metrics, chosen, threshold=PROGRESS_LOSS, labels=labels)
        leads = []
        for run_id, c in fig.layout.meta["crossings"].items():
            if c.get("restricted") is not None and c.get("test") is not None:
                leads.append(
                    f"{labels[run_id]}: restricted loss ≤ {PROGRESS_LOSS:g} at epoch {c['restricted']:g}, "
                    f"test loss at {c['test']:g} ({c['restricted_lead']:+g} epochs)"
                )
        add(
            "progress__loss",
            fig,
            "train, test, restricted and excluded loss (Nanda et al. 2023) of representative members"
            + (
                "; " + "; ".join(leads)
                if leads
                else f"; no member's restricted and test loss both reach {PROGRESS_LOSS:g}"
            ),
        )
    if _finite(mine, col.LLC_MEAN):
        add(
            "progress__llc",
            PF.llc_curves(
                progress, sweep.metrics, [r for r in chosen if _finite(_member(mine, r), col.LLC_MEAN)], labels=labels
            ),
            "local learning coefficient by SGLD (mean ± std over chains) under train and test loss",
        )

    # The Fourier pictures of one member: the grokking one if any, as it shows the circuit forming.
    spectral = [r for r in chosen if _finite(_member(mine, r), col.embed_norm(1))]
    spectral.sort(
        key=lambda r: SPECTRUM_PHASES.index(phase_of[r]) if phase_of.get(r) in SPECTRUM_PHASES else len(SPECTRUM_PHASES)
    )
    if spectral:
        one = spectral[0]
        add(
            "progress__spectrum",
            PF.frequency_spectrum(progress, one, label=labels[one]),
            f"the embedding's Fourier norms over training of {labels[one]}; x marks the key frequencies",
        )
        bars = PF.frequency_bars(progress, spectral, labels=labels)
        shown = "; ".join(
            f"{labels[r]}: {', '.join(map(str, v['key_frequencies'])) or 'none'} at epoch {v['epoch']}"
            for r, v in bars.layout.meta["shown"].items()
        )
        add("progress__bars", bars, f"key-frequency spectra at each member's last progress epoch ({shown})")
    circled = [
        r for r in spectral + [r for r in chosen if r not in spectral] if _finite(_member(mine, r), col.pc_coord(0, 0))
    ]
    if circled:
        one = circled[0]
        p = _config_value(placed, one, "p")
        fig = PF.embedding_circle(progress, one, p=int(p) if p is not None else None, label=labels[one])
        order = {e: k for e, k in fig.layout.meta["order_freq"].items() if k is not None}
        add(
            "progress__circle",
            fig,
            f"operand embeddings of {labels[one]} on their first two principal components"
            + (
                f", joined in the order t·k mod p of the strongest key frequency (k at each epoch: "
                f"{', '.join(f'{e}: {k}' for e, k in order.items())})"
                if order
                else ""
            ),
        )

    summary = [c for c in SUMMARY_COLUMNS if _finite(mine, c)]
    summary += [
        c
        for c in progress.columns
        if c not in ("run_id", "epoch")
        and not c.startswith(DRAWN_ELSEWHERE)
        and c not in SUMMARY_COLUMNS
        and _finite(mine, c)
    ]
    if summary:
        add(
            "progress__measures",
            F.progress_curves(progress, sweep.metrics, chosen, columns=summary[:MAX_SUMMARY]),
            "further progress measures over epochs under the loss: " + ", ".join(summary[:MAX_SUMMARY]),
        )

    # Phase diagrams of progress measures over crossed swept axes of the members that recorded them.
    measured = placed[placed["run_id"].isin(with_progress)]
    axes = [a for a in replicate_axes(measured) if a != SWEEP_COLUMN]
    pairs = [_orient(a, b) for a, b in itertools.combinations(axes, 2) if _crossed(measured, a, b)][:MAX_PROGRESS_PAIRS]
    values: list[tuple[str, str, dict[str, Any], str]] = []
    if _finite(progress, col.RESTRICTED_LOSS):
        values.append(
            (
                "restricted",
                col.RESTRICTED_LOSS,
                dict(below=PROGRESS_LOSS),
                f"first epoch restricted loss ≤ {PROGRESS_LOSS:g} (median over replicates)",
            )
        )
    if _finite(progress, col.LLC_MEAN):
        values.append(("llc", col.LLC_MEAN, {}, "LLC at each member's last estimate (median over replicates)"))
    for x, y in pairs:
        for name, column, kw, what in values:
            fig = PF.progress_phase_diagram(progress, measured, x, y, column, **kw)
            add(_slug("progress", "phase", x, y, name), fig, f"{axis_title(y)} × {axis_title(x)}: {what}")


def _member(table: pd.DataFrame, run_id: str) -> pd.DataFrame:
    return table[table["run_id"] == run_id]


def _config_value(times: pd.DataFrame, run_id: str, column: str):
    rows = times[times["run_id"] == run_id]
    if column not in rows.columns or rows.empty or pd.isna(rows[column].iloc[0]):
        return None
    return rows[column].iloc[0]


def _fit_table(
    times: pd.DataFrame, fit, axis: str, cache: BootstrapCache | None
) -> tuple[pd.DataFrame, dict[tuple, pd.DataFrame]]:
    """A fit per value of the other swept axes and the same fit pooled over them, one table, each row
    saying which it is (`group`), so the table and the figure's legend name the same numbers; and the
    fits' own rows by their `by` axes, for the one-axis curves to draw (a fit's bootstrap is the costly
    part of a large report: computed once)."""
    per_group = fit(times, cache=cache)
    others = list(per_group.columns[: list(per_group.columns).index("scope")])
    pooled = fit(times, by=[], cache=cache) if others else per_group.iloc[:0]
    raw = {tuple(others): per_group, **({(): pooled} if others else {})}
    rows = []
    for frame in (per_group, pooled):
        for row in frame.to_dict("records"):
            group = ", ".join(f"{a} = {format_value(row[a])}" for a in others if a in row and not pd.isna(row[a]))
            rows.append({"group": group or row["scope"], **{k: v for k, v in row.items() if k not in others}})
    table = pd.DataFrame(rows)
    return table, raw


def _add_group(
    report: Report, times: pd.DataFrame, label: str, views: list[str], cache: BootstrapCache | None = None
) -> None:
    """Fits, phase diagrams and one-axis curves of one sweep (or of everything loaded, when `label` is '')."""
    axes = [a for a in replicate_axes(times) if a != SWEEP_COLUMN]
    prefix = f"{label}: " if label else ""

    # Fits the literature reports, when their axis was swept: per value of the other axes, and pooled.
    fits: dict[str, dict[tuple, pd.DataFrame]] = {}  # kind -> by axes -> rows, drawn again by the curves
    if "train_fraction" in axes:
        table, fits["critical"] = _fit_table(times, critical_train_fraction, "train_fraction", cache)
        report.tables[
            f"{prefix}critical train fraction: where the fraction of replicates that generalised crosses 0.5"
        ] = table
    if "weight_decay" in axes:
        table, fits["power"] = _fit_table(times, weight_decay_exponent, "weight_decay", cache)
        report.tables[
            f"{prefix}generalisation epoch ∝ weight_decay^exponent (Omnigrok: −1), fitted to censored medians"
        ] = table

    # Phase diagrams over every crossed pair of swept axes, in each view.
    pairs = [_orient(a, b) for a, b in itertools.combinations(axes, 2) if _crossed(times, a, b)]
    if len(pairs) > MAX_PAIRS:
        report.notes.append(f"{prefix}{len(pairs)} pairs of swept axes; phase diagrams drawn for the first {MAX_PAIRS}")
        pairs = pairs[:MAX_PAIRS]
    # Sampled axes (random draws, an Optuna search) share no grid cells: each member is a point.
    sampled = [
        _orient(a, b)
        for a, b in itertools.combinations(axes, 2)
        if not _crossed(times, a, b) and _sampled(times, a) and _sampled(times, b)
    ][:MAX_PAIRS]
    if not pairs and not sampled:
        report.notes.append(
            f"{prefix}phase diagrams need two crossed swept axes besides the seed; swept: {', '.join(axes) or 'none'}"
        )
    for view in views:
        for x, y in sampled:
            fig = F.phase_scatter(times, x, y, view=view)
            if label:
                fig.update_layout(title=dict(text=f"{label}: {fig.layout.title.text}"))
            report.figures.append(
                ReportFigure(
                    slug=_slug("scatter", label, view, x, y),
                    section=f"{prefix}Phase diagrams",
                    figure=fig,
                    caption=f"{prefix}{axis_title(y)} × {axis_title(x)}: the phase of each member (sampled axes), "
                    f"{fig.layout.meta['members']} members" + (f", view '{view}'" if view else ""),
                )
            )
    for view in views:
        for x, y in pairs:
            for value in ("phase", "gen_epoch", "fraction_generalised") if not view else ("phase", "gen_epoch"):
                fig = F.phase_diagram(times, x, y, value=value, view=view)
                if label and not fig.layout.meta.get("empty"):
                    fig.update_layout(title=dict(text=f"{label}: {fig.layout.title.text}"))
                report.figures.append(
                    ReportFigure(
                        slug=_slug("phase", label, view, x, y, value),
                        section=f"{prefix}Phase diagrams",
                        figure=fig,
                        caption=_diagram_caption(fig, prefix, view),
                    )
                )

    # One-axis curves, with the fits drawn where they apply, per line when there is one other axis.
    for x in axes:
        if axis_scale(times[x]) == "category":
            continue
        others = [a for a in axes if a != x]
        color = others[0] if len(others) == 1 and times[others[0]].nunique() <= MAX_COLOR_VALUES else None
        fit_time = "power" if x == "weight_decay" else None
        fit_fraction = "critical" if x == "train_fraction" else None
        for value, fit in (("gen_epoch", fit_time), ("fraction_generalised", fit_fraction)):
            # the tables' fits are these (same members, axis, view and value): weight decay against the
            # generalisation epoch, the train fraction against fraction_generalised
            known = fits.get(fit, {}).get((color,) if color else ()) if fit else None
            fig = F.axis_curve(times, x, value=value, fit=fit, color=color, fit_result=known)
            if label and not fig.layout.meta.get("empty"):
                fig.update_layout(title=dict(text=f"{label}: {fig.layout.title.text}"))
            report.figures.append(
                ReportFigure(
                    slug=_slug("curve", label, x, value),
                    section=f"{prefix}One-axis curves",
                    figure=fig,
                    caption=_curve_caption(fig, prefix),
                )
            )


def _diagram_caption(fig, prefix: str, view: str) -> str:
    """What the phase diagram draws, read from the figure itself (so the words cannot drift from it)."""
    meta = fig.layout.meta
    if meta.get("empty"):
        return f"{prefix}{meta['empty']}"
    what = {
        "phase": "phase of the replicates (cell: the phase more replicates fall in than any other, 'mixed' on "
        "a tie, with members in it / members)",
        "gen_epoch": "censored median generalisation epoch (cell: the median, or '> E' when half or more had "
        "not generalised by their last evaluation E, and how many generalised)",
        "fraction_generalised": "fraction of decided replicates that generalised (cell: how many of how many)",
    }.get(meta["value"], F.VALUE_TITLES[meta["value"]])
    pooled = f"; pooled over {', '.join(meta['pooled_over'])}" if meta["pooled_over"] else ""
    return f"{prefix}{axis_title(meta['y'])} × {axis_title(meta['x'])}: {what}{pooled}" + (
        f"; view '{view}'" if view else ""
    )


def _curve_caption(fig, prefix: str) -> str:
    meta = fig.layout.meta
    if meta.get("empty"):
        return f"{prefix}{meta['empty']}"
    lines = f", one line per {meta['color']}" if meta["color"] else ""
    pooled = f", pooled over {', '.join(meta['pooled_over'])}" if meta["pooled_over"] else ""
    text = f"{prefix}{F.VALUE_TITLES[meta['value']]} against {axis_title(meta['x'])}{lines}{pooled}"
    if meta["fit"]:
        drawn, total = meta["fits_drawn"], len(meta["fit_result"])
        kind = "power-law fit" if meta["fit"] == "power" else "critical train fraction"
        if drawn:
            scope = meta["fit_result"][0].get("scope", "")
            text += (
                f"; {kind} drawn for {drawn} of {total} line(s) ({scope}; the same rows as the fits table, "
                "95% bootstrap interval over replicates in the legend)"
            )
        else:
            notes = sorted({r.get("note") for r in meta["fit_result"] if r.get("note")})
            text += f"; no {kind} drawn: {'; '.join(notes) or 'nothing to fit'}"
    return text


def _crossed(times: pd.DataFrame, a: str, b: str) -> bool:
    """More (a, b) combinations than values of either: neither axis determines the other."""
    keys = times[[a, b]]
    if any(keys[c].dtype == object for c in (a, b)):  # only object columns can hold lists (force_adjacent)
        keys = keys.map(lambda v: v if not isinstance(v, list) else tuple(v))
    combos = len(keys.drop_duplicates())
    return combos > max(keys[a].nunique(dropna=False), keys[b].nunique(dropna=False))


def _sampled(times: pd.DataFrame, axis: str) -> bool:
    """A numeric axis with many distinct values: drawn at random (or by a search), not a grid."""
    return axis_scale(times[axis]) != "category" and times[axis].nunique() >= MIN_SAMPLED_VALUES


def _orient(a: str, b: str) -> tuple[str, str]:
    rank = {axis: i for i, axis in enumerate(X_PREFERENCE)}
    if rank.get(b, len(rank)) < rank.get(a, len(rank)):
        return b, a
    return a, b


def _slug(*parts: str) -> str:
    text = "__".join(p for p in parts if p)
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)


# ---- PNG ------------------------------------------------------------------------------------


def export_pngs(figures: list[ReportFigure], directory: Path) -> str | None:
    """Write every figure as a PNG with one kaleido/Chromium session and check that each file is
    there and non-empty (kaleido has been seen to skip one under load without an error): the
    missing ones are tried once more, and any still missing are named in the returned warning."""
    figures = [f for f in figures if not (f.figure.layout.meta or {}).get("empty")]  # a sentence needs no picture
    if not figures:
        return None
    import plotly.io as pio

    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{f.slug}.png" for f in figures]
    for path in paths:  # a stale PNG from an earlier report must not pass for a new one
        path.unlink(missing_ok=True)

    def write(todo: list[int]) -> None:
        pio.write_images(
            [figures[i].figure for i in todo],
            [paths[i] for i in todo],
            width=PNG_WIDTH,
            height=[int(figures[i].figure.layout.height or 450) for i in todo],
        )

    def missing() -> list[int]:
        return [i for i, p in enumerate(paths) if not (p.is_file() and p.stat().st_size > 0)]

    try:
        write(list(range(len(figures))))
        if missing():
            write(missing())
    except Exception as exc:  # noqa: BLE001 - kaleido reports a missing browser in several ways; the HTML must still be written
        reason = " ".join(str(exc).split())[:300]
        return (
            f"PNG export unavailable ({type(exc).__name__}: {reason}). The HTML report is complete; for PNGs "
            "install Chromium (Debian: apt-get install chromium) or set BROWSER_PATH to a Chrome/Chromium binary."
        )
    absent = missing()
    for i, (fig, path) in enumerate(zip(figures, paths, strict=True)):
        if i not in absent:
            fig.png = f"png/{path.name}"
    if absent:
        names = ", ".join(figures[i].slug for i in absent)
        return (
            f"no PNG for {len(absent)} of {len(figures)} figures ({names}): kaleido wrote no file, twice. "
            "The HTML report has them all; run grok report again for the PNGs."
        )
    return None


# ---- HTML -----------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ddd; padding: 2px 6px; }
th { background: #f3f3f3; } .figure { margin: 1.5em 0; } .caption { color: #555; font-size: 0.9em; }
.note { background: #fff6dd; padding: 0.4em 0.8em; border-left: 3px solid #e0b000; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; } .members { max-height: 40em; overflow-y: auto; }
.empty { background: #f3f3f3; padding: 0.8em; border-left: 3px solid #999; }
#members th { cursor: pointer; position: sticky; top: 0; } #members-filter { width: 40em; margin: 0.5em 0; }
"""

# Why a few lines of our own script, not a table library: the page must stay self-contained and offline.
MEMBERS_SCRIPT = """
(function () {
  var table = document.getElementById('members');
  if (!table) return;
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var input = document.getElementById('members-filter');
  var shown = document.getElementById('members-shown');
  function filter() {
    var terms = input.value.toLowerCase().split(/\\s+/).filter(function (t) { return t; });
    var n = 0;
    rows.forEach(function (row) {
      var text = row.textContent.toLowerCase();
      var keep = terms.every(function (t) { return text.indexOf(t) >= 0; });
      row.style.display = keep ? '' : 'none';
      if (keep) n += 1;
    });
    shown.textContent = n + ' of ' + rows.length + ' members shown';
  }
  input.addEventListener('input', filter);
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    th.title = 'click to sort';
    th.addEventListener('click', function () {
      var ascending = th.getAttribute('data-sort') !== 'asc';
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute('data-sort'); });
      th.setAttribute('data-sort', ascending ? 'asc' : 'desc');
      function key(row) {
        var text = row.cells[col].textContent.trim();
        if (text === '\u2014' || text === '') return null;
        var number = Number(text);
        return isNaN(number) ? text.toLowerCase() : number;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;  // missing values last
        var order = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  filter();
})();
"""
MAX_INLINE_MEMBERS = 3000
"""Beyond this many members the table is linked as members.csv instead of inlined: a page of tens of thousands
of rows is slow to open and to sort."""
MEMBERS_FILE = "members.csv"


def render_html(report: Report) -> str:
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    sweep, times, th = report.sweep, report.times, report.thresholds
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>grokking report: {esc(sweep.name)}</title>",
        f"<style>{CSS}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head><body>",
        f"<h1>Grokking report: {esc(sweep.name)}</h1>",
        f"<p>Read from {', '.join(f'<code>{esc(loc)}</code>' for loc in sweep.locations)}.</p>",
        "<h2>What was counted</h2>",
        f"<p>{esc(th.describe())}</p>",
        f"<p>{esc(_resolution_sentence(times))}</p>",
        f"<p>Phases (Liu et al. 2022): {esc(_phase_legend(th))}</p>",
    ]
    for note in report.notes:
        parts.append(f'<p class="note">{esc(note)}</p>')

    parts.append("<h2>Members</h2>")
    parts.append(
        f"<p>{len(times)} member(s); swept axes: {esc(', '.join(swept_axes(times, include_seed=True)) or 'none')}.</p>"
    )
    parts.append(_counts_table(times))

    if report.tables:
        parts.append("<h2>Fits</h2>")
        for title, table in report.tables.items():
            parts.append(f"<h3>{esc(title)}</h3>")
            parts.append(table.to_html(index=False, na_rep="—", float_format=lambda v: f"{v:.4g}", border=0))

    section = None
    for fig in report.figures:
        if fig.section != section:
            section = fig.section
            parts.append(f"<h2>{esc(section)}</h2>")
        if (fig.figure.layout.meta or {}).get("empty"):
            parts.append(f'<p class="empty" id="{esc(fig.slug)}">{esc(fig.caption)}</p>')
            continue
        div = pio.to_html(
            fig.figure,
            full_html=False,
            include_plotlyjs=False,
            div_id=fig.slug,
            config={"responsive": True, "displaylogo": False},
        )
        link = f' — <a href="{esc(fig.png)}">PNG</a>' if fig.png else ""
        parts.append(f'<div class="figure">{div}<div class="caption">{esc(fig.caption)}{link}</div></div>')

    parts.append("<h2>Table of members</h2>")
    parts.append(_members_section(times))
    parts.append("<h2>Sweep spec as run</h2>")
    parts.append(
        f"<pre>{esc(yaml.safe_dump(sweep.spec, sort_keys=False, allow_unicode=True) or '(no sweep.yaml)')}</pre>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def _resolution_sentence(times: pd.DataFrame) -> str:
    intervals = sorted({int(v) for v in times["resolution"].dropna()})
    shown = ", ".join(str(v) for v in intervals) or "unknown"
    return (
        f"Resolution: members were evaluated every {shown} epochs, so each time is an evaluated epoch and is "
        "known to within that interval (the crossing happened after the previous evaluation). Medians over "
        "replicates are censored (Kaplan-Meier): a replicate that never reached a time counts as not yet "
        "there at its last evaluation, so a median is '> E' when half or more never reached it, and every "
        "median is shown with how many replicates reached it."
    )


def _phase_legend(th: Thresholds) -> str:
    return (
        f"grokking: generalised and grokked ({th.grok_rule()}); comprehension: generalised and memorised, "
        "sooner than that; memorisation: train only; confusion: neither, within the budget; unstable: an "
        "accuracy reached its threshold but was below it again at the last evaluation; test_only: test "
        "reached but not train (label noise); diverged: the loss diverged first; undecided: ended or still "
        "running before its budget without both times. A cell of a phase diagram is 'mixed' when its "
        "replicates tie between phases. Censoring: a member that spent its epoch budget without generalising "
        "is censored at that budget (members table: censored, censored_at, epochs_trained); each cell says "
        f"how many of its members are ('3/3 censored at 3,000'), and {F.CENSORED_LEGEND}. Memorisation, "
        "confusion and test_only cells are such statements about the budget: a larger budget can turn them "
        "into grokking."
    )


def _counts_table(times: pd.DataFrame) -> str:
    by_status = times["status"].astype(str).value_counts()
    by_phase = times["phase"].value_counts().reindex(list(PHASES)).dropna().astype(int)

    rows = "".join(f"<tr><td>status</td><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in by_status.items())
    rows += "".join(f"<tr><td>phase</td><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in by_phase.items())
    rows += (
        f"<tr><td>generalised</td><td>test accuracy reached its threshold and held it to the end</td>"
        f"<td>{int(times['generalised'].sum())}</td></tr>"
    )
    rows += (
        f"<tr><td>censored</td><td>spent its epoch budget without generalising</td>"
        f"<td>{int(times['censored'].sum())}</td></tr>"
    )
    return f"<table><tr><th></th><th>value</th><th>members</th></tr>{rows}</table>"


MEMBER_TIME_COLUMNS = (
    "phase",
    "mem_epoch",
    "gen_epoch",
    "delay",
    "relative_delay",
    "train_fell_back",
    "test_fell_back",
    "censored",
    "censored_at",
)


def members_frame(times: pd.DataFrame) -> pd.DataFrame:
    """The members table: swept values, outcome, final train/test loss and accuracy, and the derived times
    (every view's), sorted by the swept values."""
    axes = swept_axes(times, include_seed=True)
    finals = [f"final/{m}" for m in FINAL_METRICS]
    derived = [c for c in times.columns if c.split("/")[-1] in MEMBER_TIME_COLUMNS]
    columns = ["run_id", *axes, "status", *derived, *finals, "epochs_trained", "last_epoch", "resolution"]
    columns = [c for c in dict.fromkeys(columns) if c in times.columns]
    return times[columns].sort_values([*axes, "run_id"] if axes else ["run_id"], na_position="last")


def _members_section(times: pd.DataFrame) -> str:
    table = members_frame(times)
    link = f'<a href="{MEMBERS_FILE}">{MEMBERS_FILE}</a>'
    if len(table) > MAX_INLINE_MEMBERS:
        return (
            f"<p>{len(table)} members: more than {MAX_INLINE_MEMBERS}, so the table is the file {link} beside "
            "this page (one row per member, the columns described here) rather than inlined.</p>"
        )
    html_table = table.to_html(index=False, na_rep="—", float_format=lambda v: f"{v:.4g}", border=0, table_id="members")
    return (
        f"<p>Click a column header to sort; type in the box to keep rows containing every word (e.g. "
        f'"grokking 0.3"). Also as {link}. <span id="members-shown"></span></p>'
        '<input id="members-filter" type="search" placeholder="filter members">'
        f'<div class="members">{html_table}</div><script>{MEMBERS_SCRIPT}</script>'
    )


# ---- command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """`grok report DIR [DIR ...]`: write DIR/report/index.html (and PNGs). Returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="grok report",
        description="Turn a finished or running sweep into an HTML report of grokking times, phases and phase "
        "diagrams (plus PNG figures).",
    )
    parser.add_argument(
        "dirs",
        nargs="+",
        metavar="DIR",
        help="a sweep directory (with sweep.yaml, runs/, metrics/), a results directory holding "
        "several, or a pyarrow filesystem URI; several are combined into one report",
    )
    parser.add_argument("--out", help="output directory (default: DIR/report)")
    parser.add_argument("--no-png", action="store_true", help="skip the PNG files (they need Chromium)")
    defaults = Thresholds()
    spec_says = "; default: the spec's thresholds: block, else"
    parser.add_argument("--threshold", type=float, help="accuracy threshold for both train and test")
    parser.add_argument(
        "--train-threshold",
        type=float,
        default=None,
        help=f"memorisation: train accuracy at or above this ({spec_says} {defaults.train_acc})",
    )
    parser.add_argument(
        "--test-threshold",
        type=float,
        default=None,
        help=f"generalisation: test accuracy at or above this ({spec_says} {defaults.test_acc})",
    )
    parser.add_argument(
        "--grok-delay",
        type=int,
        default=None,
        help="grokked: generalised at least this many epochs after memorising; sooner is "
        f"comprehension ({spec_says} {defaults.grok_delay})",
    )
    parser.add_argument(
        "--grok-ratio",
        type=float,
        default=None,
        help="grokked also needs the delay to be at least this multiple of the memorisation epoch "
        "(relative delay); with --grok-delay 0 only the ratio counts (default: the spec's, "
        "else not required)",
    )
    parser.add_argument(
        "--hold",
        type=int,
        default=None,
        help="an accuracy counts from the first of this many consecutive evaluations at or above its "
        "threshold (or of those left); 1: the first crossing; 0: it must hold until the last "
        f"evaluation ({spec_says} {defaults.hold})",
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="judge every member within this many epochs (default: the spec's, else each member's own budget)",
    )
    from analysis.watch import DEFAULT_EVERY_S, DEFAULT_HOST, DEFAULT_PORT

    parser.add_argument(
        "--watch",
        action="store_true",
        help="serve a live report that is rebuilt as the sweep commits parts (analysis/watch.py); nothing is written",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="--watch: the address to listen on (default: loopback only; 0.0.0.0 shows the report to the network)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"--watch: the port (default {DEFAULT_PORT}; 0: any free one)"
    )
    parser.add_argument(
        "--every",
        type=float,
        default=DEFAULT_EVERY_S,
        help=f"--watch: seconds between checks for new parts (default {DEFAULT_EVERY_S:g})",
    )
    args = parser.parse_args(argv)
    given = {"train_acc": args.threshold, "test_acc": args.threshold}
    given.update(
        {
            k: v
            for k, v in (
                ("train_acc", args.train_threshold),
                ("test_acc", args.test_threshold),
                ("grok_delay", args.grok_delay),
                ("grok_ratio", args.grok_ratio),
                ("hold", args.hold),
                ("budget", args.budget),
            )
            if v is not None
        }
    )
    overrides = {k: v for k, v in given.items() if v is not None}
    try:
        if args.watch:
            from analysis.watch import main_watch

            return main_watch(args, overrides)
        index = write_report(args.dirs, out_dir=args.out, png=not args.no_png, overrides=overrides)
    except (AnalysisError, ThresholdsError) as exc:
        print(f"grok report: error: {exc}", file=sys.stderr)
        return 2
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
