"""The package's import structure, read from the source with ``ast`` (nothing is imported).

* No import cycle among the modules of ``dgcn``: a cycle names its modules in order.
* Every import of ``dgcn`` inside a function says why it is not at the top of its module, in a
  comment on its own line(s) or on the line right above it (one comment above a run of
  consecutive import statements covers the run), e.g. ``# lazy: only this command needs
  torch``.
* The test files collect on a machine with only the core install (``benchmarks/gpu_session.sh``
  runs them there): an extra such as jupytext or matplotlib imported at a test module's top
  level comes after ``pytest.importorskip`` of it, which skips that file alone.

The module graph: an edge A -> B for every import statement that runs when A is imported (the
top level of A, including ``if``/``try``/``with`` and class bodies, excluding functions and
``if TYPE_CHECKING:``). ``from P import name`` imports P, and P.name when that is a module.
Importing a module also runs its parent packages' ``__init__``; those count as edges too,
except a package that contains A itself (Python has started it before A).
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRAGMAS = ("noqa", "type:", "pragma", "isort", "fmt:", "ruff:")


def module_names(package: Path) -> dict[str, Path]:
    """{dotted module name: file} for every ``.py`` file under ``package``."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_time_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run when a module with this body is imported."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                found += import_time_imports(node.body)
            found += import_time_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse):
                found += import_time_imports(block)
            found += import_time_imports(node.finalbody)
        elif isinstance(node, ast.With | ast.ClassDef | ast.For | ast.While):
            found += import_time_imports(node.body)
            found += import_time_imports(getattr(node, "orelse", []))
    return found


def imported_modules(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]
) -> set[str]:
    """The modules of ``known`` whose code one import statement in ``module`` runs (their
    parent packages aside): the module of ``import P.M`` and ``from P.M import attribute``,
    the submodule of ``from P import submodule``."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    found = set()
    for alias in node.names:
        submodule = f"{prefix}.{alias.name}"
        found.add(submodule if submodule in known else prefix)
    return found & known


def _type_checking_imports(tree: ast.Module) -> set[int]:
    """ids of the import statements under ``if TYPE_CHECKING:`` (never run)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for inner in node.body:
                found |= {
                    id(n) for n in ast.walk(inner) if isinstance(n, ast.Import | ast.ImportFrom)
                }
    return found


def import_graph(package: Path, local: bool = False) -> dict[str, set[str]]:
    """{module: the modules its import runs} for the package's modules (see the docstring);
    with ``local``, the imports inside functions count too (they run when the function does)."""
    modules = module_names(package)
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        nodes = import_time_imports(tree.body)
        if local:
            never = _type_checking_imports(tree)
            nodes = [
                n
                for n in ast.walk(tree)
                if isinstance(n, ast.Import | ast.ImportFrom) and id(n) not in never
            ]
        for node in nodes:
            for target in imported_modules(module, is_package, node, known):
                targets.add(target)
                parts = target.split(".")
                for i in range(1, len(parts)):  # the parent packages run first
                    parent = ".".join(parts[:i])
                    inside = module == parent or module.startswith(parent + ".")
                    if parent in known and not inside:
                        targets.add(parent)
        targets.discard(module)
        graph[module] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``, starting at its first name in sorted order) per back edge
    found by a depth-first search; none when the graph has no cycle."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycle = path[path.index(target) :]
                first = cycle.index(min(cycle))  # the same cycle reads the same from any start
                cycles.append(cycle[first:] + cycle[:first] + [min(cycle)])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def _comments(source: str) -> dict[int, str]:
    """{line number: comment text without '#' and pragmas}, only lines with a real comment."""
    found = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            text = token.string.lstrip("#").strip()
            if text and not text.startswith(PRAGMAS):
                found[token.start[0]] = text
    return found


def _imports_dgcn(node: ast.Import | ast.ImportFrom, top: str) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == top for alias in node.names)
    return bool(node.level) or (node.module or "").split(".")[0] == top


