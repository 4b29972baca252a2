"""A WPA2-PSK (CCMP) 802.11 capture made here, for the Wi-Fi decryption tests.

A beacon, the EAPOL 4-way handshake between an access point and one station (MICs computed with the
KCK of the PTK derived from the passphrase), then IPv4 packets in CCMP-encrypted data frames both
ways, with a radiotap header per frame (what a monitor-mode adapter delivers). Written from IEEE
802.11-2016 §12.7 (PBKDF2 PMK, PRF-384, EAPOL-Key MIC with HMAC-SHA1, AES key wrap of the GTK) and
§12.5.3 (CCMP nonce and AAD); tshark, given the passphrase, must decrypt every data frame.
"""
from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

from iotwatch.captures.sim import frames as P

RADIOTAP = bytes([0, 0, 8, 0, 0, 0, 0, 0])  # version 0, length 8, no fields present
LINKTYPE_IEEE802_11_RADIOTAP = 127
LLC_SNAP_EAPOL = bytes.fromhex("aaaa03000000888e")
LLC_SNAP_IPV4 = bytes.fromhex("aaaa030000000800")
RSN_IE = bytes.fromhex("30140100000fac040100000fac040100000fac020000")  # CCMP/CCMP/PSK


def pmk(passphrase: str, ssid: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32)


def prf(key: bytes, label: bytes, data: bytes, nbytes: int) -> bytes:
    out = b""
    i = 0
    while len(out) < nbytes:
        out += hmac.new(key, label + b"\x00" + data + bytes([i]), hashlib.sha1).digest()
        i += 1
    return out[:nbytes]


def ptk(pmk_: bytes, aa: bytes, spa: bytes, anonce: bytes, snonce: bytes) -> tuple[bytes, bytes, bytes]:
    """(KCK, KEK, TK) for CCMP."""
    data = min(aa, spa) + max(aa, spa) + min(anonce, snonce) + max(anonce, snonce)
    k = prf(pmk_, b"Pairwise key expansion", data, 48)
    return k[:16], k[16:32], k[32:48]


def eapol_key(key_info: int, replay: int, nonce: bytes, key_data: bytes = b"", kck: bytes | None = None) -> bytes:
    """An EAPOL-Key frame (RSN descriptor); with ``kck`` its MIC is filled in."""
    body = struct.pack("!BHHQ", 2, key_info, 16, replay) + nonce + bytes(16) + bytes(8) + bytes(8)
    body += bytes(16) + struct.pack("!H", len(key_data)) + key_data
    frame = struct.pack("!BBH", 2, 3, len(body)) + body
    if kck is not None:
        mic = hmac.new(kck, frame, hashlib.sha1).digest()[:16]
        off = 4 + 1 + 2 + 2 + 8 + 32 + 16 + 8 + 8
        frame = frame[:off] + mic + frame[off + 16:]
    return frame


def dot11_data(fc_flags: int, a1: bytes, a2: bytes, a3: bytes, seq: int, body: bytes) -> bytes:
    return bytes([0x08, fc_flags]) + b"\x00\x00" + a1 + a2 + a3 + struct.pack("<H", seq << 4) + body


def ccmp_encrypt(tk: bytes, header: bytes, pn: int, plaintext: bytes) -> bytes:
    """CCMP header + ciphertext + 8-byte MIC for a non-QoS data frame whose 24-byte ``header`` is given."""
    a2 = header[10:16]
    pn_bytes = pn.to_bytes(6, "big")  # PN5..PN0
    nonce = b"\x00" + a2 + pn_bytes
    fc0 = header[0] & 0x8F
    fc1 = (header[1] & ~0x38 & 0xFF) | 0x40
    sc = struct.unpack("<H", header[22:24])[0] & 0x000F
    aad = bytes([fc0, fc1]) + header[4:22] + struct.pack("<H", sc)
    ccmp_hdr = bytes([pn_bytes[5], pn_bytes[4], 0, 0x20, pn_bytes[3], pn_bytes[2], pn_bytes[1], pn_bytes[0]])
    return ccmp_hdr + AESCCM(tk, tag_length=8).encrypt(nonce, plaintext, aad)


