"""802.11 as a laptop sees it: WPA2-PSK decryption through tshark, monitor mode flags, 802.11 frames
classified like Ethernet. The capture is made here (tests/wpa2gen.py: beacon, 4-way handshake, CCMP)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from iotwatch.captures.errors import InputError
from iotwatch.captures.sources import open_source
from iotwatch.captures.tshark.args import dumpcap_command, wlan_decryption_args
from wpa2gen import write_wpa2_capture


@pytest.fixture(scope="module")
def wpa2(tmp_path_factory):
    path = tmp_path_factory.mktemp("wifi") / "wpa2.pcap"
    info = write_wpa2_capture(path)
    return path, info


def read_all(path, **opts):
    src = open_source(read=str(path), **opts)
    try:
        batches = [b for b in src.batches(max_rows=4096, max_wait=1.0) if len(b)]
    finally:
        src.close()
    cols = {k: np.concatenate([b.columns[k] for b in batches])
            for k in ("frame_number", "ip_src", "ip_proto", "eth_src")}
    return cols


def test_decryption_args_follow_tsharks_80211_keys():
    argv = wlan_decryption_args(["correct horse battery:iotlab"], ["ab" * 32])
    assert argv[:2] == ["-o", "wlan.enable_decryption:TRUE"]
    assert 'uat:80211_keys:"wpa-pwd","correct horse battery:iotlab"' in argv
    assert f'uat:80211_keys:"wpa-psk","{"ab" * 32}"' in argv
    # the SSID follows the last colon; colons and quotes inside the passphrase are escaped for the UAT
    argv = wlan_decryption_args(['pa:ss"word:net'])
    assert argv[-1] == 'uat:80211_keys:"wpa-pwd","pa%3ass\\x22word:net"'
    assert wlan_decryption_args() == []


@pytest.mark.parametrize("pwd, psk, words", [
    (["nocolon"], [], "PASSPHRASE:SSID"), (["short:net"], [], "8 to 63"), (["x" * 64 + ":net"], [], "8 to 63"),
    (["longenough:" + "s" * 33], [], "32 bytes"), ([], ["abc"], "64 hex"), ([], ["zz" * 32], "64 hex")])
def test_bad_keys_are_one_line_input_errors(pwd, psk, words):
    with pytest.raises(InputError, match=words):
        wlan_decryption_args(pwd, psk)


def test_monitor_mode_is_dumpcaps_rfmon_flag():
    assert "-I" in dumpcap_command("dumpcap", "wlan0", monitor_mode=True)
    assert "-I" not in dumpcap_command("dumpcap", "wlan0")


def test_wpa2_frames_decrypt_into_ip_rows_with_80211_addresses(wpa2):
    path, info = wpa2
    plain = read_all(path)
    dec = read_all(path, wpa_pwd=(f"{info['passphrase']}:{info['ssid']}",))
    assert len(plain["frame_number"]) == len(dec["frame_number"]) == info["frames"]
    assert np.count_nonzero(plain["ip_src"] != "") == 0           # encrypted: no IP visible
    ip = dec["ip_src"] != ""
    assert np.count_nonzero(ip) == info["encrypted"]               # every data frame decrypted
    assert set(dec["ip_src"][ip]) == {info["sta_ip"], info["ap_ip"]}
    assert set(dec["ip_proto"][ip]) == {6}
    assert np.all(dec["eth_src"] != "")                             # 802.11 source address as the MAC
    psk = read_all(path, wpa_psk=(info["psk"],))
    assert np.count_nonzero(psk["ip_src"] != "") == info["encrypted"]


def test_wrong_passphrase_decrypts_nothing(wpa2):
    path, info = wpa2
    wrong = read_all(path, wpa_pwd=(f"not the passphrase:{info['ssid']}",))
    assert np.count_nonzero(wrong["ip_src"] != "") == 0


def iotwatch(*args):
    return subprocess.run([sys.executable, "-m", "iotwatch", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_headless_classifies_the_decrypted_scan(wpa2, tmp_path):
    path, info = wpa2
    pred = tmp_path / "p.csv"
    r = iotwatch("-r", path, "--headless", "--wpa-pwd", f"{info['passphrase']}:{info['ssid']}", "--predictions", pred,
                 "--report", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(pred)))
    assert len(rows) == info["frames"] == json.loads((tmp_path / "r.json").read_text())["packets"]
    syn = [row for row in rows if int(row["frame_number"]) >= 6 and int(row["frame_number"]) % 2 == 0]
    flagged = sum(row["predicted"] != "normal" for row in syn)
    assert flagged > len(syn) / 2, f"a 40-port SYN scan over Wi-Fi: {flagged}/{len(syn)} SYNs flagged"


def test_cli_rejects_bad_wifi_flags_in_one_line(wpa2):
    path, _ = wpa2
    for args, words in ((["-r", path, "-I"], "live capture only"), (["-r", path, "--wpa-pwd", "short:x"], "8 to 63"),
                        (["-i", "lo", "-I"], "not a Wi-Fi interface")):
        r = iotwatch(*args, "--headless")
        assert r.returncode == 2 and words in r.stderr and r.stderr.count("\n") == 1, (args, r.stderr)
