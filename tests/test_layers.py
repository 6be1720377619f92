"""The service's modules import in one direction, without a circle: every
import statement of ``app.py``, ``humidity/`` and ``tables/`` counts, at
module level or inside a function (no broker).

``python -m tests.test_layers`` prints the graph, layer by layer.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Lowest first; a module may import from its own layer or a lower one.
LAYERS = (
    ("core", ("humidity", "humidity.core")),
    ("plumbing", ("humidity.plumbing",)),
    ("app", ("humidity.application",)),
    ("declare", ("humidity.declare", "tables")),
    ("flows", ("humidity.flow",)),
    ("edge", ("humidity.web", "humidity.cli", "humidity.service", "app")),
)
#: What the pure core may import from outside the project: no Faust, no Kafka client.
NOT_IN_CORE = ("faust", "mode", "aiokafka", "rocksdict", "prometheus_client", "app", "tables")


def project_modules() -> dict[str, Path]:
    modules = {"app": ROOT / "app.py"}
    for package in ("humidity", "tables"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_names(path: Path, module: str) -> set[str]:
    """Every module named by an import statement anywhere in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(filter(None, [".".join(anchor), base]))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(project module -> project modules it imports, project module -> outside modules it imports)."""
    modules = project_modules()
    inside, outside = {}, {}
    for module, path in modules.items():
        names = imported_names(path, module)
        inside[module] = {name for name in names if name in modules and name != module}
        outside[module] = {name.split(".")[0] for name in names if not any(
            name == m or name.startswith(m + ".") for m in modules)}
    return inside, outside


def layer_of(module: str) -> int:
    best, found = -1, None
    for index, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    assert found is not None, f"{module} is in no layer: add it to LAYERS"
    return found


def find_circle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str]:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                circle = visit(target)
                if circle:
                    return circle
        stack.pop()
        state[module] = 2
        return []

    for module in sorted(graph):
        if module not in state:
            circle = visit(module)
            if circle:
                return circle
    return []


def test_the_import_graph_has_no_circle():
    inside, _ = import_graph()
    assert len(inside) > 20, "the scan found the modules"
    circle = find_circle(inside)
    assert not circle, "import circle: " + " -> ".join(circle)


def test_each_layer_imports_only_its_own_or_lower_layers():
    inside, _ = import_graph()
    upward = [f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
              for module, targets in inside.items() for target in sorted(targets)
              if layer_of(target) > layer_of(module)]
    assert not upward, "\n".join(upward)


def test_the_core_is_pure():
    _, outside = import_graph()
    impure = {module: sorted(names & set(NOT_IN_CORE)) for module, names in outside.items()
              if layer_of(module) == 0 and names & set(NOT_IN_CORE)}
    assert not impure, impure


def test_a_circle_would_be_found():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) == []


def main() -> None:
    inside, _ = import_graph()
    for index, (name, _prefixes) in enumerate(LAYERS):
        print(f"{name}:")
        for module in sorted(m for m in inside if layer_of(m) == index):
            print(f"  {module} -> {', '.join(sorted(inside[module])) or '-'}")
    circle = find_circle(inside)
    print("circle: " + " -> ".join(circle) if circle else "no import circle")
    sys.exit(1 if circle else 0)


if __name__ == "__main__":
    main()


MODULE_LINES_MAX = 400
FUNCTION_LINES_MAX = 60


def test_no_module_over_400_lines_and_no_function_over_60():
    """One concept per module, and functions short enough to read at once."""
    too_long = []
    for name, path in project_modules().items():
        source = path.read_text()
        if len(source.splitlines()) > MODULE_LINES_MAX:
            too_long.append(f"{name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > FUNCTION_LINES_MAX:
                    too_long.append(f"{name}.{node.name}: {lines} lines")
    assert not too_long, too_long