def unexplained_local_imports(package: Path) -> list[str]:
    """``path:line: statement`` for every import of the package inside a function without a
    comment on its lines or right above its run of consecutive import statements."""
    offenders = []
    for path in module_names(package).values():
        source = path.read_text()
        lines = source.splitlines()
        comments = _comments(source)
        where = path.relative_to(package.parent)
        tree = ast.parse(source, str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for parent in ast.walk(function):  # every statement list in the function
                for field in ("body", "orelse", "finalbody"):
                    block = getattr(parent, field, None)
                    if not isinstance(block, list):
                        continue
                    for node in _unexplained(block, package.name, comments, lines):
                        offenders.append((str(where), node.lineno, lines[node.lineno - 1].strip()))
    return [f"{where}:{line}: {text}" for where, line, text in sorted(set(offenders))]


def _unexplained(block: list, top: str, comments: dict[int, str], lines: list[str]) -> list:
    found = []
    run_start = 0  # first line of the current run of consecutive import statements
    for node in block:
        if not isinstance(node, ast.Import | ast.ImportFrom):
            run_start = 0
            continue
        run_start = run_start or node.lineno
        if not _imports_dgcn(node, top):
            continue
        own = any(n in comments for n in range(node.lineno, node.end_lineno + 1))
        above = any(
            line - 1 in comments and lines[line - 2].lstrip().startswith("#")
            for line in (node.lineno, run_start)
        )
        if not (own or above):
            found.append(node)
    return found


# --- the package itself


def test_dgcn_has_no_import_cycle():
    cycles = find_cycles(import_graph(ROOT / "dgcn"))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_every_function_local_dgcn_import_says_why():
    offenders = unexplained_local_imports(ROOT / "dgcn")
    assert not offenders, (
        "imports of dgcn inside functions need a comment saying why they are not at the top "
        "of the module (on the line or right above it, e.g. '# lazy: ...'):\n"
        + "\n".join(offenders)
    )


def test_no_cycle_through_the_models_even_counting_imports_in_functions():
    # a function-local import may defer a heavy import, but must not hide a cycle of the models
    cycles = find_cycles(import_graph(ROOT / "dgcn", local=True))
    models = [c for c in cycles if any(m.startswith("dgcn.models") for m in c)]
    assert not models, "import cycles:\n" + "\n".join(" -> ".join(c) for c in models)


def test_the_models_do_not_import_the_config():
    graph = import_graph(ROOT / "dgcn")
    models = {m: t for m, t in graph.items() if m.startswith("dgcn.models")}
    assert models, "no dgcn.models modules found"
    for module, targets in models.items():
        assert "dgcn.config" not in targets, module


#: the package's layers, bottom to top, as the README's layout section draws them
LAYERS = (
    (
        "config",
        "config_check",
        "config_yaml",
        "model_spec",
        "errors",
        "fileio",
        "lazy",
        "markdown",
        "book",
        "progress",
        "optional",
    ),
    ("distributed", "precision"),
    ("datasets",),
    ("models",),
    ("checkpoint",),
    ("evaluation",),
    ("training",),
    ("viz",),
    ("ablation", "reproduce_report", "reproduce", "cli_args", "cli_parser", "cli", "__main__"),
)
#: the one upward import, lazy: a training run draws its curves.png with viz's figure
UPWARD = {("dgcn.training.rundir", "dgcn.viz")}


def _layer(module: str) -> int | None:
    part = module.split(".")[1] if "." in module else None
    return next((i for i, names in enumerate(LAYERS) if part in names), None)


def test_every_module_imports_only_from_the_layers_below():
    graph = import_graph(ROOT / "dgcn", local=True)
    assert {m.split(".")[1] for m in graph if "." in m} <= {n for names in LAYERS for n in names}
    upward = []
    for module, targets in graph.items():
        for target in targets:
            low, high = _layer(module), _layer(target)
            top = ".".join(target.split(".")[:2])
            if None not in (low, high) and high > low and (module, top) not in UPWARD:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that go up a layer:\n" + "\n".join(sorted(upward))


# --- the checks themselves, on a small package written here


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_a_cycle_is_found_and_named(tmp_path):
    package = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import f\n",
            "pkg/b.py": "import pkg.c\n",
            "pkg/c.py": "from . import a\n",
            "pkg/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n",
        },
    )
    cycles = find_cycles(import_graph(package))
    assert cycles == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


def test_imports_in_functions_count_only_when_asked(tmp_path):
    package = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import f\n",
            "pkg/b.py": "def f():\n    from pkg.a import g  # lazy: a imports b\n",
        },
    )
    assert find_cycles(import_graph(package)) == []
    assert find_cycles(import_graph(package, local=True)) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_a_package_init_importing_its_submodules_is_no_cycle(tmp_path):
    package = _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub import g\n",
            "pkg/sub/__init__.py": "from pkg.sub.x import g\n",
            "pkg/sub/x.py": "from pkg.sub.y import h\n\ndef g():\n    from pkg import sub\n",
            "pkg/sub/y.py": "def h():\n    pass\n",
            "pkg/other.py": "from pkg.sub.y import h\n",
        },
    )
    graph = import_graph(package)
    assert graph["pkg.other"] == {"pkg.sub", "pkg.sub.y"}  # the parent package's __init__ runs
    assert find_cycles(graph) == []
    graph["pkg.sub.y"] = {"pkg.other"}  # other -> sub/__init__ -> x -> y -> other
    assert ["pkg.other", "pkg.sub", "pkg.sub.x", "pkg.sub.y", "pkg.other"] in find_cycles(graph)


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ("    from pkg.a import f\n", False),
        ("    from pkg.a import f  # lazy: f imports torch\n", True),
        ("    # lazy: f imports torch\n    from pkg.a import f\n", True),
        ("    # lazy: torch only here\n    import json\n\n    from pkg.a import f\n", True),
        ("    x = 1  # a comment about x\n    from pkg.a import f\n", False),
        ("    from pkg.a import f  # noqa: F401\n", False),
        ("    import json  # lazy: json\n    from pkg.a import f\n", False),
        ("    import json\n\n    # lazy: f imports torch\n    from pkg.a import f\n", True),
        ("    if x:\n        from pkg.a import f\n", False),
        ("    import json\n", True),
    ],
)
def test_function_local_imports_need_a_reason(tmp_path, body, ok):
    package = _write(tmp_path, {"pkg/__init__.py": "", "pkg/m.py": f"def g(x=0):\n{body}"})
    assert (unexplained_local_imports(package) == []) is ok


