"""tshark habits and shell niceties of the command line: -D, -a duration:/packets:, --version on every
command, shell completion, a closed stdout."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from iotwatch.commands import SUBCOMMANDS

DEMO = Path(__file__).resolve().parent.parent / "captures" / "demo" / "demo.pcapng"


def iotwatch(*args, **kw):
    return subprocess.run([sys.executable, "-m", "iotwatch", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kw)


def test_list_interfaces_numbers_dumpcaps_interfaces():
    r = iotwatch("-D")
    assert r.returncode == 0, r.stderr
    dumpcap = subprocess.run(["dumpcap", "-D"], capture_output=True, text=True).stdout
    names = [line.split(". ", 1)[1].split(" (")[0] for line in dumpcap.splitlines() if ". " in line]
    ours = [line.split(". ", 1)[1].split(" (")[0] for line in r.stdout.splitlines()]
    assert ours == names and "lo" in ours
    assert r.stdout.splitlines()[0].startswith("1. ")


@pytest.mark.parametrize("cond, packets", [("packets:7", 7), ("packets:20", 20)])
def test_autostop_packets_stops_after_n(tmp_path, cond, packets):
    rep = tmp_path / "r.json"
    r = iotwatch("-r", DEMO, "--headless", "-a", cond, "--report", rep)
    assert r.returncode == 0, r.stderr
    assert json.loads(rep.read_text())["packets"] == packets


def test_autostop_smallest_condition_wins(tmp_path):
    rep = tmp_path / "r.json"
    assert iotwatch("-r", DEMO, "--headless", "-a", "packets:30", "-c", "12", "--report", rep).returncode == 0
    assert json.loads(rep.read_text())["packets"] == 12


@pytest.mark.parametrize("cond", ["nan", "inf", "-3", "duration:0", "packets:x", "filesize:10", "packets:1.5"])
def test_bad_autostop_is_a_one_line_usage_error(cond):
    r = iotwatch("--headless", "-a", cond)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "-a/--autostop" in r.stderr, r.stderr


@pytest.mark.parametrize("argv", [[]] + [[name] for name in SUBCOMMANDS] + [["lab", "record"], ["model", "show"]])
def test_every_command_answers_version(argv):
    from iotwatch import __version__

    for flag in ("--version", "-V"):
        r = iotwatch(*argv, flag)
        assert r.returncode == 0 and r.stdout.strip() == f"iotwatch {__version__}", (argv, r.stdout, r.stderr)


def test_train_bundle_version_flag_is_model_version(tmp_path):
    r = iotwatch("train", "--help")
    assert "--model-version" in r.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "tcsh"])
def test_completion_covers_every_command_and_flag(shell, tmp_path):
    r = iotwatch("completion", shell)
    assert r.returncode == 0, r.stderr
    script = r.stdout
    for name in SUBCOMMANDS:
        assert name in script
    if shell != "tcsh":  # shtab's tcsh script completes commands and choices, not option names
        for flag in ("--wpa-pwd", "--display-filter", "--fail-on", "--scenario", "--report", "--model-version"):
            assert flag in script, flag
    if shell == "bash":
        path = tmp_path / "iotwatch.bash"
        path.write_text(script)
        check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        # the completion function answers a real completion request
        probe = subprocess.run(["bash", "-c", f"source {path}; COMP_WORDS=(iotwatch tr); COMP_CWORD=1; "
                                "_shtab_iotwatch; printf '%s\\n' \"${COMPREPLY[@]}\""],
                               capture_output=True, text=True)
        assert "train" in probe.stdout.split(), (probe.stdout, probe.stderr)


@pytest.mark.parametrize("argv", [["--headless"], ["--headless", "-c", "5"], ["model", "show"], ["completion", "bash"]])
def test_closed_stdout_ends_quietly_with_exit_0(argv):
    proc = subprocess.Popen([sys.executable, "-m", "iotwatch", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_read_a_capture_from_stdin(tmp_path):
    rep = tmp_path / "r.json"
    with open(DEMO, "rb") as fh:
        r = subprocess.run([sys.executable, "-m", "iotwatch", "-r", "-", "--headless", "--report", str(rep)],
                           stdin=fh, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(rep.read_text())
    direct = tmp_path / "d.json"
    assert iotwatch("-r", DEMO, "--headless", "--report", direct).returncode == 0
    assert report["packets"] == json.loads(direct.read_text())["packets"] == 5411
    assert report["class_counts"] == json.loads(direct.read_text())["class_counts"]


def test_stdin_capture_is_refused_for_the_tui_and_from_a_terminal_in_one_line():
    r = subprocess.run([sys.executable, "-m", "iotwatch", "-r", "-"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--headless" in r.stderr and r.stderr.count("\n") == 1, r.stderr


@pytest.mark.parametrize("flag", ["--report", "--predictions", "--alerts"])
def test_dash_means_stdout_for_an_output_and_the_summary_moves_to_stderr(tmp_path, flag):
    ref = tmp_path / "ref"
    assert iotwatch("-r", DEMO, "--headless", "-c", "800", flag, ref).returncode == 0
    r = iotwatch("-r", DEMO, "--headless", "-c", "800", flag, "-", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ref.read_text() if flag != "--report" else \
        json.loads(r.stdout)["class_counts"] == json.loads(ref.read_text())["class_counts"]
    assert "800 packets" in r.stderr and not (tmp_path / "-").exists()


def test_two_outputs_on_stdout_are_refused():
    r = iotwatch("-r", DEMO, "--headless", "--report", "-", "--alerts", "-")
    assert r.returncode == 2 and "standard output" in r.stderr and r.stderr.count("\n") == 1
