"""The tshark version is asked once per executable and kept on disk (captures/tshark/version.py): the
start of every `iotwatch -r/-i` no longer waits for a `tshark -v` (~0.2 s); an upgraded tshark is asked
again; a cache path that is not a regular file is never replaced."""
from __future__ import annotations

import json
import os

import pytest

from iotwatch.captures.tshark import version as V

@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    V.tshark_version.cache_clear()
    yield tmp_path / "iotwatch" / "tshark-version.json"
    V.tshark_version.cache_clear()


def _no_tshark(*a, **k):
    raise AssertionError("tshark was asked although the cache knows it")


def test_the_version_is_asked_once_then_read_from_disk(cache, monkeypatch):
    asked = V.tshark_version("tshark")
    assert asked >= (3, 0)
    key = V._identity("tshark")
    assert json.loads(cache.read_text()) == {key: list(asked)}
    V.tshark_version.cache_clear()            # a new process: only the file remains
    monkeypatch.setattr(V, "_ask", _no_tshark)
    assert V.tshark_version("tshark") == asked


def test_an_upgraded_tshark_is_asked_again_and_replaces_its_old_entry(cache, monkeypatch):
    V.tshark_version("tshark")
    real = V._identity("tshark")
    path = real.split("|", 1)[0]
    monkeypatch.setattr(V, "_identity", lambda t: f"{path}|1|2|3")   # same path, another build
    monkeypatch.setattr(V, "_ask", lambda t: (9, 9))
    V.tshark_version.cache_clear()
    assert V.tshark_version("tshark") == (9, 9)
    assert json.loads(cache.read_text()) == {f"{path}|1|2|3": [9, 9]}


def test_an_unreadable_or_foreign_cache_costs_only_the_question(cache, monkeypatch):
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    assert V.tshark_version("tshark") >= (3, 0)
    assert V._identity("tshark") in json.loads(cache.read_text())      # rewritten
    # a directory, a FIFO or a symlink where the file should be: used as is, never replaced
    for make in (os.mkdir, os.mkfifo, lambda p: os.symlink("/etc/hostname", p)):
        if cache.is_dir() and not cache.is_symlink():
            cache.rmdir()
        elif cache.exists() or cache.is_symlink():
            cache.unlink()
        make(cache)
        before = os.lstat(cache)
        V.tshark_version.cache_clear()
        assert V.tshark_version("tshark") >= (3, 0)
        after = os.lstat(cache)
        assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert not [p for p in cache.parent.iterdir() if p.name.startswith(".tshark-version.")]  # no temp left


def test_a_tshark_that_cannot_be_asked_is_not_remembered(cache, monkeypatch):
    monkeypatch.setattr(V, "_ask", lambda t: (0, 0))
    assert V.tshark_version("tshark") == (0, 0)
    assert not cache.exists()
