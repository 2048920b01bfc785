"""Ray's own multi-node test cluster: a worker node removed mid-sweep; its trial is retried from
the pack's last checkpoint on another node and every member ends up present exactly once."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from sweeps_testing import SLOW, SLOW_EVALS, assert_rows_once, records, write_spec

from sweeps.launch import run_sweep
from sweeps.spec import load_spec


@pytest.mark.slow
def test_node_removed_mid_sweep_completes(tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()  # the shared local Ray; the fixture starts it again for later tests
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(3)]  # two packs, and a spare node
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    spec = dataclasses.replace(load_spec(write_spec(tmp_path, SLOW)), max_failures=3)
    sweep = tmp_path / "results" / spec.name
    removed: dict[str, str] = {}

    def remove_a_node() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            recs = records(sweep)
            if len(recs) == 2 and all(r["seq"] >= 2 and not r["done"] for r in recs):
                nodes = {r["node"]: r["pack_id"] for r in recs}
                victim = next(w for w in workers if w.node_id in nodes)
                cluster.remove_node(victim)  # one of the two running packs loses its node
                removed.update(node=victim.node_id, pack=nodes[victim.node_id])
                return
            time.sleep(0.2)

    thread = threading.Thread(target=remove_a_node, daemon=True)
    thread.start()
    try:
        result = run_sweep(spec, results=str(tmp_path / "results"), verbose=0)
        thread.join(timeout=60)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert removed, "the sweep ended before a node could be removed"
    assert result.ok, (result.failed_packs, result.unfinished_packs)
    assert_rows_once(sweep, [m.run_id for m in spec.members()], SLOW_EVALS)
    moved = next(r for r in records(sweep) if r["pack_id"] == removed["pack"])
    assert moved["done"] and moved["node"] != removed["node"]  # finished on another node
