"""Shared by the literature reproductions' slow tests: a reproduction's own spec, shrunk with `--set`
style overrides, trained through the real path (spec -> packs -> run_pack -> Parquet) without Ray, and
read back with analysis.load_sweep; and its figures.py imported as a module, so a test checks the
numbers the README quotes with the code that prints them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from analysis import load_sweep
from analysis.load import Sweep
from sweeps.packing import cut_packs
from sweeps.parquet import results_location
from sweeps.runner import PackSettings, run_pack
from sweeps.spec import load_spec

REPRODUCTIONS = Path(__file__).resolve().parents[2] / "reproductions"


def run_miniature(name: str, overrides: list[str], results: Path) -> Sweep:
    spec = load_spec(REPRODUCTIONS / name / "spec.yaml", overrides)
    settings = PackSettings(
        results=results_location(str(results)),
        name=spec.name,
        device="cpu",
        checkpoints=False,
        report_every_s=600.0,
        snapshots=spec.snapshots,  # as grok sweep keeps them: nanda's fixed-key losses are read from them
    )
    for pack in cut_packs(spec.members(), None):
        run_pack(pack, settings)
    return load_sweep(results / spec.name)


def figures_module(name: str) -> ModuleType:
    path = REPRODUCTIONS / name / "figures.py"
    spec = importlib.util.spec_from_file_location(f"repro_{name}_figures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
