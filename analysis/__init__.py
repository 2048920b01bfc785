"""analysis: grokking times, phases, phase diagrams and an HTML report from a sweep's Parquet tables.

Never re-trains and never imports torch, ray or optuna. Importing this package
is cheap; the submodules (and pandas / plotly) load on first use:

    from analysis import load_sweep, member_times, aggregate, phase_diagram, write_report
    sweep = load_sweep("results/grid")
    times = member_times(sweep.metrics, sweep.runs)      # one row per member: mem/gen epochs, delay, phase
    phase_diagram(times, "train_fraction", "weight_decay").show()   # the phase map; value="gen_epoch" for times
"""

from analysis.errors import AnalysisError

_EXPORTS = {
    "load": ("Sweep", "load_sweep"),
    "derive": (
        "PHASES",
        "MIXED",
        "Thresholds",
        "View",
        "VIEWS",
        "member_times",
        "aggregate",
        "first_epoch_reaching",
        "survival_quantiles",
        "classify_phases",
        "critical_train_fraction",
        "power_law_fit",
        "weight_decay_exponent",
        "representative_members",
        "applicable_views",
        "trainer_disagreements",
    ),
    "axes": ("swept_axes", "replicate_axes", "axis_scale", "value_ticks", "log_ticks"),
    "figures": ("phase_diagram", "phase_scatter", "axis_curve", "training_curves", "progress_curves"),
    "report": ("write_report", "main"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["AnalysisError", *_WHERE]


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        module = importlib.import_module(f"analysis.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'analysis' has no attribute '{name}'")
