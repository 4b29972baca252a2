"""The wheel carries every data file: build it, install it into a fresh venv (its own site-packages,
dependencies borrowed from this environment), and run what a user runs first."""
from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test here takes > ~5 s (bash dev.sh test -m 'not slow' skips them)

ROOT = Path(__file__).resolve().parent.parent


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    d = tmp_path_factory.mktemp("wheel")
    # build from a copy of the tracked files: a stale build/ folder in the work tree would hide a missing file
    src = d / "src"
    for f in tracked_files():
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(d / "dist")], check=True, timeout=300)
    wheel = next((d / "dist").glob("iotwatch-*.whl"))
    venv = d / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies (torch, textual, ...) come from this environment; iotwatch itself from the wheel only
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, timeout=300)
    return wheel, venv


def run(venv, *args, **kw):
    return subprocess.run([str(venv / "bin" / "iotwatch"), *args], capture_output=True, text=True, timeout=180,
                          cwd=venv, **kw)


def test_wheel_lists_every_data_file(fresh):
    wheel, _ = fresh
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = tracked_files()
    mapping = {"captures/": "iotwatch/captures/", "detector/": "iotwatch/detector/", "tui/": "iotwatch/tui/",
               "cli/": "iotwatch/"}
    missing = []
    for f in tracked:
        for src, dst in mapping.items():
            if f.startswith(src) and not f.endswith((".md", ".c")) and not f.startswith("captures/real/"):
                if dst + f[len(src):] not in names:
                    missing.append(f)
    assert not missing, f"files of the packages that the wheel lacks: {missing}"


def test_installed_wheel_runs_lab_setup_help_doctor_and_the_demo(fresh):
    _, venv = fresh
    r = run(venv, "lab", "setup", "--help")
    assert r.returncode == 0 and "usage" in r.stdout.lower(), r.stderr
    r = run(venv, "doctor")
    assert r.returncode in (0, 3) and "Traceback" not in r.stderr, r.stderr
    assert "tshark" in (r.stdout + r.stderr).lower()
    r = run(venv, "--headless", "-c", "200")  # the bundled demo capture, from the installed package
    assert r.returncode == 0, r.stderr
    assert "200 packets" in r.stdout
    import iotwatch

    r = subprocess.run([str(venv / "bin" / "python"), "-c", "import iotwatch; print(iotwatch.__file__)"],
                       capture_output=True, text=True, cwd=venv)
    installed = Path(r.stdout.strip())
    assert venv in installed.parents and Path(iotwatch.__file__).resolve() != installed.resolve()
