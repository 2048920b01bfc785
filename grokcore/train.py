"""Training a pack: many members as one batched model.

    trainer = PackTrainer(configs, device="cpu")
    for report in trainer.run():      # one report per evaluation
        report.metrics                # one dict per member evaluated at report.epoch
        report.finished               # MemberOutcome of members that ended here
        trainer.save(dir)             # optional checkpoint; PackTrainer.load(dir) continues exactly

Between evaluations the loop never reads a value back from the device: losses, stop
rules and divergence are all checked at evaluation time, once per `eval_every` epochs,
with one device-to-host copy.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from grokcore.config import RunConfig
from grokcore.optim import BatchedAdamW, FlatParams
from grokcore.packed import PackedModel, build_packed, init_member
from grokcore.progress import measure_pack
from grokcore.records import ACC_THRESHOLD, METRIC_COLUMNS
from grokcore.snapshots.schedule import SCHEDULED, Snapshot, SnapshotSchedule
from grokcore.splits import ExamplePool, build_pool, make_split
from grokcore.task import Task

STATE_FORMAT = 1
# Subtasks with their own test metric columns (records.METRIC_COLUMNS: test_add/*, test_mul/*).
SUBTASK_COLUMNS = ("add", "mul")
FINAL_KEYS = ("train/loss", "train/acc", "test/loss", "test/acc")  # the runs row's final/* columns
# A member's examples are processed in chunks of a fixed number of rows (example_chunk), about
# 1/EXAMPLE_CHUNKS of its task's pool: few chunks per step, little padding (see _build_data).
EXAMPLE_CHUNKS = 16
CHUNK_MULTIPLE = 64


@dataclass
class MemberOutcome:
    """How one member ended."""

    config: RunConfig
    status: str
    epochs_trained: int | None  # None: a failed member whose pack never committed an epoch
    epoch_train_99: int | None
    epoch_test_99: int | None
    final: dict[str, float | None]
    wall_seconds: float | None
    device: str | None
    error: str = ""

    @property
    def run_id(self) -> str:
        return self.config.run_id

    @classmethod
    def failed(cls, config: RunConfig, error: str, epochs_trained: int | None = None) -> MemberOutcome:
        """A member whose pack failed for good (a sweep's driver records it): nothing was measured."""
        return cls(
            config=config,
            status="failed",
            epochs_trained=epochs_trained,
            epoch_train_99=None,
            epoch_test_99=None,
            final=dict.fromkeys(FINAL_KEYS),
            wall_seconds=None,
            device=None,
            error=error,
        )

    def to_row(self) -> dict[str, Any]:
        """A runs row: every config field, then the outcome columns the trainer knows. The one place
        runs rows are built (trainers, and sweeps' failed rows through `failed`)."""
        return {
            "run_id": self.run_id,
            **self.config.to_dict(),
            "status": self.status,
            "error": self.error,
            "epochs_trained": self.epochs_trained,
            "epoch_train_99": self.epoch_train_99,
            "epoch_test_99": self.epoch_test_99,
            **{f"final/{k}": self.final.get(k, math.nan) for k in FINAL_KEYS},
            "wall_seconds": self.wall_seconds,
            "device": self.device,
        }


@dataclass
class Report:
    epoch: int
    metrics: list[dict[str, Any]]
    finished: list[MemberOutcome]
    live: int
    train_seconds: float
    progress: list[dict[str, Any]] = field(default_factory=list)
    """Rows of progress measures ({"run_id", "epoch", "fourier/...", "llc/...": ...}) at
    multiples of progress_every; empty otherwise."""
    progress_seconds: float = 0.0
    snapshots: list[Snapshot] = field(default_factory=list)
    """Weights kept by the trainer's SnapshotSchedule since the previous report."""


@dataclass
class _Tracker:
    """Host-side bookkeeping of one live member (all of it is checkpointed)."""

    end_epoch: int
    streak: int = 0
    stop_fired: bool = False
    epoch_train_99: int | None = None
    epoch_test_99: int | None = None
    last: dict[str, float] = field(default_factory=dict)


class PackTrainer:
    def __init__(
        self,
        configs: Sequence[RunConfig],
        device: str | torch.device = "cpu",
        tf32: bool = False,
        torch_compile: bool = False,
        snapshots: SnapshotSchedule | None = None,
    ):
        """`snapshots` keeps members' weights at its epochs and events (Report.snapshots); it only reads
        the weights, so the numbers are those of a trainer without it. `tf32` allows TF32 matmuls on
        CUDA (a process-wide torch setting). `torch_compile` runs the
        training loss and the optimizer update through torch.compile (Inductor): ~1.5x model-epochs/s
        for large packs on a GPU, after a compile of seconds to a minute on the first epoch (and once
        more when the pack first shrinks); results agree with the eager step to float rounding, not
        bit for bit. Off by default: on CPU it gains little and needs a C++ compiler."""
        if not configs:
            raise ValueError("a pack needs at least one member")
        keys = {c.shape_key() for c in configs}
        if len(keys) > 1:
            raise ValueError(f"members of a pack must share shape_key(); got {len(keys)} different ones")
        ids = [c.run_id for c in configs]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate members in a pack (equal run_id)")
        self.device = torch.device(device)
        if tf32 and self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.configs: list[RunConfig] = list(configs)
        self.arch = self.configs[0]
        self.epoch = 0
        self.train_seconds = 0.0
        self.trackers = [_Tracker(end_epoch=c.epochs) for c in self.configs]
        self._pending: list[MemberOutcome] = []
        self.snapshots = snapshots
        self._snapshot_epochs = (
            {c.run_id: snapshots.scheduled_epochs(c.epochs) for c in self.configs} if snapshots is not None else {}
        )
        self._any_snapshot_epoch = frozenset().union(*self._snapshot_epochs.values())
        self._taken: dict[tuple[str, int], Snapshot] = {}  # since the last report, by (run_id, epoch)
        # Final weights of members that left the batch, as flat rows on the host: the batch shrinks,
        # but a member's trained weights stay reachable (member_weights) and are checkpointed.
        self.departed: dict[str, Tensor] = {}
        # Called with (member indices, status) as members end at an evaluation, before they leave the
        # batch: grokcore.continuation.EndStateKeeper keeps their end states there.
        self.on_leave: Any = None
        self._build_data()
        self.net: PackedModel = build_packed(self.arch, [init_member(c) for c in self.configs]).to(self.device)
        self._hooked: PackedModel | None = None
        self.flat = FlatParams(self.net.named_member_params())

        def per_member(name: str) -> list[float]:
            return [getattr(c, name) for c in self.configs]

        self.optimizer = BatchedAdamW(
            self.flat,
            per_member("lr"),
            per_member("weight_decay"),
            per_member("beta1"),
            per_member("beta2"),
            per_member("eps"),
            torch_compile=torch_compile,
        )
        self._compiled_loss = torch.compile(self._loss, dynamic=None) if torch_compile else None
        self.loss_dtype = torch.float64 if self.arch.loss_dtype == "float64" else torch.float32

    @property
    def model(self) -> PackedModel:
        """The pack with TransformerLens hook points (`run_with_cache`, `run_with_hooks`), sharing the
        trainer's parameters. Built on first use: training itself runs `net`, without hooks, so a
        process that only trains never imports transformer_lens."""
        if self._hooked is None:
            from grokcore.model import hooked

            self._hooked = hooked(self.net)
        return self._hooked

    # ---- data ---------------------------------------------------------------------------------
    def _build_data(self) -> None:
        """Per-member train and test examples, padded with zero weight to a whole number of chunks
        of `self.chunk` rows, as many as the pack's longest member needs.

        A member's numbers must not depend on its pack. The reductions over examples (the
        weight gradients' matmuls, bias and LayerNorm gradients, metric sums) round differently
        when their length changes: MKL, for one, blocks a matmul's reduction by its length, so
        summing the same rows padded with zeros to another length moves the last bit. So every
        reduction runs over chunks of one fixed length, the member's own rows first, then
        padding, and the chunks' results are added one after another in order: the chunks past a
        member's own add exact zeros, and the member's chunks are those it has alone."""
        # Inputs are shared by the pack, labels may not be (pow members differ in their exponents):
        # one pool per distinct Task (tasks are frozen dataclasses, equal when their labels are).
        pools: dict[Task, ExamplePool] = {}
        for c in self.configs:
            if c.task_def not in pools:
                pools[c.task_def] = build_pool(c)
        member_pools = [pools[c.task_def] for c in self.configs]
        pool = member_pools[0]
        if self.arch.token_layout.endswith("=") and not bool((pool.inputs[:, -1] == self.arch.eq_token).all()):
            # PackedTransformer.train_logits scores a fixed last token once per pack, not per example
            raise AssertionError(f"layout '{self.arch.token_layout}': every example must end in '='")
        splits = [make_split(c, mp) for c, mp in zip(self.configs, member_pools, strict=True)]
        clean_labels = torch.stack([mp.labels for mp in member_pools])  # (member, pool)

        self.chunk = example_chunk(len(pool.inputs))

        def padded(index_lists: list[Tensor], values: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
            n = _whole_chunks(max(len(i) for i in index_lists), self.chunk)
            out = torch.zeros(len(index_lists), n, dtype=torch.long)
            mask = torch.zeros(len(index_lists), n, dtype=torch.bool)
            for k, idx in enumerate(index_lists):
                out[k, : len(idx)] = idx if values is None else values[k]
                mask[k, : len(idx)] = True
            return out, mask

        train_idx, train_mask = padded([s.train_idx for s in splits])
        test_idx, test_mask = padded([s.test_idx for s in splits])
        noisy, _ = padded([s.train_idx for s in splits], [s.train_labels for s in splits])
        dev = self.device
        subtasks = self.arch.task_def.subtasks if len(self.arch.task_def.subtasks) > 1 else ()
        self.data = {
            "train_tokens": pool.inputs[train_idx],  # (member, n_train, pos)
            "train_labels": noisy,
            "train_clean_labels": clean_labels.gather(1, train_idx),
            "train_weight": _mean_weights(train_mask),
            "test_tokens": pool.inputs[test_idx],
            "test_labels": clean_labels.gather(1, test_idx),
            "test_weight": _mean_weights(test_mask),
            **{
                f"test_{name}_weight": _mean_weights(test_mask & (pool.subtask[test_idx] == i))
                for i, name in enumerate(subtasks)
                if name in SUBTASK_COLUMNS
            },
            "train_count": train_mask.sum(1),
            "test_count": test_mask.sum(1),
        }
        self.data = {k: v.to(dev) for k, v in self.data.items()}

    # ---- training -----------------------------------------------------------------------------
    def _loss(self, tokens: Tensor, labels: Tensor, weight: Tensor, tables: dict[str, Tensor] | None = None) -> Tensor:
        """Per-member weighted mean cross-entropy at the last position, (member,)."""
        logits = self.net.train_logits(tokens, tables).to(self.loss_dtype)
        nll = -logits.log_softmax(-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        return (nll * weight).sum(-1)

    def _train_loss(
        self, tokens: Tensor, labels: Tensor, weight: Tensor, tables: dict[str, Tensor] | None = None
    ) -> Tensor:
        if self._compiled_loss is None:
            return self._loss(tokens, labels, weight, tables)
        # Members leave, so the member dimension of the parameters shrinks: let the compiled loss
        # treat it as dynamic (one recompile at the first shrink) instead of recompiling at every
        # shrink until torch._dynamo's recompile limit silently falls back to eager.
        with torch._dynamo.config.patch(force_parameter_static_shapes=False):
            return self._compiled_loss(tokens, labels, weight, tables)

    def _train_epoch(self) -> None:
        d = self.data
        if self.arch.batch_size is None:
            # One step whose gradient is accumulated chunk by chunk (see _build_data): autograd adds
            # each chunk's gradient in chunk order, to the layer-0 tables (computed once, as leaves)
            # and to the weights used per example; then the tables' gradient goes back once.
            self.optimizer.zero_grad()
            tables = self.net.train_tables(d["train_tokens"].shape[-1])
            leaves = {k: t.detach().requires_grad_() for k, t in tables.items()}
            for s in range(0, d["train_tokens"].shape[1], self.chunk):
                rows = slice(s, s + self.chunk)
                self._train_loss(
                    d["train_tokens"][:, rows], d["train_labels"][:, rows], d["train_weight"][:, rows], leaves
                ).sum().backward()
            torch.autograd.backward(list(tables.values()), [leaf.grad for leaf in leaves.values()])
            self.optimizer.step()
            return
        for tokens, labels, weight in self._minibatches():  # members share n_train: nothing padded
            self.optimizer.zero_grad()
            self._train_loss(tokens, labels, weight).sum().backward()
            self.optimizer.step()

    def _minibatches(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Shuffled minibatches; each member's order depends only on (its seed, epoch), so it is
        the same alone or in any pack, and after a restore. Minibatch packs share n_train."""
        d = self.data
        n, size = int(self.arch.train_size), self.arch.batch_size
        assert size is not None  # only a pack with a batch size takes minibatches
        orders = torch.stack(
            [
                torch.randperm(
                    n,
                    generator=torch.Generator().manual_seed(
                        (c.sub_seed("batch") + self.epoch * 0x9E3779B97F4A7C15) % (1 << 63)
                    ),
                )
                for c in self.configs
            ]
        )
        if self.device.type == "cuda":  # a pinned, non-blocking copy: no sync with the device
            orders = orders.pin_memory().to(self.device, non_blocking=True)
        out = []
        for start in range(0, n, size):
            idx = orders[:, start : start + size]
            tokens = d["train_tokens"].gather(1, idx.unsqueeze(-1).expand(-1, -1, d["train_tokens"].shape[-1]))
            weight = torch.full(idx.shape, 1.0 / idx.shape[1], dtype=d["train_weight"].dtype, device=self.device)
            out.append((tokens, d["train_labels"].gather(1, idx), weight))
        return out

    # ---- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def _metrics(self) -> Tensor:
        """(member, len(METRIC_COLUMNS)) on the host: the only device sync of the loop."""
        d = self.data
        tr_nll, tr_ok, cl_nll, cl_ok = self._masked_means(
            d["train_tokens"], d["train_weight"], d["train_labels"], d["train_clean_labels"]
        )
        nan = torch.full_like(self.flat.data[:, 0], math.nan, dtype=torch.float64)
        sub_weights = [d.get(f"test_{name}_weight") for name in SUBTASK_COLUMNS]
        test = self._masked_means(
            d["test_tokens"], d["test_weight"], d["test_labels"], weights=[w for w in sub_weights if w is not None]
        )
        sub = []  # test_add/*, test_mul/*: a mixture's subtasks of those names, NaN otherwise
        extra = iter(test[2:])
        for w in sub_weights:
            sub += [nan, nan] if w is None else [next(extra), next(extra)]
        # One member's row at a time, by the same call alone as in a pack: how a reduction over the
        # whole (member, n_params) buffer is split among threads may depend on the member count.
        norm = torch.stack([row.double().norm() for row in self.flat.data])
        columns = [tr_nll, tr_ok, cl_nll, cl_ok, test[0], test[1], *sub, norm]
        return torch.stack([c.double() for c in columns], dim=1).cpu()

    def _masked_means(
        self,
        tokens: Tensor,
        weight: Tensor,
        labels: Tensor,
        clean: Tensor | None = None,
        weights: Sequence[Tensor] = (),
    ) -> list[Tensor]:
        """Each member's mean loss and accuracy over its examples (those of nonzero `weight`) against
        `labels` (then `clean`), then against `labels` over those of nonzero weight in each of
        `weights`, (member,) each. Sums over chunks of self.chunk rows, as in training (see
        _build_data): each chunk's sum has one length whatever the pack, and the chunk sums are
        added in order, so a member's padding adds exact zeros (masked, so a padded row's infinite
        loss cannot make NaN); then one division by the member's count (accuracy: an exact count)."""
        masks = [m > 0 for m in (weight, *([weight] if clean is not None else []), *weights)]
        targets = [labels, *([clean] if clean is not None else []), *[labels] * len(weights)]
        totals: list[Tensor | int] = [0] * (2 * len(masks))
        tables = self.net.train_tables(tokens.shape[-1])
        for s in range(0, tokens.shape[1], self.chunk):
            rows = slice(s, s + self.chunk)
            lp = self.net.train_logits(tokens[:, rows], tables).to(self.loss_dtype).log_softmax(-1)
            pred = lp.argmax(-1)
            terms = []
            for lab, mask in zip(targets, masks, strict=True):
                lab, mask = lab[:, rows], mask[:, rows]
                nll = -lp.gather(-1, lab.unsqueeze(-1)).squeeze(-1)
                terms += [torch.where(mask, x, 0.0).sum(-1) for x in (nll, (pred == lab).to(lp.dtype))]
            totals = [t + x for t, x in zip(totals, terms, strict=True)]
        counts = [m.sum(-1).clamp(min=1).to(self.loss_dtype) for m in masks for _ in range(2)]
        return [t / n for t, n in zip(totals, counts, strict=True)]

    # ---- the loop -----------------------------------------------------------------------------
    @property
    def live(self) -> int:
        return len(self.configs)

    def run(self, progress: bool | None = None) -> Iterator[Report]:
        """Train until every member has ended, yielding at each evaluation. `progress` shows a bar
        (epoch, members live/finished/test accuracy 0.99 reached, model-epochs/s, ETA) in a terminal or a notebook;
        None: only when stderr is a terminal or this runs in a notebook (never in a Ray worker)."""
        bar = ProgressBar(self, progress)
        every = self.arch.eval_every
        try:
            while self.configs:
                target = min((self.epoch // every + 1) * every, *(t.end_epoch for t in self.trackers))
                start = time.perf_counter()
                live, first = self.live, self.epoch
                while self.epoch < target:
                    self._train_epoch()
                    self.epoch += 1
                    if self.epoch in self._any_snapshot_epoch:  # a device sync, at snapshot epochs only
                        self._snapshot(
                            [k for k, c in enumerate(self.configs) if self.epoch in self._snapshot_epochs[c.run_id]],
                            SCHEDULED,
                        )
                values = self._metrics()  # syncs, so the timing below is honest
                self.train_seconds += time.perf_counter() - start
                progress_rows, progress_seconds = self._progress()
                report = self._report(values)
                report.progress, report.progress_seconds = progress_rows, progress_seconds
                bar.update(report, model_epochs=live * (self.epoch - first))
                yield report
            if self._pending:
                yield Report(
                    self.epoch, [], self._take_pending(), 0, self.train_seconds, snapshots=self._take_snapshots()
                )
        finally:
            bar.close()

    def _progress(self) -> tuple[list[dict[str, Any]], float]:
        """Progress measures of the live members (before any of them leave at this epoch)."""
        every = self.arch.progress_every
        if not every or self.epoch % every:
            return [], 0.0
        start = time.perf_counter()
        rows = measure_pack(self)
        return [
            {"run_id": c.run_id, "epoch": self.epoch, **row} for c, row in zip(self.configs, rows, strict=True)
        ], time.perf_counter() - start

    def _report(self, values: Tensor) -> Report:
        epoch, every = self.epoch, self.arch.eval_every
        metrics, keep = [], []
        finished = self._take_pending()
        for k, (cfg, tr) in enumerate(zip(self.configs, self.trackers, strict=True)):
            row = dict(zip(METRIC_COLUMNS, values[k].tolist(), strict=True))
            diverged = not (math.isfinite(row["train/loss"]) and math.isfinite(row["test/loss"]))
            due = epoch % every == 0 or epoch >= tr.end_epoch or diverged
            if due:
                metrics.append({"run_id": cfg.run_id, "epoch": epoch, **row})
                tr.last = row
                before = (tr.epoch_train_99, tr.epoch_test_99)
                self._update_tracker(cfg, tr, row, epoch)
                if before[0] is None and tr.epoch_train_99 is not None:
                    self._snapshot([k], "train_99")
                if before[1] is None and tr.epoch_test_99 is not None:
                    self._snapshot([k], "test_99")
            if diverged or epoch >= tr.end_epoch:
                status = "diverged" if diverged else ("stopped" if tr.stop_fired else "done")
                finished.append(self._outcome(cfg, tr, status))
                self._snapshot([k], "end")
                if self.on_leave is not None:
                    self.on_leave([k], status)
            else:
                keep.append(k)
        if len(keep) < len(self.configs):
            self._select(keep)
        return Report(epoch, metrics, finished, self.live, self.train_seconds, snapshots=self._take_snapshots())

    def _snapshot(self, members: list[int], event: str) -> None:
        """Copy these live members' weights to the host (in the schedule's dtype) as snapshots of
        this epoch; an event at an epoch already kept adds its label to that snapshot."""
        if self.snapshots is None or not members or (event != SCHEDULED and event not in self.snapshots.events):
            return
        rows = (
            self.flat.data[torch.tensor(members, device=self.device)]
            .detach()
            .to("cpu", dtype=self.snapshots.torch_dtype)
        )
        for k, row in zip(members, rows, strict=True):
            key = (self.configs[k].run_id, self.epoch)
            if key in self._taken:
                self._taken[key] = self._taken[key].with_event(event)
            else:
                self._taken[key] = Snapshot(key[0], self.epoch, event, self.flat.unflatten(row))

    def _take_snapshots(self) -> list[Snapshot]:
        taken, self._taken = list(self._taken.values()), {}
        return taken

    def _update_tracker(self, cfg: RunConfig, tr: _Tracker, row: dict[str, float], epoch: int) -> None:
        if tr.epoch_train_99 is None and row["train/acc"] >= ACC_THRESHOLD:
            tr.epoch_train_99 = epoch
        if tr.epoch_test_99 is None and row["test/acc"] >= ACC_THRESHOLD:
            tr.epoch_test_99 = epoch
        if cfg.stop_acc is None:
            return
        if not tr.stop_fired:
            tr.streak = tr.streak + 1 if row["test/acc"] >= cfg.stop_acc else 0
            if tr.streak >= cfg.stop_patience:
                tr.stop_fired = True
                tr.end_epoch = min(tr.end_epoch, epoch + cfg.stop_extra_epochs)
        elif epoch >= tr.end_epoch and row["test/acc"] < cfg.stop_acc and epoch < cfg.epochs:
            # The extra epochs ended on a dip (a loss spike): stopping here would leave a member whose last
            # evaluation contradicts the rule that stopped it, which grokcore/verdict.py reads as fallen back
            # (undecided, and never extended, being stopped). Train on, evaluation by evaluation, until test
            # accuracy is back at stop_acc or the budget ends.
            tr.end_epoch = min(cfg.epochs, epoch + self.arch.eval_every)

    def _outcome(self, cfg: RunConfig, tr: _Tracker, status: str) -> MemberOutcome:
        return MemberOutcome(
            config=cfg,
            status=status,
            epochs_trained=self.epoch,
            epoch_train_99=tr.epoch_train_99,
            epoch_test_99=tr.epoch_test_99,
            final=dict(tr.last),
            wall_seconds=self.train_seconds,
            device=str(self.device),
        )

    def _take_pending(self) -> list[MemberOutcome]:
        pending, self._pending = self._pending, []
        return pending

    def drop(self, run_ids: Sequence[str], status: str = "pruned") -> None:
        """End these members now (e.g. pruned by a search); they come back in the next report's
        `finished` with this status (or from `departures()` at once) and leave the batch immediately."""
        drop = set(run_ids)
        keep = [k for k, c in enumerate(self.configs) if c.run_id not in drop]
        for k, (cfg, tr) in enumerate(zip(self.configs, self.trackers, strict=True)):
            if cfg.run_id in drop:
                self._pending.append(self._outcome(cfg, tr, status))
                self._snapshot([k], "end")
        self._select(keep)

    def departures(self) -> tuple[list[MemberOutcome], list[Snapshot]]:
        """The outcomes and end snapshots of members dropped since the last report, taken now instead
        of with the next report. A checkpoint does not hold them (the members are gone from the
        batch), so a caller that checkpoints between drop() and the next report takes them first and
        commits them with that checkpoint; save() refuses while any are pending."""
        return self._take_pending(), self._take_snapshots()

    def _select(self, keep: list[int]) -> None:
        """Keep only these members: the batch shrinks, so cost follows the live members."""
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        kept = set(keep)
        leaving = [k for k in range(len(self.configs)) if k not in kept]
        if leaving:
            rows = self.flat.data[torch.tensor(leaving, device=self.device)].detach().cpu()
            self.departed.update({self.configs[k].run_id: row for k, row in zip(leaving, rows, strict=True)})
        self.configs = [self.configs[k] for k in keep]
        self.trackers = [self.trackers[k] for k in keep]
        if not keep:
            return
        self.data = {k: v[index] for k, v in self.data.items()}
        for part in ("train", "test"):  # chunks that only pad the members left: exact zeros, dropped
            n = _whole_chunks(int(self.data[f"{part}_count"].max()), self.chunk)
            self.data |= {k: v[:, :n] for k, v in self.data.items() if k.startswith(f"{part}_") and v.dim() > 1}
        self.optimizer.select(index)
        self.net.set_member_params(self.flat.params)

    # ---- weights of one member ----------------------------------------------------------------
    def member_weights(self, run_id: str) -> dict[str, Tensor]:
        """One member's weights under TransformerLens names, no member axis: its current weights
        while it trains, its final weights (on the host) once it has left the batch."""
        ids = [c.run_id for c in self.configs]
        if run_id in ids:
            return self.flat.member_tensors(ids.index(run_id))
        if run_id in self.departed:
            return self.flat.unflatten(self.departed[run_id])
        raise KeyError(f"{run_id} is not a member of this pack")

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self._pending:
            raise ValueError(
                f"{len(self._pending)} dropped member(s) not reported yet: take departures() (or the "
                "next report) first, or a checkpoint would lose their outcomes and end snapshots"
            )
        return {
            "format": STATE_FORMAT,
            "epoch": self.epoch,
            "step": self.optimizer.step_count,
            "train_seconds": self.train_seconds,
            "configs": [c.to_dict() for c in self.configs],
            "trackers": [vars(t) for t in self.trackers],
            "departed": list(self.departed),
            "tensors": {
                "params": self.flat.data,
                "exp_avg": self.optimizer.exp_avg,
                "exp_avg_sq": self.optimizer.exp_avg_sq,
                **({"departed": torch.stack(list(self.departed.values()))} if self.departed else {}),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Compared as configs, not dicts: a checkpoint written before a config field existed lacks it.
        if self.configs != [RunConfig.from_dict(c) for c in state["configs"]]:
            raise ValueError("checkpoint members differ from this trainer's")
        self.epoch, self.train_seconds = state["epoch"], state["train_seconds"]
        self.optimizer.step_count = state["step"]
        self.trackers = [_Tracker(**t) for t in state["trackers"]]
        t = state["tensors"]
        self.flat.data.copy_(t["params"])
        self.optimizer.exp_avg.copy_(t["exp_avg"])
        self.optimizer.exp_avg_sq.copy_(t["exp_avg_sq"])
        departed = state.get("departed", [])  # absent in checkpoints written before it was kept
        self.departed = dict(zip(departed, t["departed"].cpu(), strict=True)) if departed else {}

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the full state under `directory` atomically (a temporary sibling, then rename)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        state = self.state_dict()
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in state.pop("tensors").items()}, tmp / "state.safetensors"
        )
        (tmp / "state.json").write_text(json.dumps(state))
        old = directory.with_name(directory.name + ".old")
        if directory.exists():
            shutil.rmtree(old, ignore_errors=True)
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
        return directory

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        device: str | torch.device = "cpu",
        tf32: bool = False,
        torch_compile: bool = False,
        snapshots: SnapshotSchedule | None = None,
    ) -> PackTrainer:
        from safetensors.torch import load_file

        directory = Path(directory)
        state = json.loads((directory / "state.json").read_text())
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"{directory}: unknown checkpoint format {state.get('format')}")
        trainer = cls(
            [RunConfig.from_dict(c) for c in state["configs"]],
            device=device,
            tf32=tf32,
            torch_compile=torch_compile,
            snapshots=snapshots,
        )
        state["tensors"] = load_file(directory / "state.safetensors", device=str(trainer.device))
        trainer.load_state_dict(state)
        return trainer


def example_chunk(pool_size: int) -> int:
    """Rows per chunk of a member's examples (PackTrainer._build_data): a function of the task's pool
    alone, which every member of a pack shares, so a member has the same chunks alone and in any pack."""
    return _whole_chunks(-(-pool_size // EXAMPLE_CHUNKS), CHUNK_MULTIPLE)


def _whole_chunks(n: int, chunk: int) -> int:
    """n rounded up to a multiple of chunk."""
    return -(-n // chunk) * chunk


def _mean_weights(mask: Tensor) -> Tensor:
    """1/count on the masked entries of each row, so (x * w).sum(-1) is the row's masked mean."""
    mask = mask.double()
    return mask / mask.sum(-1, keepdim=True).clamp(min=1)


def train_pack(
    configs: Sequence[RunConfig],
    device: str | torch.device = "cpu",
    tf32: bool = False,
    torch_compile: bool = False,
    progress: bool | None = None,
) -> tuple[list[dict[str, Any]], list[MemberOutcome]]:
    """Train to the end; returns (metrics rows, outcomes). For notebooks and quick looks.
    `progress`: as PackTrainer.run's (a bar in a terminal or a notebook by default)."""
    metrics: list[dict[str, Any]] = []
    outcomes: list[MemberOutcome] = []
    for report in PackTrainer(configs, device=device, tf32=tf32, torch_compile=torch_compile).run(progress):
        metrics.extend(report.metrics)
        outcomes.extend(report.finished)
    return metrics, outcomes


class ProgressBar:
    """A tqdm bar over epochs for PackTrainer.run: live / finished / test-accuracy-0.99 members and
    model-epochs per second beside it, the ETA from the epoch budget (stop rules may end sooner)."""

    def __init__(self, trainer: PackTrainer, enabled: bool | None):
        self.trainer = trainer
        self.bar = None
        self.finished = 0
        self.generalised: set[str] = set()
        self.last_update = time.perf_counter()
        if enabled is None:
            enabled = interactive()
        if not enabled or not trainer.configs:
            return
        from tqdm.auto import tqdm

        budget = max(t.end_epoch for t in trainer.trackers)
        self.bar = tqdm(
            total=budget,
            initial=trainer.epoch,
            unit="epoch",
            dynamic_ncols=True,
            desc=f"{len(trainer.configs)} member{'s' if len(trainer.configs) != 1 else ''}",
        )

    def update(self, report: Report, model_epochs: int) -> None:
        if self.bar is None:
            return
        self.finished += len(report.finished)
        self.generalised.update(o.run_id for o in report.finished if o.epoch_test_99 is not None)
        self.generalised.update(
            c.run_id
            for c, t in zip(self.trainer.configs, self.trainer.trackers, strict=True)
            if t.epoch_test_99 is not None
        )
        now = time.perf_counter()
        rate, self.last_update = model_epochs / max(now - self.last_update, 1e-9), now
        # first crossings of 0.99 (epoch_test_99), not the held rule of grokcore/verdict.py: hence not "generalised"
        self.bar.set_postfix(
            live=report.live,
            finished=self.finished,
            test_99=len(self.generalised),
            model_epochs_s=f"{rate:,.0f}",
            refresh=False,
        )
        self.bar.update(report.epoch - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def interactive() -> bool:
    """stderr is a terminal, or this runs in a Jupyter kernel (where tqdm.auto draws a widget)."""
    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())
