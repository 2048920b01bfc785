"""sweeps: sweep specs, packing, the Ray Tune launcher, Parquet writers and the `grok` CLI.

The only package that imports ray or optuna, and only inside the functions that need them, so
`import sweeps` and `grok --help` stay light.

    from sweeps import load_spec, run_sweep
    spec = load_spec("sweeps/examples/quick.yaml")
    result = run_sweep(spec)                    # a local Ray; address="..." for a cluster
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SpecError": "sweeps.spec",
    "SweepSpec": "sweeps.spec",
    "load_spec": "sweeps.spec",
    "parse_spec": "sweeps.spec",
    "Pack": "sweeps.packing",
    "cut_packs": "sweeps.packing",
    "plan": "sweeps.packing",
    "SweepStore": "sweeps.parquet",
    "PackSettings": "sweeps.runner",
    "run_pack": "sweeps.runner",
    "prepare": "sweeps.grid_source",
    "run_sweep": "sweeps.launch",
    "sweep_status": "sweeps.status",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}")
