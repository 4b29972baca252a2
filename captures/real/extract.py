"""Re-extract the real-world development set from fetched repository mirrors.

    python -m iotwatch.captures.real.extract --mirrors /work/.mirror --out /work/shared/data/real
    python captures/real/extract.py --mirrors DIR --out DIR [--split train|eval] [--source SLUG]

Every row of ``manifest.csv`` (next to this file) names a public GitHub repository, a commit and a
path. The capture is taken from the repository mirror with ``git show COMMIT:PATH`` (a ``.gz`` is
gunzipped; ``archive.zip#member`` or ``archive.tar.gz#member`` takes one member of a zip or tar
archive), its sha256 is checked against the manifest, and it is written to
``OUT/<source>/<local name>`` with the sidecar labels
``<file>.labels.csv`` (``frame_number,label``, CONTRACT §2):

* scope ``whole``: every frame gets the row's class;
* scope ``partial``: frames matching the tshark display filter get the class, the other frames get
  ``rest`` (``normal``) or stay unlabelled when ``rest`` is empty.

A mirror is looked for as ``MIRRORS/<owner>+<name>/repo`` (a bare git directory, as ``fetch`` leaves
it), ``.../repo/.git``, ``MIRRORS/<owner>+<name>`` or ``.../.git``. Rows whose mirror is missing are reported one line each; the exit status is 2 when
any row could not be extracted. Standalone on purpose: plain Python + git + tshark, no imports from
the rest of iotwatch.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

MANIFEST = Path(__file__).with_name("manifest.csv")
COLUMNS = ["source", "repo", "commit", "path", "sha256", "frames", "class", "scope", "filter",
           "rest", "split", "how_known"]
CLASSES = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]


def read_manifest(path: Path = MANIFEST) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return rows


def local_name(path: str) -> str:
    """File name under OUT/<source>/ for a repository path (unique within a repository)."""
    member = path.split("#", 1)[1] if "#" in path else path
    name = member.replace("/", "__").replace(" ", "_")
    if name.endswith(".gz"):
        name = name[:-3]
    return name


def local_path(out: Path, row: dict[str, str]) -> Path:
    return out / row["source"] / local_name(row["path"])


def mirror_dir(mirrors: Path, repo: str) -> Path | None:
    base = mirrors / repo.replace("/", "+")
    for cand in (base / "repo", base / "repo" / ".git", base, base / ".git"):
        if (cand / "HEAD").is_file() and (cand / "objects").is_dir():
            return cand
    return None


def git_blob(gitdir: Path, commit: str, path: str) -> bytes:
    proc = subprocess.run(["git", "--git-dir", str(gitdir), "show", f"{commit}:{path}"],
                          capture_output=True, check=False)
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise LookupError(msg[-1] if msg else f"git show {commit}:{path} failed")
    return proc.stdout


TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def unpack(data: bytes, path: str, member: str | None = None) -> bytes:
    """The capture inside a repository file: ``member`` of a zip or tar(.gz) archive, and/or gunzipped."""
    if member is not None:
        if path.endswith(TAR_SUFFIXES):
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
                fh = tf.extractfile(member)
                if fh is None:
                    raise LookupError(f"{member} is not a regular file in {path}")
                data = fh.read()
        else:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                data = zf.read(member)
        path = member
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    return data


def capture_bytes(gitdir: Path, row: dict[str, str]) -> bytes:
    path = row["path"]
    member = None
    if "#" in path:
        path, member = path.split("#", 1)
    return unpack(git_blob(gitdir, row["commit"], path), path, member)


def tshark_frames(capture: Path, display_filter: str | None = None) -> list[int]:
    cmd = ["tshark", "-n", "-r", str(capture), "-T", "fields", "-e", "frame.number"]
    if display_filter:
        cmd += ["-Y", display_filter]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"tshark failed on {capture}: {proc.stderr.strip()[:300]}")
    return [int(x) for x in proc.stdout.split() if x.strip().isdigit()]


def write_labels(capture: Path, row: dict[str, str]) -> Path:
    """Writes ``<capture>.labels.csv`` for a manifest row; returns its path. An existing sidecar with
    the same content is left as it is (not rewritten), so re-running the extraction touches only the
    sidecars whose labels the manifest changed."""
    frames = tshark_frames(capture)
    labels: dict[int, str] = {}
    if row["scope"] == "whole":
        labels = {f: row["class"] for f in frames}
    elif row["scope"] == "partial":
        hit = set(tshark_frames(capture, row["filter"]))
        for f in frames:
            if f in hit:
                labels[f] = row["class"]
            elif row.get("rest"):
                labels[f] = row["rest"]
    else:
        raise ValueError(f"unknown scope {row['scope']!r}")
    out = capture.with_name(capture.name + ".labels.csv")
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["frame_number", "label"])
    for f in sorted(labels):
        w.writerow([f, labels[f]])
    data = buf.getvalue().encode("utf-8")
    if out.is_file() and not out.is_symlink() and out.read_bytes() == data:
        return out
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def extract_row(row: dict[str, str], mirrors: Path, out: Path, force: bool = False) -> Path:
    """Extracts one row (skips the copy when the file is already there with the right sha256)."""
    dest = local_path(out, row)
    have = dest.is_file() and not force and sha256_file(dest) == row["sha256"]
    if not have:
        gitdir = mirror_dir(mirrors, row["repo"])
        if gitdir is None:
            raise FileNotFoundError(f"no mirror of {row['repo']}")
        data = capture_bytes(gitdir, row)
        digest = hashlib.sha256(data).hexdigest()
        if digest != row["sha256"]:
            raise ValueError(f"sha256 mismatch: manifest {row['sha256'][:12]}…, extracted {digest[:12]}…")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    # always recomputed (one tshark pass, two for a partial row): a manifest edit of class, scope or
    # filter must reach a data folder extracted before it; an unchanged sidecar is not rewritten
    write_labels(dest, row)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="extract", description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirrors", default="/work/.mirror", help="folder holding <owner>+<name>/repo mirrors")
    ap.add_argument("--out", default="/work/shared/data/real", help="data folder (outside the repository)")
    ap.add_argument("--manifest", default=str(MANIFEST))
    ap.add_argument("--split", choices=["train", "eval"], help="only this part")
    ap.add_argument("--source", action="append", help="only this source slug (repeatable)")
    ap.add_argument("--force", action="store_true", help="rewrite files and labels even when present")
    ap.add_argument("--list-dirs", action="store_true",
                    help="only print the data folders of the selected rows, one per line (e.g. "
                         "iotwatch train --captures $(python captures/real/extract.py --split train --list-dirs))")
    args = ap.parse_args(argv)
    rows = read_manifest(Path(args.manifest))
    if args.split:
        rows = [r for r in rows if r["split"] == args.split]
    if args.source:
        rows = [r for r in rows if r["source"] in set(args.source)]
    mirrors, out = Path(args.mirrors), Path(args.out)
    if args.list_dirs:
        for src in dict.fromkeys(r["source"] for r in rows):
            print(out / src)
        return 0
    if shutil.which("tshark") is None:
        print("extract: tshark not found; install it (apt-get install tshark)", file=sys.stderr)
        return 3
    done, failed, missing_repos = 0, [], {}
    for row in rows:
        try:
            extract_row(row, mirrors, out, force=args.force)
            done += 1
        except FileNotFoundError:
            missing_repos.setdefault(row["repo"], 0)
            missing_repos[row["repo"]] += 1
            failed.append(row)
        except (LookupError, ValueError, RuntimeError, OSError, zipfile.BadZipFile, tarfile.TarError, KeyError) as exc:
            print(f"extract: {row['repo']}:{row['path']}: {exc}", file=sys.stderr)
            failed.append(row)
    for repo, n in sorted(missing_repos.items()):
        print(f"extract: missing mirror {mirrors / repo.replace('/', '+')} ({n} rows): "
              f"fetch github:{repo}", file=sys.stderr)
    print(f"extract: {done} of {len(rows)} files in {out}" + (f", {len(failed)} failed" if failed else ""))
    if failed:
        if missing_repos:
            print("extract: repositories to fetch: " + " ".join(sorted(missing_repos)), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
