"""The floor plan, checked: every import points down the layers, no cycles, rooms of a readable size.

Read from the source with ``ast``, so imports under ``TYPE_CHECKING`` and inside functions count
too: a cycle hidden behind a lazy import is still a cycle a reader has to hold in their head.
The layers are the README's code map, bottom first.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("contracts", "exporters", "processors", "app")

# Bottom first. A unit may import itself and any unit listed before it, nothing after it.
LAYERS = (
    "contracts",
    "exporters",
    "processors",
    "app",  # the package itself: __version__
    "app.errors",
    "app.config",
    "app.wire",
    "app.calls",
    "app.providers",
    "app.hooks",
    "app.custom_logger",  # the public module users' callback files import
    "app.litellm",
    "app.store",
    "app.teams",
    "app.limits",
    "app.gateway",
    "app.dialects",
    "app.api",
    "app.server",
    "app.smoke",
    "app.cli",
)
MAX_MODULES_PER_PACKAGE = 12
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


@dataclass
class Codebase:
    files: dict[str, Path] = field(default_factory=dict)  # module name -> file
    imports: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_codebase(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> Codebase:
    code = Codebase()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            code.files[module_name(path, root)] = path
    for name, path in code.files.items():
        tree = ast.parse(path.read_text(), str(path))
        code.imports[name] = {t for t in imported(tree, name, path.name == "__init__.py") if t in code.files} - {name}
    return code


def imported(tree: ast.AST, module: str, is_package: bool) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node, module, is_package)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")[: None if is_package else -1]
    parts = parts[: len(parts) - node.level + 1]
    return ".".join([*parts, *([node.module] if node.module else [])])


def cycles(imports: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(imports):
        if start in index:
            continue
        work = [(start, iter(sorted(imports.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = pop_component(stack, on_stack, node)
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(imports.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def pop_component(stack: list[str], on_stack: set[str], root: str) -> list[str]:
    component = []
    while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == root:
            return component


def layer_of(module: str) -> int:
    """The index in LAYERS of the longest unit that ``module`` is or lies inside."""
    best = max((unit for unit in LAYERS if module == unit or module.startswith(unit + ".")), key=len)
    return LAYERS.index(best)


def upward_imports(imports: Mapping[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((source, target) for source, targets in imports.items() for target in targets
                  if layer_of(target) > layer_of(source))


def crowded_packages(files: Mapping[str, Path]) -> dict[str, int]:
    counts: dict[Path, int] = defaultdict(int)
    for path in files.values():
        if path.name != "__init__.py":
            counts[path.parent] += 1
    return {str(d.relative_to(ROOT)): n for d, n in counts.items() if n > MAX_MODULES_PER_PACKAGE}


def long_functions(files: Mapping[str, Path]) -> list[tuple[str, str, int]]:
    found = []
    for path in files.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append((str(path.relative_to(ROOT)), node.name, length))
    return found


def long_modules(files: Mapping[str, Path]) -> dict[str, int]:
    lengths = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in files.values()}
    return {path: n for path, n in lengths.items() if n > MAX_MODULE_LINES}


@pytest.fixture(scope="module")
def code() -> Codebase:
    return read_codebase()


def test_every_module_belongs_to_a_layer(code: Codebase) -> None:
    top_level = {m for m in code.files if m.count(".") == 1 and m.startswith("app.")}
    unplaced = sorted(m for m in top_level if m not in LAYERS)
    assert unplaced == [], "a new room in app/ needs its place in LAYERS (and in the README's code map)"


def test_no_import_cycles(code: Codebase) -> None:
    assert cycles(code.imports) == []


def test_every_import_points_down_the_layers(code: Codebase) -> None:
    assert upward_imports(code.imports) == []


def test_no_package_is_a_crowd(code: Codebase) -> None:
    assert crowded_packages(code.files) == {}


def test_functions_and_modules_stay_readable(code: Codebase) -> None:
    assert long_functions(code.files) == []
    assert long_modules(code.files) == {}


def test_the_checks_catch_what_they_look_for() -> None:
    """Each checker finds a planted fault, so an empty answer above means something."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert upward_imports({"exporters.x": {"app.wire.y"}, "app.wire.y": {"contracts.z"}}) == [
        ("exporters.x", "app.wire.y")]
    assert upward_imports({"app.calls.span": {"app.gateway.proxy"}}) == [("app.calls.span", "app.gateway.proxy")]
    assert upward_imports({"app.gateway.proxy": {"app.calls.span", "app.gateway.sse"}}) == []


def test_the_reader_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "app"
    (pkg / "gateway").mkdir(parents=True)
    for path in (pkg / "__init__.py", pkg / "gateway" / "__init__.py"):
        path.write_text("")
    (pkg / "errors.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.gateway import proxy\n")
    (pkg / "gateway" / "proxy.py").write_text("def f():\n    from ..errors import X\n")
    code = read_codebase(tmp_path, ["app"])
    assert code.imports["app.errors"] == {"app.gateway", "app.gateway.proxy"}
    assert code.imports["app.gateway.proxy"] == {"app.errors"}
