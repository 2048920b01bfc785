"""Reading a sweep's snapshot files: from a local path or shared mount with safetensors alone, or
from an object store through pyarrow's filesystem (imported only then)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from grokcore.config import RunConfig
from grokcore.layout import SNAPSHOT_DIR
from grokcore.location import filesystem, is_uri, results_location, strip_file_scheme
from grokcore.packed import param_shapes
from grokcore.snapshots.file_format import CONFIGS_KEY, INDEX_KEY, header_metadata


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

            names = [
                i.base_name
                for i in self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
                if i.type == pafs.FileType.File
            ]
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
                names = f.keys()  # a safetensors safe_open: it has keys() and no iteration
                return {k[len(prefix) :]: f.get_tensor(k) for k in names if k.startswith(prefix)}
        from safetensors.torch import load

        if path not in self._data:
            with self.fs.open_input_stream(path) as f:
                self._data = {path: f.read()}  # the last file only: a member's epochs are read in file order
        return {k[len(prefix) :]: v for k, v in load(self._data[path]).items() if k.startswith(prefix)}

    def index(self, path: str) -> tuple[list[dict[str, Any]], dict[str, RunConfig]]:
        """A file's index and configs, without reading its tensors."""
        meta = self.metadata(path)
        return json.loads(meta.get(INDEX_KEY, "[]")), {
            r: RunConfig.from_dict(c) for r, c in json.loads(meta.get(CONFIGS_KEY, "{}")).items()
        }

    def list(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """As list_snapshots."""
        out = []
        for path in self.files():
            index, _ = self.index(path)
            out += [{**e, "file": path} for e in index if run_id is None or e["run_id"] == run_id]
        return sorted(out, key=lambda e: (e["run_id"], e["epoch"]))

    def load(
        self,
        run_id: str,
        epoch: int | None = None,
        dtype: torch.dtype | None = torch.float32,
        entries: Sequence[dict[str, Any]] | None = None,
    ) -> tuple[RunConfig, dict[str, Tensor]]:
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
            raise ValueError(
                f"{entry['file']}: {run_id} at {entry['epoch']} lacks {sorted(set(expected) - set(weights))}"
            )
        if dtype is not None:
            weights = {k: v.to(dtype) for k, v in weights.items()}
        return cfg, weights


def list_snapshots(sweep_dir: str | os.PathLike, run_id: str | None = None) -> list[dict[str, Any]]:
    """[{run_id, epoch, event, file}] of a sweep folder (local, mount or object-store URI), sorted by
    run_id and epoch."""
    return SnapshotFiles(sweep_dir).list(run_id)


def load_snapshot(
    sweep_dir: str | os.PathLike, run_id: str, epoch: int | None = None, dtype: torch.dtype | None = torch.float32
) -> tuple[RunConfig, dict[str, Tensor]]:
    """One member's config and weights (TransformerLens names, no member axis) at `epoch` (None: its
    last snapshot), from a sweep folder (local, mount or object-store URI), without Ray or a GPU
    (pyarrow only for an object store). `dtype`: cast to it (float32 by default, what the models
    compute in); None keeps the stored precision."""
    return SnapshotFiles(sweep_dir).load(run_id, epoch, dtype)
