"""Pin KubeRay's published CRD schemas: the v1 openAPIV3Schema of each CRD file, as compact JSON.

    python deploy/kuberay/crd/pin.py ray.io_rayclusters.yaml ray.io_rayjobs.yaml

takes the CRD YAML files of a KubeRay release (ray-operator/config/crd/bases/ in
github.com/ray-project/kuberay at a release tag; the same files as the Helm chart's crds/) and
writes <plural>.v1.schema.json beside this script, with the source recorded in SOURCE.md by hand.
The full CRDs are 2.3 MB of YAML; the schema is all a validation needs (tests/deploy/test_kuberay.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def main(paths: list[str]) -> None:
    for path in paths:
        crd = yaml.safe_load(Path(path).read_text())
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
        out = Path(__file__).with_name(f"{crd['spec']['names']['plural']}.v1.schema.json")
        out.write_text(json.dumps(version["schema"]["openAPIV3Schema"], separators=(",", ":"), sort_keys=True) + "\n")
        print(f"{path} -> {out} ({crd['spec']['names']['kind']} v1)")


if __name__ == "__main__":
    main(sys.argv[1:])
