"""`grok report DIR --watch`: the report of a running sweep, rebuilt as parts are committed and served on a port.

    grok report results/mysweep --watch                # http://127.0.0.1:8050/
    grok report s3://bucket/results/mysweep --watch --port 8060 --every 10

A rebuild costs what changed, not the sweep: `PartCache` keeps every part file it has read (by
path, size and modification time from the listing, one listing per table), so a rebuild reads
only the parts that are new or replaced and drops those that are gone (a compaction's merged-away
parts, a resumed sweep's crash leftovers); `TimesCache` keeps each member's derived times and
derives again only the members whose rows came or went; `BootstrapCache` keeps each fit's
bootstrap interval by its members, so only the groups a commit touched (and the pooled fits) are
resampled. Figures and the page are then built from the whole table, as `grok report` builds them.

The page is kept in memory and served from it (loopback by default): stopping the watch leaves
nothing behind. A short script on the page asks `/status.json` every few seconds, shows how old
the report is and how far the sweep has got, and reloads the page when a newer report exists.
The results can be on local disk or an object store, and a sweep killed and resumed meanwhile is
followed: a listing that fails or a part that vanishes while read only postpones a rebuild.
"""

from __future__ import annotations

import contextlib
import html
import json
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from analysis.derive import BootstrapCache, Thresholds, applicable_views, member_times
from analysis.errors import AnalysisError
from analysis.load import Sweep, load_sweep, read_parts_arrow, to_frame

if TYPE_CHECKING:
    from analysis.report import Report

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
DEFAULT_EVERY_S = 5.0
POLL_MS = 2000
"""How often the page asks whether a newer report exists."""


class PartCache:
    """A `PartReader` for load_sweep that keeps each part's rows: a part is read again only when the
    listing shows it new or changed. The kept Arrow tables are united as one read of every part unites
    them (a part whose column is all null takes the other parts' type), then made a DataFrame.
    `changed` collects the run_ids whose rows came or went."""

    def __init__(self) -> None:
        self.tables: dict[str, tuple[tuple[int, int], pa.Table]] = {}
        self.changed: set[str] = set()
        self.read = 0
        """Part files read since the last `take_changes` (the measure of a rebuild's reading)."""

    def __call__(self, fs: pafs.FileSystem, parts: list[pafs.FileInfo], shown: str, table: str) -> pd.DataFrame:
        listed = {p.path: p for p in parts}
        folder = f"{parts[0].path.rsplit('/', 1)[0]}/"
        for path in [k for k in self.tables if k.startswith(folder) and k not in listed]:
            self._changed(self.tables.pop(path)[1])  # merged by a compaction, or a crash leftover deleted
        fresh = [p for p in parts if p.path not in self.tables or self.tables[p.path][0] != _stamp(p)]
        for part in fresh:
            data = read_parts_arrow(fs, [part], shown, table)
            if part.path in self.tables:
                self._changed(self.tables[part.path][1])
            self.tables[part.path] = (_stamp(part), data)
            self._changed(data)
        self.read += len(fresh)
        kept = [self.tables[p.path][1] for p in parts]
        return to_frame(kept[0] if len(kept) == 1 else pa.concat_tables(kept, promote_options="permissive"))

    def _changed(self, data: pa.Table) -> None:
        self.changed.update(pc.unique(data.column("run_id")).to_pylist())

    def take_changes(self) -> tuple[set[str], int]:
        changed, read = self.changed, self.read
        self.changed, self.read = set(), 0
        return changed, read


def _stamp(part: pafs.FileInfo) -> tuple[int, int]:
    """What says a part is the same file: a part is written whole under a hidden name and renamed, so a
    replaced part (compaction's `grok measure` rewrite) shows a new size or modification time."""
    mtime = part.mtime_ns if part.mtime_ns is not None else -1
    return (part.size or -1, mtime)


