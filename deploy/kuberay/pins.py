"""Print the pip requirements the image installs first, read from pyproject.toml (the one home of
the pins): torch at its pinned version (from PyTorch's own index, CPU or CUDA build) and Ray at its
pinned version with the `default` extra, which a KubeRay head needs (the dashboard and its job
server: RayJob submits through it) besides the project's `tune`.

    python deploy/kuberay/pins.py torch      # torch==2.13.0
    python deploy/kuberay/pins.py ray        # ray[default,tune]==2.60.0
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def pin(name: str, pyproject: Path = Path(__file__).parents[2] / "pyproject.toml") -> str:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    for dep in deps:
        found = re.fullmatch(rf"{name}(\[[^\]]*\])?==(\S+)", dep.strip())
        if found:
            extras = {e.strip() for e in (found.group(1) or "[]")[1:-1].split(",") if e.strip()}
            if name == "ray":
                extras.add("default")
            return f"{name}[{','.join(sorted(extras))}]=={found.group(2)}" if extras else f"{name}=={found.group(2)}"
    raise SystemExit(f"pyproject.toml pins no {name}==VERSION (the image needs an exact pin)")


if __name__ == "__main__":
    print(pin(sys.argv[1]))
