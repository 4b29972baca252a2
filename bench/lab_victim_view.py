"""The victim's view of the lab's reflection floods, for training (issue 12: reflection at the victim).

    python bench/lab_victim_view.py LAB_TRAIN_DIR OUT_DIR [--before 20] [--after 5]

The namespace lab records on the bridge, so a reflection window shows the forged requests (the
victim's address, sent from the attacker's MAC and spoofed source port) next to the reflectors'
answers: to the features that is the victim asking and being answered, a balanced exchange. A victim
of a real reflection/amplification flood never sees the requests (they leave the attacker somewhere
else); it sees answers nobody asked for -- the ``balance`` block's replies without requests. The lab's
training recordings therefore hold no reflection as a victim or a home monitor meets it (0 unsolicited
UDP ``dos`` frames in ``lab-all-seed90``), and the bundled model called the reflection case capture
(captured at the victim) ``exfiltration``.

For every training recording (``*.pcapng`` with its ``.labels.csv`` and ``.lab.json``) that has
reflection windows, this writes ``<name>.victim.pcapng`` + labels: the frames from ``--before`` seconds
before each reflection window to ``--after`` seconds after it, minus the forged requests (IPv4/UDP from
the window's attacker MAC with the victim's address and the window's spoofed source port), each frame
keeping its label. Deterministic (same recordings -> same bytes); captures without reflection windows
are skipped. Reads and writes pcapng with captures/pcapfile.py (no tshark).
"""
from __future__ import annotations

import argparse
import csv
import json
import struct
import sys
from pathlib import Path

from iotwatch.captures.lab.labelling import write_labels_csv
from iotwatch.captures.pcapfile import (LINKTYPE_ETHERNET, enhanced_packet_block, interface_description_block,
                                        iter_packets, section_header_block)


def _mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def _ip(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def forged(frame: bytes, mac: bytes, victim: bytes, port: int) -> bool:
    """IPv4/UDP (VLAN-less Ethernet) from ``mac`` with source address ``victim`` and source port ``port``."""
    if len(frame) < 42 or frame[6:12] != mac or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return False
    if frame[26:30] != victim:
        return False
    ihl = (frame[14] & 0x0F) * 4
    off = 14 + ihl
    if struct.unpack_from("!H", frame, 20)[0] & 0x1FFF:  # a later fragment: no UDP header, not the request
        return False
    return len(frame) >= off + 2 and struct.unpack_from("!H", frame, off)[0] == port


def victim_view(cap: Path, out_dir: Path, before: float, after: float) -> tuple[int, int] | None:
    """Write the victim's view of ``cap``'s reflection windows; (frames kept, forged requests dropped)."""
    meta = json.loads(Path(f"{cap}.lab.json").read_text())
    wins = [w for w in meta.get("windows", []) if w.get("reflectors") and w.get("spoof_port") and w.get("victim_ip")]
    if not wins:
        return None
    with open(f"{cap}.labels.csv", newline="") as fh:
        labels = {int(r["frame_number"]): r["label"] for r in csv.DictReader(fh)}
    spans = [(w["start"] - before, w["end"] + after, _mac(w["attacker_mac"]), _ip(w["victim_ip"]), int(w["spoof_port"]))
             for w in wins]
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / (cap.name[: -len(".pcapng")] + ".victim.pcapng")
    kept, dropped, rows = 0, 0, []
    units = None
    tmp = dst.with_name(dst.name + ".tmp")
    with open(tmp, "wb") as fh:
        for number, (ts, frame, _) in enumerate(iter_packets(cap), start=1):
            if units is None:  # dumpcap writes micro- or nanosecond timestamps (if_tsresol 6 or 9)
                units = 1e9 if ts > 10**17 else 1e6
                fh.write(section_header_block("iotwatch lab_victim_view")
                         + interface_description_block(LINKTYPE_ETHERNET, tsresol=9 if units == 1e9 else None))
            t = ts / units
            span = next((s for s in spans if s[0] <= t <= s[1]), None)
            if span is None:
                continue
            if forged(frame, span[2], span[3], span[4]):
                dropped += 1
                continue
            fh.write(enhanced_packet_block(ts, frame))
            kept += 1
            if number in labels:
                rows.append((kept, labels[number]))
    tmp.replace(dst)
    write_labels_csv(f"{dst}.labels.csv", rows)
    return kept, dropped


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lab_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--before", type=float, default=20.0)
    ap.add_argument("--after", type=float, default=5.0)
    a = ap.parse_args(argv)
    out = Path(a.out_dir)
    for cap in sorted(Path(a.lab_dir).glob("*.pcapng")):
        if not (Path(f"{cap}.labels.csv").is_file() and Path(f"{cap}.lab.json").is_file()):
            continue
        res = victim_view(cap, out, a.before, a.after)
        if res is not None:
            print(f"{cap.name}: {res[0]:,} frames kept, {res[1]:,} forged requests dropped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