class TimesCache:
    """Each member's derived times (analysis.derive.member_times), derived again only for changed members.
    member_times treats members independently given the views (which accuracy pairs apply), so a
    member's row depends on its own rows alone. When the views or the tables' column types change (the
    first member with a value in a column that was all null) every member is derived again, so the
    times are what one derivation of the whole sweep gives."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.ended: pd.DataFrame | None = None
        """Members with a runs row. Those still running (a few packs' worth) are derived anew each time:
        in one derivation of the whole sweep their rows lack config values, which sets column types."""
        self.key: tuple | None = None
        self.times: pd.DataFrame | None = None

    def update(self, sweep: Sweep, changed: set[str] | None) -> pd.DataFrame:
        views = applicable_views(sweep.metrics)
        key = ([v.name for v in views], sweep.runs.dtypes.to_dict(), sweep.metrics.dtypes.to_dict())
        running = pd.Index(sweep.running_run_ids)
        if self.ended is None or key != self.key:
            self.key, changed = key, None
        if changed is None or self.ended is None:
            self.ended = member_times(
                sweep.metrics[~sweep.metrics["run_id"].isin(running)], sweep.runs, self.thresholds, views
            )
        elif changed:
            ids = pd.Index(sorted(changed))
            kept = self.ended[~self.ended["run_id"].isin(ids)]
            runs = sweep.runs[sweep.runs["run_id"].isin(ids)]
            if len(runs):
                fresh = member_times(
                    sweep.metrics[sweep.metrics["run_id"].isin(runs["run_id"])], runs, self.thresholds, views
                )
                self.ended = _concat_times([kept, fresh])
            else:
                self.ended = kept
            # in the runs table's order, as one derivation of the whole sweep has them: the figures list
            # members in this order (a member trace's points), so the page is the fresh report's exactly
            order = sweep.runs["run_id"].drop_duplicates(keep="last")
            self.ended = self.ended.take(pd.Index(self.ended["run_id"]).get_indexer(order)).reset_index(drop=True)
        if not len(running):
            self.times = self.ended
            return self.times
        live = member_times(
            sweep.metrics[sweep.metrics["run_id"].isin(running)], sweep.runs.iloc[:0], self.thresholds, views
        )
        self.times = _concat_times([self.ended, live])
        return self.times


def _concat_times(frames: list[pd.DataFrame]) -> pd.DataFrame:
    out = pd.concat(frames, ignore_index=True, sort=False)
    for frame in frames:  # member_times keeps its thresholds and views in attrs
        out.attrs.update(frame.attrs)
    return out


@dataclass
class Snapshot:
    """What the server hands out: the page and its status, replaced whole by each rebuild."""

    html: str = ""
    built: float | None = None
    build_s: float | None = None
    parts_read: int = 0
    progress: dict = field(default_factory=dict)
    error: str | None = None
    steps: dict = field(default_factory=dict)
    """Seconds of the last rebuild per step: read (changed parts), derive (changed members), figures, page."""


class LiveReport:
    """Rebuilds the report of `locations` when their parts change; `snapshot` is the latest page."""

    def __init__(
        self,
        locations: list[str],
        thresholds: Thresholds | None = None,
        every_s: float = DEFAULT_EVERY_S,
        overrides: dict | None = None,
    ) -> None:
        """`thresholds` None: the spec's (`thresholds:`), as `grok report` judges; `overrides` changes some."""
        self.locations, self.thresholds, self.every_s, self.overrides = locations, thresholds, every_s, overrides
        self.parts = PartCache()
        self.times: TimesCache | None = None  # made once the sweep (and so its spec's thresholds) is read
        self.fits = BootstrapCache()
        self.report: Report | None = None
        """The last build's analysis.report.Report, its figures, tables and notes (the page is `snapshot.html`);
        without its sweep and times, which held until the next read would keep two sweeps' tables in memory
        while it builds the new ones (slower by half a second at 100k members, and more memory)."""
        self.snapshot = Snapshot(html=_waiting_page("reading the sweep for the first time"))
        self.stop = threading.Event()

    def rebuild(self) -> bool:
        """Read what changed and, if anything did, build the page again. Returns whether it did."""
        from analysis.report import build_report, render_html

        start = time.monotonic()
        try:
            sweep = load_sweep(self.locations, parts=self.parts)
        except (AnalysisError, OSError) as e:  # no results yet, a listing that failed: try again later
            self.snapshot = Snapshot(
                html=self.snapshot.html if self.snapshot.built else _waiting_page(str(e)),
                built=self.snapshot.built,
                build_s=self.snapshot.build_s,
                progress=self.snapshot.progress,
                error=str(e),
            )
            return False
        changed, read = self.parts.take_changes()
        if self.snapshot.built is not None and not changed:
            return False
        steps = {"read": time.monotonic() - start}
        if self.times is None:
            from analysis.report import judged_by

            self.thresholds = judged_by(sweep, self.thresholds, self.overrides or {})
            self.times = TimesCache(self.thresholds)
        times = self.times.update(sweep, changed)
        steps["derive"] = time.monotonic() - start - sum(steps.values())
        report = build_report(sweep, self.times.thresholds, times=times, fits=self.fits)
        self.fits.prune()
        self.report = replace(report, sweep=None, times=None)  # type: ignore[arg-type]  # dropped on purpose: see above
        steps["figures"] = time.monotonic() - start - sum(steps.values())
        progress = sweep_progress(sweep, times)
        page = _live_page(render_html(report), progress)
        steps["page"] = time.monotonic() - start - sum(steps.values())
        self.snapshot = Snapshot(
            html=page,
            built=time.time(),
            build_s=round(time.monotonic() - start, 2),
            parts_read=read,
            progress=progress,
            steps={k: round(v, 2) for k, v in steps.items()},
        )
        return True

    def run(self) -> None:
        """Rebuild every `every_s` seconds until stopped."""
        while not self.stop.is_set():
            try:
                self.rebuild()
            except Exception as e:  # noqa: BLE001 - one bad rebuild must not end the watch; shown on the page
                self.snapshot = Snapshot(
                    html=self.snapshot.html,
                    built=self.snapshot.built,
                    build_s=self.snapshot.build_s,
                    progress=self.snapshot.progress,
                    error=f"{type(e).__name__}: {e}",
                )
                print(f"grok report --watch: rebuild failed: {type(e).__name__}: {e}", file=sys.stderr)
            self.stop.wait(self.every_s)

    def status(self) -> dict:
        snap = self.snapshot
        return {
            "built": snap.built,
            "age_s": None if snap.built is None else round(time.time() - snap.built, 1),
            "build_s": snap.build_s,
            "steps": snap.steps,
            "parts_read": snap.parts_read,
            "progress": snap.progress,
            "error": snap.error,
        }


def sweep_progress(sweep: Sweep, times: pd.DataFrame) -> dict:
    """How far the sweep has got: members planned (plan.json), ended, running, and their phases so far."""
    from analysis.columns import RUNNING_STATUS

    status = times["status"].astype(object)
    planned = sweep.planned or None
    phases = times.loc[status != RUNNING_STATUS, "phase"].value_counts() if "phase" in times.columns else pd.Series()
    return {
        "planned": planned,
        "ended": int((status != RUNNING_STATUS).sum()),
        "running": int((status == RUNNING_STATUS).sum()),
        "phases": {str(k): int(v) for k, v in phases.items()},
    }


def _banner(progress: dict) -> str:
    return (
        '<div id="live-status" style="position:sticky;top:0;z-index:10;background:#fffbe6;'
        'border-bottom:1px solid #e6d9a3;padding:6px 12px;font:14px sans-serif">'
        '<b>live</b> · report <span id="live-age">just now</span> old · '
        f'<span id="live-progress">{html.escape(_progress_text(progress))}</span>'
        '<span id="live-error" style="color:#a00"></span></div>'
    )


def _progress_text(progress: dict) -> str:
    planned = progress.get("planned")
    ended = progress.get("ended", 0)
    head = f"{ended:,} of {planned:,} members ended" if planned else f"{ended:,} members ended"
    running = progress.get("running", 0)
    phases = ", ".join(f"{k} {v:,}" for k, v in sorted(progress.get("phases", {}).items()))
    return f"{head}, {running:,} running" + (f" · {phases}" if phases else "")


_SCRIPT = """<script>
(function () {
  var built = %(built)s;
  function age(s) {
    return s < 90 ? Math.round(s) + " s" : s < 5400 ? Math.round(s / 60) + " min" : (s / 3600).toFixed(1) + " h";
  }
  function tick() {
    fetch("status.json", {cache: "no-store"}).then(function (r) { return r.json(); }).then(function (st) {
      if (st.built !== null && st.built !== built) { location.reload(); return; }
      document.getElementById("live-age").textContent = age(st.age_s || 0);
      document.getElementById("live-progress").textContent = st.progress_text;
      document.getElementById("live-error").textContent = st.error ? " · last rebuild: " + st.error : "";
    }).catch(function () {
      document.getElementById("live-error").textContent = " · the watch has stopped";
    });
  }
  setInterval(tick, %(poll)d);
  tick();
})();
</script>"""


def _live_page(page: str, progress: dict) -> str:
    """The report's page with the live banner at the top of its body and the polling script at its end."""
    script = _SCRIPT % {"built": "null", "poll": POLL_MS}
    head, sep, body = page.partition("<body>")
    if not sep:
        return page
    body = body.replace("</body>", script + "</body>", 1)
    return f"{head}<body>{_banner(progress)}{body}"


def _waiting_page(reason: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>waiting for the sweep</title></head><body>"
        f"{_banner({})}<p>No report yet: {html.escape(reason)}</p>{_SCRIPT % {'built': 'null', 'poll': POLL_MS}}"
        "</body></html>"
    )


def serve(live: LiveReport, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """An HTTP server for the live page (not started); `/` the page, `/status.json` its status."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the http.server API names it
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                snap = live.snapshot
                # the page knows its own build time, so it reloads only when a newer one exists
                body = snap.html.replace("var built = null;", f"var built = {json.dumps(snap.built)};", 1)
                self._send(200, "text/html; charset=utf-8", body.encode())
            elif path == "/status.json":
                status = live.status()
                status["progress_text"] = _progress_text(status["progress"])
                self._send(200, "application/json", json.dumps(status).encode())
            else:
                self._send(404, "text/plain", b"not found: / (the report) and /status.json only\n")

        def _send(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the browser left mid-page (a reload)
                self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet: the terminal shows rebuilds
            pass

    return ThreadingHTTPServer((host, port), Handler)


class Watching:
    """The live report served in background threads: `with Watching(...) as w:` around a driver (`grok
    sweep SPEC --watch`), or `watch()` in the foreground. Leaving the block stops both threads and
    closes the port; nothing was written."""

    def __init__(
        self,
        locations: list[str],
        thresholds: Thresholds | None,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        every_s: float = DEFAULT_EVERY_S,
        overrides: dict | None = None,
    ) -> None:
        self.live = LiveReport(locations, thresholds, every_s, overrides)
        try:
            self.server = serve(self.live, host, port)
        except OSError as e:
            raise AnalysisError(
                f"--port {port}: cannot listen on {host}:{port} ({e.strerror or e}); pick another port with --port"
            ) from e
        shown_host = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown_host}:{self.server.server_address[1]}/"
        self.threads = [
            threading.Thread(target=self.live.run, name="grok-report-watch", daemon=True),
            threading.Thread(
                target=self.server.serve_forever, kwargs={"poll_interval": 0.5}, name="grok-report-serve", daemon=True
            ),
        ]

    def __enter__(self) -> Watching:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.live.stop.set()
        self.server.shutdown()
        self.server.server_close()
        for thread in self.threads:
            thread.join(timeout=60)


def watch(
    locations: list[str],
    thresholds: Thresholds | None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    every_s: float = DEFAULT_EVERY_S,
    out=None,
    overrides: dict | None = None,
) -> None:
    """Serve the live report until Ctrl-C (or the process ends); nothing is written anywhere."""
    with Watching(locations, thresholds, host, port, every_s, overrides) as watching:
        print(
            f"live report of {', '.join(locations)} at {watching.url} "
            f"(rebuilt every {every_s:g} s when parts change; Ctrl-C stops it)",
            file=out or sys.stdout,
            flush=True,
        )
        watching.live.stop.wait()  # until Ctrl-C


def main_watch(args, overrides: dict) -> int:
    """`grok report DIR --watch` (called by analysis.report.main with its parsed arguments)."""
    if args.out is not None:
        raise AnalysisError("--out: the live report is served, not written; leave out --out (or --watch)")
    if args.every <= 0:
        raise AnalysisError(f"--every: seconds between checks, a number > 0, got {args.every}")
    try:
        watch(list(args.dirs), None, host=args.host, port=args.port, every_s=args.every, overrides=overrides)
    except KeyboardInterrupt:
        print("stopped; nothing was written", file=sys.stderr)
    return 0
