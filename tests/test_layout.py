"""Packaging and layering promises: iotwatch.* namespace, UI-free core, no stray top-level modules."""
from __future__ import annotations

import ast
import json
import pkgutil
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