def beacon(bssid: bytes, ssid: str, seq: int) -> bytes:
    body = bytes(8) + struct.pack("<HH", 100, 0x0411)
    body += bytes([0, len(ssid)]) + ssid.encode() + bytes([1, 8]) + bytes.fromhex("82848b960c121824")
    body += bytes([3, 1, 6]) + RSN_IE
    return bytes([0x80, 0x00]) + b"\x00\x00" + b"\xff" * 6 + bssid + bssid + struct.pack("<H", seq << 4) + body


def write_wpa2_capture(path, *, ssid: str = "iotlab", passphrase: str = "correct horse battery",
                       n_syn: int = 40, start: float = 1_700_000_000.0) -> dict:
    """Write the capture; returns what a test needs (addresses, counts, keys)."""
    bssid, sta = P.mac("02:aa:00:00:00:01"), P.mac("02:bb:00:00:00:02")
    ap_ip, sta_ip = "10.42.0.1", "10.42.0.23"
    anonce, snonce = hashlib.sha256(b"anonce").digest(), hashlib.sha256(b"snonce").digest()
    kck, kek, tk = ptk(pmk(passphrase, ssid), bssid, sta, anonce, snonce)
    gtk = hashlib.sha256(b"gtk").digest()[:16]
    gtk_kde = bytes([0xDD, 22]) + bytes.fromhex("000fac01") + b"\x01\x00" + gtk
    key_data = RSN_IE + gtk_kde
    key_data += b"\xdd" + bytes((8 - (len(key_data) + 1) % 8) % 8)  # padding to a multiple of 8
    wrapped = aes_key_wrap(kek, key_data)
    frames: list[bytes] = []
    frames.append(beacon(bssid, ssid, 1))
    frames.append(dot11_data(0x02, sta, bssid, bssid, 2, LLC_SNAP_EAPOL + eapol_key(0x008A, 1, anonce)))
    frames.append(dot11_data(0x01, bssid, sta, bssid, 3, LLC_SNAP_EAPOL + eapol_key(0x010A, 1, snonce, RSN_IE, kck)))
    frames.append(dot11_data(0x02, sta, bssid, bssid, 4, LLC_SNAP_EAPOL + eapol_key(0x13CA, 2, anonce, wrapped, kck)))
    frames.append(dot11_data(0x01, bssid, sta, bssid, 5, LLC_SNAP_EAPOL + eapol_key(0x030A, 2, bytes(32), b"", kck)))
    pn = {"sta": 1, "ap": 1}
    seq = 10
    # the station scans the access point's TCP ports (a SYN each), the access point answers RST/ACK
    for i in range(n_syn):
        port = 20 + i
        syn = P.ipv4(P.ip4(sta_ip), P.ip4(ap_ip), 6,
                     P.tcp_segment(P.ip4(sta_ip), P.ip4(ap_ip), 40000 + i, port, 1000 + i, 0, 0x02, 1024), ident=i)
        hdr = dot11_data(0x41, bssid, sta, bssid, seq, b"")
        frames.append(hdr + ccmp_encrypt(tk, hdr, pn["sta"], LLC_SNAP_IPV4 + syn))
        pn["sta"] += 1
        seq += 1
        rst = P.ipv4(P.ip4(ap_ip), P.ip4(sta_ip), 6,
                     P.tcp_segment(P.ip4(ap_ip), P.ip4(sta_ip), port, 40000 + i, 0, 1001 + i, 0x14, 0), ident=1000 + i)
        hdr = dot11_data(0x42, sta, bssid, bssid, seq, b"")
        frames.append(hdr + ccmp_encrypt(tk, hdr, pn["ap"], LLC_SNAP_IPV4 + rst))
        pn["ap"] += 1
        seq += 1
    with open(path, "wb") as fh:  # classic pcap, microsecond timestamps
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_IEEE802_11_RADIOTAP))
        for i, f in enumerate(frames):
            us = int(round((start + i * 0.01) * 1e6))
            rec = RADIOTAP + f
            fh.write(struct.pack("<IIII", us // 1_000_000, us % 1_000_000, len(rec), len(rec)) + rec)
    return {"ssid": ssid, "passphrase": passphrase, "frames": len(frames), "encrypted": 2 * n_syn,
            "sta_ip": sta_ip, "ap_ip": ap_ip, "psk": pmk(passphrase, ssid).hex()}
