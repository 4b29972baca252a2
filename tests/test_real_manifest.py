"""The real-world development set's manifest (captures/real/manifest.csv).

No check needs the data (public captures from other repositories, never committed): the
extraction itself (``python -m iotwatch.captures.real.extract``) refuses a file whose sha256 is not
the manifest's, and that check is tested here on a git mirror of our own demo capture.
"""
from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from pathlib import Path

import pytest

from fakes import load_script

REAL = Path(__file__).resolve().parent.parent / "captures" / "real"
MANIFEST = REAL / "manifest.csv"
COLUMNS = ["source", "repo", "commit", "path", "sha256", "frames", "class", "scope", "filter",
           "rest", "split", "how_known"]
CLASSES = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]  # CONTRACT §1


def _rows() -> list[dict[str, str]]:
    with open(MANIFEST, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _local_name(path: str) -> str:
    # same rule as captures/real/extract.py (kept standalone there)
    member = path.split("#", 1)[1] if "#" in path else path
    name = member.replace("/", "__").replace(" ", "_")
    return name[:-3] if name.endswith(".gz") else name


def test_columns_and_values():
    with open(MANIFEST, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header == COLUMNS
    for i, r in enumerate(_rows(), start=2):
        where = f"manifest.csv line {i}"
        assert r["class"] in CLASSES, where
        assert re.fullmatch(r"[0-9a-f]{64}", r["sha256"]), where
        assert re.fullmatch(r"[0-9a-f]{40}", r["commit"]), where
        assert re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", r["repo"]), where
        assert re.fullmatch(r"[a-z0-9-]+", r["source"]), where
        assert r["split"] in ("train", "eval"), where
        assert r["scope"] in ("whole", "partial"), where
        assert int(r["frames"]) > 0, where
        assert r["how_known"].strip(), where
        if r["scope"] == "partial":
            assert r["filter"].strip(), where
            assert r["rest"] in ("", "normal"), where
        else:
            assert not r["filter"] and not r["rest"], where


def test_unique_files():
    rows = _rows()
    assert len({r["sha256"] for r in rows}) == len(rows), "a capture is listed twice"
    names = Counter((r["source"], _local_name(r["path"])) for r in rows)
    assert max(names.values()) == 1, "two rows extract to the same file"


def test_split_by_source():
    rows = _rows()
    parts: dict[str, set[str]] = {}
    for r in rows:
        parts.setdefault(r["repo"], set()).add(r["split"])
        parts.setdefault("source:" + r["source"], set()).add(r["split"])
    both = sorted(k for k, v in parts.items() if len(v) > 1)
    assert not both, f"in both train and eval: {both}"
    src_repo = {(r["source"], r["repo"]) for r in rows}
    assert len({s for s, _ in src_repo}) == len(src_repo), "a source slug names one repository"


def test_size_and_coverage():
    rows = _rows()
    assert len(rows) >= 150
    assert len({r["repo"] for r in rows}) >= 10
    for part in ("eval", "train"):
        have = {r["class"] for r in rows if r["split"] == part}
        assert have == set(CLASSES), f"{part} lacks {set(CLASSES) - have}"


def test_extraction_checks_sha256_and_writes_labels(tmp_path):
    """What the extracted data set's integrity rests on, without the data (public captures from
    other repositories are never committed): ``extract_row`` takes the file from a git mirror,
    refuses it when its sha256 is not the manifest's, and writes the labels sidecar (whole and
    partial scope). Run on a mirror made here of our own demo capture."""
    import subprocess

    ext = _load_extract()
    demo = Path(__file__).resolve().parent.parent / "captures" / "demo" / "demo.pcapng"
    repo = tmp_path / "mirrors" / "someone+caps"
    repo.mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    (repo / "dir").mkdir()
    (repo / "dir" / "a.pcapng").write_bytes(demo.read_bytes())
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "c"], check=True)
    commit = subprocess.run(git[:3] + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    row = {"source": "caps", "repo": "someone/caps", "commit": commit, "path": "dir/a.pcapng",
           "sha256": hashlib.sha256(demo.read_bytes()).hexdigest(), "class": "recon", "scope": "partial",
           "filter": "arp", "rest": "normal"}
    out = tmp_path / "data"
    with pytest.raises(ValueError, match="sha256 mismatch"):
        ext.extract_row(dict(row, sha256="0" * 64), tmp_path / "mirrors", out)
    assert not (out / "caps" / "dir__a.pcapng").exists()
    dest = ext.extract_row(row, tmp_path / "mirrors", out)
    assert dest == out / "caps" / "dir__a.pcapng" and dest.read_bytes() == demo.read_bytes()
    labels = list(csv.reader(open(str(dest) + ".labels.csv", encoding="utf-8")))[1:]
    arp = set(ext.tshark_frames(dest, "arp"))
    assert len(labels) == len(ext.tshark_frames(dest)) and 0 < len(arp) < len(labels)
    assert all((lab == "recon") == (int(f) in arp) for f, lab in labels)
    # a later manifest edit of the label reaches the extracted folder without --force; an unchanged
    # row leaves the sidecar file as it is
    side = Path(str(dest) + ".labels.csv")
    before = side.stat().st_mtime_ns, side.read_bytes()
    ext.extract_row(row, tmp_path / "mirrors", out)
    assert (side.stat().st_mtime_ns, side.read_bytes()) == before
    ext.extract_row(dict(row, scope="whole", filter="", rest="", **{"class": "dos"}), tmp_path / "mirrors", out)
    relabelled = list(csv.reader(open(side, encoding="utf-8")))[1:]
    assert len(relabelled) == len(labels) and {lab for _, lab in relabelled} == {"dos"}


def _load_extract():
    return load_script(REAL / "extract.py", "real_extract")


def test_unpack_members_of_tar_zip_and_gz(tmp_path):
    """extract.unpack takes `archive.tar.gz#member` and `archive.zip#member` (and gunzips .gz)."""
    import gzip
    import io
    import tarfile
    import zipfile

    ex = _load_extract()
    payload = b"\xd4\xc3\xb2\xa1" + bytes(range(40))  # bytes standing in for a capture
    other = b"not this one"
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w:gz") as tf:
        for name, data in (("run1/dns.pcap", payload), ("run1/other.log", other)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    assert ex.unpack(tbuf.getvalue(), "a/x_full_dataset.tar.gz", "run1/dns.pcap") == payload
    assert ex.unpack(tbuf.getvalue(), "a/x_full_dataset.tar.gz", "run1/other.log") == other
    with pytest.raises(KeyError):
        ex.unpack(tbuf.getvalue(), "a/x.tar.gz", "run1/missing.pcap")
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("caps/c.pcap.gz", gzip.compress(payload))
    assert ex.unpack(zbuf.getvalue(), "x.zip", "caps/c.pcap.gz") == payload
    assert ex.unpack(gzip.compress(payload), "d/c.pcap.gz") == payload
    assert ex.unpack(payload, "d/c.pcap") == payload
    assert ex.local_name("a/x.tar.gz#run1/dns.pcap") == _local_name("a/x.tar.gz#run1/dns.pcap") == "run1__dns.pcap"
