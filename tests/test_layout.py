"""Packaging and layering promises: iotwatch.* namespace, UI-free core, no stray top-level modules."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _py_files(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", ["captures", "detector"])
def test_core_source_never_imports_textual(folder):
    offenders = []
    for f in _py_files(folder):
        tree = ast.parse(f.read_text(encoding="utf-8"), filename=str(f))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "textual" or n.startswith("textual.") or n.startswith("iotwatch.tui") for n in names):
                offenders.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], f"UI-free core imports Textual/tui: {offenders}"
    assert _py_files(folder), f"no python files found under {folder}/ (test would prove nothing)"


def test_importing_every_core_module_loads_no_textual():
    code = (
        "import importlib, pkgutil, sys, json\n"
        "import iotwatch.captures, iotwatch.detector\n"
        "mods = []\n"
        "for pkg in (iotwatch.captures, iotwatch.detector):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name); mods.append(m.name)\n"
        "print(json.dumps({'mods': mods, 'textual': [k for k in sys.modules if k.split('.')[0] == 'textual']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(res["mods"]) >= 5
    assert res["textual"] == []


def test_no_top_level_tui_or_detector_module_installed():
    code = (
        "import importlib.util, json\n"
        "print(json.dumps({n: importlib.util.find_spec(n) is not None for n in "
        "('tui', 'detector', 'captures', 'iotwatch.tui', 'iotwatch.detector', 'iotwatch.captures')}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=60)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found == {"tui": False, "detector": False, "captures": False,
                     "iotwatch.tui": True, "iotwatch.detector": True, "iotwatch.captures": True}


def test_console_script_and_module_entry_point():
    for cmd in (["iotwatch", "--version"], [sys.executable, "-m", "iotwatch", "--version"]):
        exe = Path(sys.executable).parent / cmd[0] if cmd[0] == "iotwatch" else None
        argv = [str(exe)] + cmd[1:] if exe else cmd
        out = subprocess.run(argv, capture_output=True, text=True, cwd="/", timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("iotwatch ")


def test_no_shell_true_anywhere():
    hits = []
    for folder in ("captures", "detector", "tui", "cli", "bench"):
        for f in _py_files(folder):
            tree = ast.parse(f.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.keyword) and node.arg == "shell" and not (
                        isinstance(node.value, ast.Constant) and node.value.value is False):
                    hits.append(f"{f.relative_to(ROOT)}:{node.value.lineno}")
    assert hits == []


# --- one-way layers: an AST import graph (imports inside functions included) ---------------------------

LAYERS = {"cli": 3, "tui": 2, "detector": 1, "captures": 0}   # a module may import its own layer or lower
PACKAGES = {"cli": "iotwatch", "tui": "iotwatch.tui", "detector": "iotwatch.detector", "captures": "iotwatch.captures"}


def _module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root)
    parts = [PACKAGES[rel.parts[0]]] + list(rel.parts[1:])
    if parts[-1] == "__init__.py":
        parts.pop()
    else:
        parts[-1] = parts[-1][:-3]
    return ".".join(".".join(parts).split("."))


def _layer(module: str) -> str:
    for folder in ("tui", "detector", "captures"):
        if module == PACKAGES[folder] or module.startswith(PACKAGES[folder] + "."):
            return folder
    return "cli"


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of import nodes under ``if TYPE_CHECKING:`` (never executed)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def import_graph(files=None, root: Path = ROOT) -> dict[str, set[str]]:
    """module -> iotwatch modules it imports (anywhere in the file, functions included)."""
    files = files or [f for folder in PACKAGES for f in _py_files(folder)]
    modules = {_module_name(f, root): f for f in files}
    known = set(modules) | {_module_name(f) for folder in PACKAGES for f in _py_files(folder)}
    graph: dict[str, set[str]] = {}
    for mod, f in modules.items():
        tree = ast.parse(f.read_text(encoding="utf-8"), filename=str(f))
        skip = _type_checking_only(tree)
        pkg = mod if f.name == "__init__.py" else mod.rpartition(".")[0]
        targets = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                bases = [a.name for a in node.names]
                names = []
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = pkg.split(".")
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                bases, names = [base], [a.name for a in node.names]
            else:
                continue
            for base in bases:
                if not base.startswith("iotwatch"):
                    continue
                subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in known]
                targets |= set(subs) if subs and len(subs) == len(names) else {base} | set(subs)
        graph[mod] = {t for t in targets if t != mod}
    return graph


def _unit(module: str) -> str:
    """The node of the cycle check: a sub-package (captures.tshark, tui.widgets, commands, ...) as a
    whole; a layer's top-level modules one by one."""
    for pkg in sorted(PACKAGES.values(), key=len, reverse=True):  # iotwatch.tui before iotwatch (cli)
        if module == pkg:
            return module
        if module.startswith(pkg + "."):
            rest = module[len(pkg) + 1:].split(".")
            return f"{pkg}.{rest[0]}"
    return module


def layer_violations(graph) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                  if LAYERS[_layer(b)] > LAYERS[_layer(a)])


def unit_cycles(graph) -> list[list[str]]:
    """Strongly connected components (> 1 node) of the graph between units."""
    edges: dict[str, set[str]] = {}
    for a, targets in graph.items():
        for b in targets:
            ua, ub = _unit(a), _unit(b)
            # a package's __init__ re-exporting its own modules is not a dependency between units
            if ua != ub and not (a == ua and ub.startswith(ua + ".")) and not (b == ub and ua.startswith(ub + ".")):
                edges.setdefault(ua, set()).add(ub)
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_layers_point_one_way_and_nothing_imports_cli():
    graph = import_graph()
    assert len(graph) > 60 and sum(map(len, graph.values())) > 100  # the graph is really there
    assert layer_violations(graph) == []


def test_no_import_cycles_between_sub_packages_and_top_modules():
    assert unit_cycles(import_graph()) == []


def test_the_checks_see_an_upward_import_inside_a_function_and_a_cycle(tmp_path):
    """The graph builder on a copy of captures/sources.py with an upward import hidden in a function,
    and a cycle added between two detector modules: both are reported."""
    f = tmp_path / "captures" / "sources.py"
    f.parent.mkdir()
    f.write_text((ROOT / "captures" / "sources.py").read_text(encoding="utf-8")
                 + "\n\ndef _upward():\n    from iotwatch.tui.app import make_app  # noqa\n")
    real = import_graph()
    graph = {**real, **import_graph([f], root=tmp_path)}
    assert layer_violations(real) == []
    assert layer_violations(graph) == ["iotwatch.captures.sources -> iotwatch.tui.app"]
    cyclic = dict(real)
    cyclic["iotwatch.detector.pipeline"] = cyclic["iotwatch.detector.pipeline"] | {"iotwatch.detector.run"}
    assert unit_cycles(real) == []
    assert any({"iotwatch.detector.pipeline", "iotwatch.detector.run"} <= set(c) for c in unit_cycles(cyclic))
