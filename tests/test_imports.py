"""No import circles between the modules that used to import each other: a static check of every import edge
(lazy, function-level imports included) and, in fresh interpreters, imports of each side first."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "edgewise"

# (lower, upper): the upper module imports the lower one (directly or through others), so the lower one must not
# reach the upper one by any import, top-level or inside a function.
LAYERS = [
    ("edgewise.results", "edgewise.report.figures"),  # png_data_uri lives in edgewise._png, below both
    ("edgewise.models", "edgewise.experiments"),  # experiment: references resolve through models' registry
    ("edgewise._trace", "edgewise.nets"),  # Pad lives in edgewise._pad, below both
]


def _module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module → the edgewise modules whose code importing it runs: each one named in an import statement anywhere in
    the file, ``from X import y`` adding ``X.y`` when that is a module, and the packages above each (their
    ``__init__``), the top package ``edgewise`` excepted (it is always imported first)."""
    edges = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[:len(base) - node.level + 1]
                    where = ".".join(base + ([node.module] if node.module else []))
                else:
                    where = node.module or ""
                targets = [where] + [f"{where}.{a.name}" for a in node.names]
            for target in targets:
                parts = target.split(".")
                for i in range(2, len(parts) + 1):  # the module and every package above it but the top one
                    if ".".join(parts[:i]) in modules:
                        found.add(".".join(parts[:i]))
        found.discard(name)
        edges[name] = found
    return edges


def _path(edges, start: str, goal: str) -> list[str] | None:
    """One chain of imports from ``start`` to ``goal`` (or to a module inside it), or None."""
    seen, todo = {start: None}, [start]
    while todo:
        here = todo.pop()
        if here == goal or here.startswith(goal + "."):
            chain = [here]
            while seen[chain[-1]] is not None:
                chain.append(seen[chain[-1]])
            return chain[::-1]
        for nxt in sorted(edges.get(here, ())):
            if nxt not in seen:
                seen[nxt] = here
                todo.append(nxt)
    return None


@pytest.mark.parametrize("lower, upper", LAYERS)
def test_lower_module_does_not_import_the_upper_one(lower, upper):
    modules = _module_names()
    assert lower in modules and upper in modules
    edges = _edges(modules)
    assert _path(edges, upper, lower), f"{upper} no longer imports {lower}: this check says nothing"
    chain = _path(edges, lower, upper)
    assert chain is None, "import circle: " + " → ".join(chain) + " → … → " + lower


def test_cli_command_modules_do_not_import_the_cli():
    """edgewise.cli imports its command modules (edgewise._cli_*), so none of them may import edgewise.cli back:
    what they share (emit_json, the --out check, ...) lives in edgewise._cli_common, below all of them."""
    modules = _module_names()
    edges = _edges(modules)
    below = sorted(n for n in modules if n.startswith("edgewise._cli_"))
    assert {"edgewise._cli_common", "edgewise._cli_report", "edgewise._cli_experiment",
            "edgewise._cli_visualize"} <= set(below)
    for name in below:
        assert _path(edges, "edgewise.cli", name), f"edgewise.cli no longer imports {name}: this check says nothing"
        chain = _path(edges, name, "edgewise.cli")
        assert chain is None, "import circle: " + " → ".join(chain) + " → … → " + name


def test_each_side_imports_first_in_a_fresh_interpreter():
    """A circle of top-level imports fails (or leaves a half-made module) when one side is imported first."""
    checks = {
        "edgewise.results": "from edgewise.results import Result; from edgewise.report.figures import png_data_uri",
        "edgewise.report.figures": "from edgewise.report.figures import png_data_uri; "
                                   "from edgewise.results import Result",
        # the first experiment: reference imports edgewise.experiments by name, which registers its resolver
        "edgewise.models": "import sys; from edgewise.models import _RESOLVERS, load; from edgewise.errors import "
                           "EdgewiseError; assert 'edgewise.experiments' not in sys.modules and not _RESOLVERS\n"
                           "try: load('experiment:border-digits:same:x')\n"
                           "except EdgewiseError as e: assert 'seed must be a number' in str(e), e\n"
                           "else: raise AssertionError('no error')\n"
                           "assert _RESOLVERS['experiment'].__module__ == 'edgewise.experiments.trained'",
        "edgewise.experiments": "from edgewise.experiments import trained_model; "
                                "from edgewise.models import _RESOLVERS; assert 'experiment' in _RESOLVERS",
        "edgewise._trace": "from edgewise._trace import trace, parse_shape; from edgewise.nets import Pad",
        "edgewise.nets": "from edgewise.nets import Pad, from_spec; from edgewise._trace import trace; "
                         "from edgewise._pad import Pad as P; assert Pad is P",
        **{f"edgewise._cli_{c}": f"from edgewise._cli_{c} import add_parser; from edgewise.cli import main; "
                                 "import contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):\n"
                                 f"    try: main(['{c}', '--help'])\n"
                                 "    except SystemExit as e: assert e.code == 0, e"
           for c in ("report", "experiment", "visualize")},
    }
    procs = {name: subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True) for name, code in checks.items()}
    failed = {}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        if proc.returncode:
            failed[name] = err[-2000:]
    assert not failed, failed


def test_model_references_resolve_through_the_registry(monkeypatch):
    from edgewise import models

    calls = []
    monkeypatch.setitem(models._RESOLVERS, "experiment", lambda ref: calls.append(ref) or "net")
    monkeypatch.setitem(models._RESOLVERS, "mine", lambda ref: calls.append(ref) or "other net")
    assert models.load("experiment:border-digits:same:1") == "net" and models.load("mine:x") == "other net"
    assert calls == ["experiment:border-digits:same:1", "mine:x"]
    with pytest.raises(models.EdgewiseError, match="no module named 'unregistered'"):
        models.load("unregistered:make_model")  # anything else is still package.module:function


PEERS = ("captum", "lucent", "torchscan")  # what the benchmarks compare against (the `bench` extra)


def test_benchmark_peers_are_never_runtime_dependencies():
    """captum, torch-lucent and torchscan belong to the `bench` extra only: no edgewise module imports them, and
    neither the dependencies nor any other extra asks for them."""
    import tomllib

    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not [n for n in names if n.split(".")[0] in PEERS], f"{path} imports a benchmark peer: {names}"
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert sorted(p.split(">")[0].split("=")[0] for p in extras["bench"]) == ["captum", "torch-lucent", "torchscan"]
    asked = project["dependencies"] + [d for name, deps in extras.items() if name != "bench" for d in deps]
    assert not [d for d in asked if d.split(">")[0].split("=")[0].replace("torch-", "") in PEERS], asked
