"""grokcore's modules import each other one way only (a cycle kept alive by a late import is still a cycle)."""

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "grokcore"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of import nodes under `if TYPE_CHECKING:`: annotations only, never run."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    return skipped


def import_graph() -> dict[str, set[str]]:
    """module -> the grokcore modules it imports, at module level or inside a function."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skipped = _type_checking_only(tree)
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("grokcore"):
                # `from grokcore.progress import columns` names a module; `from grokcore.config import X` a name
                subs = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
                deps |= subs or {node.module}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("grokcore")}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as e:
        return e.args[1]
    return None


def test_grokcore_modules_import_each_other_without_cycles():
    graph = import_graph()
    # the walk sees imports, late ones included
    assert "grokcore.snapshots.schedule" in graph["grokcore.train"]
    assert "grokcore.model" in graph["grokcore.snapshots.rebuild"]
    assert find_cycle(graph) is None, find_cycle(graph)


def test_the_cycle_check_finds_a_cycle():
    """A negative control: config -> task and task -> config (as a late import once made it)."""
    graph = import_graph()
    graph["grokcore.task"] = graph["grokcore.task"] | {"grokcore.config"}
    cycle = find_cycle(graph)
    assert cycle is not None and set(cycle) == {"grokcore.config", "grokcore.task"} and cycle[0] == cycle[-1]
