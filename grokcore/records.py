"""Names of everything the trainer reports: the contract with sweeps (which writes
them to Parquet) and analysis (which reads them). Plain strings, no I/O here.

Results layout, under `<results>/<sweep name>/`:

- `runs/part-*.parquet`: one row per member when it ends. Columns: RUN_KEYS, then every
  RunConfig field under its own name (`force_adjacent` as a list of ints), then
  OUTCOME_COLUMNS.
- `metrics/part-*.parquet`: one row per (run_id, epoch) at each evaluation: `run_id`,
  `epoch`, then METRIC_COLUMNS (NaN where a metric does not apply to the task).
- `progress/part-*.parquet`: one row per (run_id, epoch) of progress measures:
  `run_id`, `epoch`, then namespaced columns such as `fourier/restricted_loss`, `llc/mean`.

Every Parquet file carries `SCHEMA_VERSION` in its metadata under `grok.schema_version`.
"""

SCHEMA_VERSION = 1
SCHEMA_METADATA_KEY = "grok.schema_version"

RUN_KEYS = ("run_id", "pack_id", "trial_id")

# Metrics of one member at one evaluation.
METRIC_COLUMNS = (
    "train/loss",  # against the labels trained on (noisy under label noise)
    "train/acc",
    "train_clean/loss",  # training inputs against their clean labels (equals train/* without noise)
    "train_clean/acc",
    "test/loss",  # held-out pairs, clean labels
    "test/acc",
    "test_add/loss",  # mixtures with an 'add' subtask (add_mul, add_or_sub, add_or_mul): its test part
    "test_add/acc",
    "test_mul/loss",  # mixtures with a 'mul' subtask (add_mul, add_or_mul): its test part
    "test_mul/acc",
    "weight_norm",  # L2 norm of all of the member's weights
)

# The accuracy behind epoch_train_99 / epoch_test_99: the first evaluated epoch at or above it.
# The one home of that rule (grokcore.train's tracker; the sweeps' progress counts import it).
ACC_THRESHOLD = 0.99

# Outcome of one member, in its runs row.
STATUS_VALUES = ("done", "stopped", "diverged", "failed", "pruned")
# The status of a member that ended at its epoch budget: the only one a larger budget continues
# (grokcore/continuation.py keeps its end state; sweeps/budget.py plans it).
BUDGET_END = "done"
OUTCOME_COLUMNS = (
    "status",  # done: budget spent; stopped: stop rule fired; diverged: loss NaN/inf;
    # failed: the pack failed for good (see error); pruned: by a search
    "error",  # empty unless failed
    "epochs_trained",
    "continued_from",  # the epoch this outcome's training went on from (a larger budget; sweeps/budget.py),
    # null when it trained from epoch 0
    "epoch_train_99",  # first evaluated epoch with train/acc >= 0.99 (null if never)
    "epoch_test_99",  # likewise for test/acc
    "final/train/loss",
    "final/train/acc",
    "final/test/loss",
    "final/test/acc",
    "wall_seconds",  # the pack's training wall time up to this member's end
    "device",
    "optuna_trial",  # Optuna trial number under `search: optuna`, else null
)
