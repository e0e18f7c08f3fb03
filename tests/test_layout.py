"""The package's layout: wings in layers, every import pointing down, no circle."""

import ast
from pathlib import Path

import skinr

PACKAGE = Path(skinr.__file__).parent

# Lowest first: a module imports only from its own layer or below. Within a layer,
# imports may go either way, but never round in a circle.
LAYERS = [
    ("skinr._version", "skinr.signals", "skinr.metrics", "skinr.datasets"),
    ("skinr._core",),  # the fit engine
    ("skinr.nn",),  # layers, encodings, cells, FLOPs, native kernels
    ("skinr.inverse",),  # the operators
    ("skinr.base", "skinr.persistence"),  # the estimator contract and its file
    ("skinr.estimators", "skinr.codec"),  # the architectures
    ("skinr.io", "skinr.parallel", "skinr.model_selection", "skinr.comparison", "skinr.meta"),
    ("skinr.cli",),
    ("skinr", "skinr.__main__"),
]


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Each skinr module and the skinr modules it imports (anywhere in its body)."""
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                submodules = [f"{target}.{a.name}" for a in node.names]
                found = [m for m in submodules if m in modules]
                targets = found if len(found) == len(submodules) else [*found, target]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def layer(module: str) -> int:
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{module} belongs to no layer of tests/test_layout.py"
    return best[0]


def test_every_import_points_down_or_across():
    graph = import_graph()
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if layer(target) > layer(source)
    )
    assert upward == []


def test_no_module_imports_itself_round_a_circle():
    graph = import_graph()
    circles, index, low, stack, on_stack = [], {}, {}, [], set()

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert circles == []


def test_the_graph_sees_the_imports_it_judges():
    graph = import_graph()
    # A relative import, a module imported from a package, and a lazy one in a function.
    assert "skinr._core.fit" in graph["skinr.base"]
    assert "skinr.nn._native" in graph["skinr.nn.layers"]
    assert "skinr.signals" in graph["skinr._core.routes"]
