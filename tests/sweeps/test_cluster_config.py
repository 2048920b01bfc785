"""cluster.yaml passes the checks `ray up` runs on it (Ray's own prepare_config and JSON schema),
installs the project on every node, and keeps the dashboard off the network."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"


def load() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def test_ray_up_accepts_the_local_provider_config():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = load()
    assert config["provider"]["type"] == "local"
    # `ray up` aborts on these with a local provider
    assert not {"available_node_types", "head_node", "worker_nodes", "head_node_type"} & set(config)
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)  # raises on any field the schema does not allow
    assert prepared["max_workers"] == len(config["provider"]["worker_ips"])
    assert prepared["provider"]["head_ip"] == config["provider"]["head_ip"]


def test_every_node_installs_the_project_and_the_dashboard_stays_local():
    config = load()
    setup = "\n".join(config["setup_commands"])
    assert "torch==2.13.0" in setup and "-e ~/grok" in setup  # the pinned torch, then the project
    assert config["file_mounts"]["~/grok"] == "."
    head = "\n".join(config["head_start_ray_commands"])
    assert "--head" in head and "--dashboard-host=127.0.0.1" in head
    assert all(
        "ray start --address=$RAY_HEAD_IP:6379" in c or "ray stop" in c for c in config["worker_start_ray_commands"]
    )