# --- the test files on a machine with only the core install (benchmarks/gpu_session.sh)

#: packages of the extras (`.[notebooks]`, `.[dev]`) and optional ones, which a machine with
#: only torch, torchvision and the core dependencies lacks
EXTRAS = {"jupytext", "matplotlib", "nbval", "nbclient", "pandas", "ipywidgets", "tensorboard"}


def _skipped_modules(body: list[ast.stmt]) -> set[str]:
    """The modules of ``pytest.importorskip("name")`` calls at the top level of a module."""
    names = set()
    for node in body:
        value = node.value if isinstance(node, ast.Expr | ast.Assign) else None
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute)
            and value.func.attr == "importorskip"
            and value.args
            and isinstance(value.args[0], ast.Constant)
        ):
            names.add(value.args[0].value)
    return names


def extras_imported_at_the_top(source: str) -> list[str]:
    """The extras a test module imports when it is collected without first skipping itself
    (``pytest.importorskip``) when they are missing; a missing one would stop the collection
    of every test, the CUDA ones included."""
    body = ast.parse(source).body
    skipped, found = set(), []
    for node in body:
        skipped |= _skipped_modules([node])
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            roots = [n.split(".")[0] for n in names if n]
            found += [root for root in roots if root in EXTRAS - skipped]
    return found


def test_the_test_files_collect_without_the_extras():
    for path in sorted((ROOT / "tests").glob("*.py")):
        assert not extras_imported_at_the_top(path.read_text()), path.name


def test_an_extra_imported_at_the_top_is_found_unless_skipped_first():
    assert extras_imported_at_the_top("import jupytext\n") == ["jupytext"]
    assert extras_imported_at_the_top("from matplotlib.figure import Figure\n") == ["matplotlib"]
    skipped = 'import pytest\npytest.importorskip("matplotlib")\nfrom matplotlib import pyplot\n'
    assert extras_imported_at_the_top(skipped) == []
    assigned = 'import pytest\njupytext = pytest.importorskip("jupytext")\n'
    assert extras_imported_at_the_top(assigned) == []
    late = 'from matplotlib import pyplot\nimport pytest\npytest.importorskip("matplotlib")\n'
    assert extras_imported_at_the_top(late) == ["matplotlib"]
    assert extras_imported_at_the_top("def f():\n    import pandas\n") == []


def test_the_readers_map_names_real_files_and_their_share():
    """The package docstring's reading order (also in the README) names files that exist, and
    its "about 2,700 of 17,800 lines" stays within 15 % of the count."""
    import re

    import dgcn

    doc = dgcn.__doc__
    readme = (ROOT / "README.md").read_text()
    block = doc.split("in\nthis order:", 1)[1].split("The rest serves them", 1)[0]
    core = re.findall(r"``([\w/]+\.py)``", block)
    assert len(core) == 15 and all((ROOT / "dgcn" / f).is_file() for f in core), core
    assert block.replace("``", "`").strip() in readme  # the same map in the README
    rest = doc.split("The rest serves them", 1)[1]
    for name in re.findall(r"``([\w/]+\.py)``", rest):
        assert list((ROOT / "dgcn").rglob(name.rsplit("/", 1)[-1])), name
    lines = lambda path: len(path.read_text().splitlines())  # noqa: E731
    core_lines = sum(lines(ROOT / "dgcn" / f) for f in core)
    total = sum(lines(p) for p in (ROOT / "dgcn").rglob("*.py"))
    said = re.search(r"about ([\d,]+) of its ([\d,]+) lines", doc)
    said_core, said_total = (int(n.replace(",", "")) for n in said.groups())
    assert abs(core_lines / said_core - 1) < 0.15 and abs(total / said_total - 1) < 0.15
