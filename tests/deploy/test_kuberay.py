"""deploy/kuberay/: the RayJob and RayCluster manifests checked against KubeRay's published CRD
schemas (v1.7.0, pinned in deploy/kuberay/crd/, see SOURCE.md), strictly as `kubectl apply
--validate=strict` would (an unknown field is an error, not silently dropped), and against the
project (the image's Ray is pyproject's, the entrypoint is a valid `grok sweep` of a spec that
exists). The image is built only where a Docker daemon answers (slow)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).parents[2]
KUBERAY = REPO / "deploy" / "kuberay"
MANIFESTS = {"rayjob.yaml": "rayjobs", "raycluster.yaml": "rayclusters"}


def schema(plural: str) -> dict:
    return json.loads((KUBERAY / "crd" / f"{plural}.v1.schema.json").read_text())


def problems(doc: dict, plural: str) -> list[str]:
    """Every way `doc` breaks the CRD's schema: jsonschema's errors (types, enums, required
    fields, quantity patterns), plus fields the schema does not know (Kubernetes would prune them
    silently; strict validation refuses them)."""
    import jsonschema

    spec = schema(plural)
    found = [
        f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in jsonschema.Draft7Validator(spec).iter_errors(doc)
    ]
    return found + unknown_fields(doc, spec, "")


def unknown_fields(value, spec: dict, where: str) -> list[str]:
    if isinstance(value, dict):
        props = spec.get("properties")
        if props is None:
            extra = spec.get("additionalProperties")
            return (
                [e for k, v in value.items() for e in unknown_fields(v, extra, f"{where}.{k}")]
                if isinstance(extra, dict)
                else []
            )
        if spec.get("x-kubernetes-preserve-unknown-fields"):
            return []
        out = [
            f"{where[1:] or '(top)'}: unknown field {k!r}"
            for k in value
            if k not in props and not (where == "" and k in ("apiVersion", "kind"))
        ]
        return out + [e for k, v in value.items() if k in props for e in unknown_fields(v, props[k], f"{where}.{k}")]
    if isinstance(value, list) and isinstance(spec.get("items"), dict):
        return [e for i, v in enumerate(value) for e in unknown_fields(v, spec["items"], f"{where}[{i}]")]
    return []


def manifest(name: str) -> dict:
    docs = [d for d in yaml.safe_load_all((KUBERAY / name).read_text()) if d]
    assert len(docs) == 1
    return docs[0]


def ray_pin() -> str:
    sys.path.insert(0, str(KUBERAY))
    try:
        from pins import pin
    finally:
        sys.path.remove(str(KUBERAY))
    return pin("ray").split("==")[1]


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_is_valid_against_kuberays_crd(name):
    doc = manifest(name)
    assert doc["apiVersion"] == "ray.io/v1"
    assert problems(doc, MANIFESTS[name]) == []


def test_the_validation_catches_mistakes():
    """Negative controls: a misspelt field, a wrong type, a missing required field, a bad quantity."""
    job = manifest("rayjob.yaml")
    typo = json.loads(json.dumps(job))
    typo["spec"]["rayClusterSpec"]["workerGroupSpec"] = typo["spec"]["rayClusterSpec"].pop("workerGroupSpecs")
    assert problems(typo, "rayjobs") == ["spec.rayClusterSpec: unknown field 'workerGroupSpec'"]
    wrong = json.loads(json.dumps(job))
    wrong["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "two"
    assert problems(wrong, "rayjobs") == [
        ("spec.rayClusterSpec.workerGroupSpecs.0.replicas: 'two' is not of type 'integer'")
    ]
    missing = json.loads(json.dumps(job))
    del missing["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["groupName"]
    assert problems(missing, "rayjobs") == [
        ("spec.rayClusterSpec.workerGroupSpecs.0: 'groupName' is a required property")
    ]
    quantity = manifest("raycluster.yaml")
    quantity["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = (
        "32 GB"
    )
    [bad] = problems(quantity, "rayclusters")
    assert bad.startswith(
        "spec.workerGroupSpecs.0.template.spec.containers.0.resources.limits.memory: '32 GB' does not match"
    ), bad
    deep = manifest("raycluster.yaml")  # inside the pod template too
    deep["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["envFom"] = []
    assert problems(deep, "rayclusters") == ["spec.headGroupSpec.template.spec.containers[0]: unknown field 'envFom'"]


def containers(cluster_spec: dict) -> list[dict]:
    groups = [cluster_spec["headGroupSpec"], *cluster_spec["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_matches_the_project(name):
    doc = manifest(name)
    cluster = doc["spec"]["rayClusterSpec"] if doc["kind"] == "RayJob" else doc["spec"]
    assert cluster["rayVersion"] == ray_pin()  # KubeRay runs the image's Ray as this version
    images = {c["image"] for c in containers(cluster)}
    assert len(images) == 1  # head and workers from one image: the same Ray, torch and project
    for c in containers(cluster):  # every Ray container reads the object store's credentials
        assert {"secretRef": {"name": "grok-results-s3"}} in c["envFrom"]
    gpus = [
        g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu")
        for g in cluster["workerGroupSpecs"]
    ]
    assert gpus == ["1"] and cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


def test_rayjob_entrypoint_is_a_grok_sweep_of_a_spec_here():
    from sweeps.cli import build_parser
    from sweeps.spec import load_spec

    argv = shlex.split(manifest("rayjob.yaml")["spec"]["entrypoint"])
    assert argv[:2] == ["grok", "sweep"]
    args = build_parser().parse_args(argv[1:])
    assert args.results.startswith("s3://") and args.address is None  # RAY_ADDRESS is set inside a Ray job
    spec = load_spec(REPO / args.spec)  # the image's working directory is the repository's copy
    assert spec.gpus > 0 and len(spec.members()) > 0


def test_image_pins_come_from_pyproject():
    sys.path.insert(0, str(KUBERAY))
    try:
        from pins import pin
    finally:
        sys.path.remove(str(KUBERAY))
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert pin("torch") in deps
    assert pin("ray") == "ray[default,tune]==" + next(d for d in deps if d.startswith("ray[")).split("==")[1]
    copied = [
        token
        for line in (KUBERAY / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
        for token in line.split()[1:-1]
    ]
    assert copied == ["pyproject.toml", "README.md", "deploy/kuberay/pins.py", "grokcore", "sweeps", "analysis"]
    kept = (KUBERAY / "Dockerfile.dockerignore").read_text().split()
    for path in copied:  # each is in the repository and not ignored out of the build context
        assert (REPO / path).exists() and (f"!{path}" in kept or f"!{path}/" in kept), path


def _docker_daemon() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.slow
def test_the_image_builds_and_runs_grok():
    if not _docker_daemon():
        pytest.skip("no Docker daemon answers here (docker info failed): the image was not built")
    tag = "grokking-sweeps:test-cpu"
    build = subprocess.run(
        ["docker", "build", "-f", str(KUBERAY / "Dockerfile"), "-t", tag, str(REPO)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run(
        ["docker", "run", "--rm", tag, "grok", "sweep", "sweeps/examples/quick.yaml", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0 and "members" in run.stdout, run.stderr[-3000:]
