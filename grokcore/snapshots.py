"""Member snapshots: which epochs keep a member's weights, and the file format that holds them.

    schedule = SnapshotSchedule(every=100, events=("train_99", "test_99", "end"))
    trainer = PackTrainer(configs, snapshots=schedule)
    for report in trainer.run():
        report.snapshots              # Snapshot(run_id, epoch, event, weights) taken since the last report

A snapshot is a copy of one member's weights at the end of an epoch; taking one reads the weights
and never changes them, so a pack trains to the same numbers with or without a schedule (a test
keeps it so). The schedule is not part of a RunConfig, so it never changes a run_id.

Storage (one file per batch of snapshots, written by sweeps/snapshots.py under the sweep's commit
invariant) is safetensors: tensors named `<run_id>/<epoch>/<param>`, and in the metadata an index
(`grok.snapshots`: [{run_id, epoch, event}]) and each member's config (`grok.configs`), so a file
is readable with safetensors alone (`load_snapshot`), without Ray or a GPU; pyarrow's filesystem
only when the sweep lives on an object store (`SnapshotFiles`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from grokcore.config import RunConfig
from grokcore.location import filesystem, is_uri, results_location, strip_file_scheme
from grokcore.packed import param_shapes

EVENTS = ("train_99", "test_99", "end")
"""train_99 / test_99: the evaluation where train / test accuracy first reaches 0.99 (the trainer's
epoch_train_99 / epoch_test_99, known as it happens; whether the accuracy then holds, memorised or
generalised by grokcore/verdict.py's rule, is known only later); end: the member's last epoch."""
RENAMED_EVENTS = {"memorised": "train_99", "generalised": "test_99"}
"""Event names of earlier specs: "memorised" and "generalised" are the held rule's words now."""
SCHEDULED = "epoch"  # the event label of a snapshot taken because its epoch was scheduled
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
INDEX_KEY = "grok.snapshots"
CONFIGS_KEY = "grok.configs"
SNAPSHOT_DIR = "snapshots"


@dataclass(frozen=True)
class SnapshotSchedule:
    """When to keep a member's weights. Epochs are per member: `log_points` and `every` run up to
    its own epoch budget."""

    every: int | None = None
    """every N epochs (N, 2N, ...), or None"""
    epochs: tuple[int, ...] = ()
    """these epochs (those past a member's budget are never reached)"""
    log_points: int = 0
    """this many log-spaced epochs between 1 and the member's budget (fewer where they round together)"""
    events: tuple[str, ...] = ()
    """any of train_99, test_99, end"""
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    """storage precision; float32 keeps the trained weights bit for bit"""

    def __post_init__(self) -> None:
        object.__setattr__(self, "epochs", tuple(sorted({int(e) for e in self.epochs})))
        object.__setattr__(self, "events", tuple(e for e in EVENTS if e in set(self.events)))
        if self.every is not None and self.every < 1:
            raise ValueError(f"snapshots.every: must be an integer >= 1, got {self.every}")
        if any(e < 1 for e in self.epochs):
            raise ValueError(f"snapshots.epochs: must be epochs >= 1, got {list(self.epochs)}")
        if self.log_points < 0:
            raise ValueError(f"snapshots.log_points: must be an integer >= 0, got {self.log_points}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SnapshotSchedule:
        unknown = set(data) - {"every", "epochs", "log_points", "events", "dtype"}
        if unknown:
            raise ValueError(f"snapshots: unknown keys {sorted(unknown)}")
        events = data.get("events", ())
        renamed = [e for e in events if e in RENAMED_EVENTS]
        if renamed:
            raise ValueError("snapshots.events: " + "; ".join(
                f"{e!r} is now {RENAMED_EVENTS[e]!r} (the first evaluation at accuracy 0.99; {e!r} means the held "
                f"rule of grokcore/verdict.py, which is known only later)" for e in renamed))
        bad = set(events) - set(EVENTS)
        if bad:
            raise ValueError(f"snapshots.events: unknown {sorted(bad)}; allowed: {', '.join(EVENTS)}")
        if data.get("dtype", "float32") not in DTYPES:
            raise ValueError(f"snapshots.dtype: one of {', '.join(DTYPES)}, got {data['dtype']!r}")
        return cls(every=data.get("every"), epochs=tuple(data.get("epochs", ())),
                   log_points=int(data.get("log_points", 0)), events=tuple(events),
                   dtype=data.get("dtype", "float32"))

    def to_dict(self) -> dict[str, Any]:
        return {"every": self.every, "epochs": list(self.epochs), "log_points": self.log_points,
                "events": list(self.events), "dtype": self.dtype}

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def scheduled_epochs(self, budget: int) -> frozenset[int]:
        """The epochs in 1..budget this schedule keeps (events aside)."""
        out = {e for e in self.epochs if e <= budget}
        if self.every:
            out.update(range(self.every, budget + 1, self.every))
        if self.log_points == 1:
            out.add(budget)
        elif self.log_points > 1:
            step = math.log(budget) / (self.log_points - 1)
            out.update(min(budget, max(1, round(math.exp(i * step)))) for i in range(self.log_points))
        return frozenset(out)

    def max_snapshots(self, cfg: RunConfig) -> int:
        """An upper bound on one member's snapshots: its scheduled epochs plus one per event (an
        event on a scheduled epoch shares its snapshot)."""
        return len(self.scheduled_epochs(cfg.epochs)) + len(self.events)

    def bytes_per_snapshot(self, cfg: RunConfig) -> int:
        """The weights of one member at one epoch, as stored (the file's index adds a few hundred bytes)."""
        n = sum(math.prod(shape) for shape in param_shapes(cfg).values())
        return n * torch.empty((), dtype=self.torch_dtype).element_size()


@dataclass
class Snapshot:
    run_id: str
    epoch: int
    event: str
    """'+'-joined labels: 'epoch' for a scheduled epoch, and any of EVENTS (e.g. 'end+epoch')"""
    weights: dict[str, Tensor] = field(repr=False)
    """TransformerLens names, no member axis, on the host, in the schedule's dtype"""

    def with_event(self, event: str) -> Snapshot:
        labels = sorted(set(self.event.split("+")) | {event})
        return Snapshot(self.run_id, self.epoch, "+".join(labels), self.weights)


# ---- the file format -----------------------------------------------------------------------------
def snapshot_tensors(snapshots: Sequence[Snapshot], configs: dict[str, RunConfig]) -> tuple[dict[str, Tensor], dict[str, str]]:
    """(tensors, metadata) of a snapshot file holding these snapshots; `configs` by run_id."""
    tensors: dict[str, Tensor] = {}
    for s in snapshots:
        for name, t in s.weights.items():
            tensors[f"{s.run_id}/{s.epoch}/{name}"] = t.detach().contiguous().cpu()
    index = [{"run_id": s.run_id, "epoch": s.epoch, "event": s.event} for s in snapshots]
    ids = sorted({s.run_id for s in snapshots})
    metadata = {INDEX_KEY: json.dumps(index), CONFIGS_KEY: json.dumps({r: configs[r].to_dict() for r in ids})}
    return tensors, metadata


def header_metadata(data: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors file's bytes (the format: an 8-byte little-endian header
    length, then the JSON header), without decoding its tensors."""
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + length]).get("__metadata__", {})


class SnapshotFiles:
    """The snapshot files of one sweep folder: a local path or shared mount, read with safetensors
    alone, or an object-store URI (s3://, gs://), read through pyarrow's filesystem (imported only
    then), which takes its credentials and endpoint from the usual environment (AWS_*). The last
    whole file read from an object store is kept, so reading a member's snapshots in epoch order
    downloads each file once."""

    def __init__(self, sweep_dir: str | os.PathLike):
        self.shown = strip_file_scheme(sweep_dir).rstrip("/")
        if is_uri(sweep_dir):
            self.fs, self.root = filesystem(sweep_dir)
        else:
            self.fs, self.root = None, results_location(sweep_dir)
        self._data: dict[str, bytes] = {}

    def files(self) -> list[str]:
        """The committed-or-not snapshot files, in pack and seq order. A reader of a sweep that
        crashed may see an uncommitted file until the sweep resumes; visible files are always whole
        (hidden temporaries are skipped)."""
        folder = f"{self.root}/{SNAPSHOT_DIR}"
        if self.fs is None:
            names = [p.name for p in Path(folder).glob("part-*.safetensors")]
        else:
            import pyarrow.fs as pafs

            names = [i.base_name for i in self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
                     if i.type == pafs.FileType.File]
        return sorted(f"{folder}/{n}" for n in names if n.startswith("part-") and n.endswith(".safetensors"))

    def metadata(self, path: str) -> dict[str, str]:
        """A file's safetensors metadata; from an object store only the header's bytes are read."""
        if self.fs is None:
            from safetensors import safe_open

            with safe_open(path, framework="pt") as f:
                return f.metadata() or {}
        if path in self._data:
            return header_metadata(self._data[path])
        with self.fs.open_input_file(path) as f:
            length = int.from_bytes(f.read_at(8, 0), "little")
            return json.loads(f.read_at(length, 8)).get("__metadata__", {})

    def tensors(self, path: str, prefix: str) -> dict[str, Tensor]:
        """The file's tensors whose names start with `prefix`, the prefix removed."""
        if self.fs is None:
            from safetensors import safe_open

            with safe_open(path, framework="pt") as f:
                return {k[len(prefix):]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}
        from safetensors.torch import load

        if path not in self._data:
            with self.fs.open_input_stream(path) as f:
                self._data = {path: f.read()}  # the last file only: a member's epochs are read in file order
        return {k[len(prefix):]: v for k, v in load(self._data[path]).items() if k.startswith(prefix)}

    def index(self, path: str) -> tuple[list[dict[str, Any]], dict[str, RunConfig]]:
        """A file's index and configs, without reading its tensors."""
        meta = self.metadata(path)
        return json.loads(meta.get(INDEX_KEY, "[]")), \
            {r: RunConfig.from_dict(c) for r, c in json.loads(meta.get(CONFIGS_KEY, "{}")).items()}

    def list(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """As list_snapshots."""
        out = []
        for path in self.files():
            index, _ = self.index(path)
            out += [{**e, "file": path} for e in index if run_id is None or e["run_id"] == run_id]
        return sorted(out, key=lambda e: (e["run_id"], e["epoch"]))

    def load(self, run_id: str, epoch: int | None = None, dtype: torch.dtype | None = torch.float32,
             entries: list[dict[str, Any]] | None = None) -> tuple[RunConfig, dict[str, Tensor]]:
        """As load_snapshot; `entries`: the member's, as list() gave them (saves listing again)."""
        entries = self.list(run_id) if entries is None else entries
        if not entries:
            raise KeyError(f"no snapshots of {run_id} under {self.shown}")
        if epoch is None:
            entry = entries[-1]
        else:
            match = [e for e in entries if e["epoch"] == epoch]
            if not match:
                raise KeyError(f"no snapshot of {run_id} at epoch {epoch}; it has {[e['epoch'] for e in entries]}")
            entry = match[-1]
        _, configs = self.index(entry["file"])
        cfg = configs[run_id]
        weights = self.tensors(entry["file"], f"{run_id}/{entry['epoch']}/")
        expected = param_shapes(cfg)
        if set(weights) != set(expected):
            raise ValueError(f"{entry['file']}: {run_id} at {entry['epoch']} lacks {sorted(set(expected) - set(weights))}")
        if dtype is not None:
            weights = {k: v.to(dtype) for k, v in weights.items()}
        return cfg, weights


def list_snapshots(sweep_dir: str | os.PathLike, run_id: str | None = None) -> list[dict[str, Any]]:
    """[{run_id, epoch, event, file}] of a sweep folder (local, mount or object-store URI), sorted by
    run_id and epoch."""
    return SnapshotFiles(sweep_dir).list(run_id)


def load_snapshot(sweep_dir: str | os.PathLike, run_id: str, epoch: int | None = None,
                  dtype: torch.dtype | None = torch.float32) -> tuple[RunConfig, dict[str, Tensor]]:
    """One member's config and weights (TransformerLens names, no member axis) at `epoch` (None: its
    last snapshot), from a sweep folder (local, mount or object-store URI), without Ray or a GPU
    (pyarrow only for an object store). `dtype`: cast to it (float32 by default, what the models
    compute in); None keeps the stored precision."""
    return SnapshotFiles(sweep_dir).load(run_id, epoch, dtype)


def pack_at(configs: Sequence[RunConfig], weights: Sequence[dict[str, Tensor]], epoch: int,
            device: torch.device | str = "cpu"):
    """A PackTrainer of these members (one shape) holding these weights at `epoch`: what the trainer
    held then, for measures recomputed offline (grokcore.progress.measure_pack(pack_at(...)) at a
    snapshot's epoch equals the online measure of the same pack at that epoch)."""
    from grokcore.train import PackTrainer

    trainer = PackTrainer(configs, device=device)
    flat = trainer.flat
    rows = torch.stack([torch.cat([w[name].reshape(-1).to(flat.data.dtype) for name in flat.offsets]) for w in weights])
    flat.data.copy_(rows.to(flat.data.device))  # the parameters are views of flat.data
    trainer.epoch = epoch
    return trainer


def hooked_member(cfg: RunConfig, weights: dict[str, Tensor]):
    """One member as the project's hooked model (`run_with_cache` with TransformerLens names); it is
    a pack of one, so tokens are (1, batch, pos) and cached activations have a leading member axis."""
    from grokcore.model import build_model

    return build_model(cfg, [weights])



def snapshot_views(sweep_dir: str | os.PathLike, run_ids: Sequence[str], max_examples: int = 512
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a report draws of these members' snapshots over training, as plain rows (pure compute):

    - spectrum: {run_id, epoch, frequency, norm}: the embedding's Fourier spectrum (grokcore.progress
      frequency_norms of W_E's operand rows), for tasks with the fourier measure;
    - attention: {run_id, epoch, head, key_pos, attention}: the first layer's attention from the last
      position to each position, averaged over the member's first `max_examples` test examples
      (transformers only)."""
    from grokcore.data import member_data
    from grokcore.progress.fourier import frequency_norms
    from grokcore.task import FOURIER

    spectrum: list[dict[str, Any]] = []
    attention: list[dict[str, Any]] = []
    files = SnapshotFiles(sweep_dir)
    listed = files.list()
    for run_id in run_ids:
        entries = [e for e in listed if e["run_id"] == run_id]
        for entry in entries:
            cfg, weights = files.load(run_id, entry["epoch"], entries=entries)
            epoch = entry["epoch"]
            if FOURIER in cfg.task_def.measures:
                p = cfg.task_def.modulus
                norms = frequency_norms(weights["embed.W_E"][:p].double().unsqueeze(0))[0]
                spectrum += [{"run_id": run_id, "epoch": epoch, "frequency": k + 1, "norm": float(v)}
                             for k, v in enumerate(norms.tolist())]
            if cfg.model == "transformer":
                tokens = member_data(cfg).test_tokens[:max_examples]
                with torch.no_grad():
                    _, cache = hooked_member(cfg, weights).run_with_cache(
                        tokens.unsqueeze(0), names_filter="blocks.0.attn.hook_pattern")
                pattern = cache["blocks.0.attn.hook_pattern"][0, :, :, -1].mean(0)  # (head, key_pos)
                attention += [{"run_id": run_id, "epoch": epoch, "head": h, "key_pos": k, "attention": float(a)}
                              for h, row in enumerate(pattern.tolist()) for k, a in enumerate(row)]
    return spectrum, attention
