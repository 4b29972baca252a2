"""``iotwatch doctor``: tool paths and versions, the inference kernel, capture permission per interface, fixes.

Exit 0 when live capture works on at least one interface, 3 when it does not (file replay may still work).
"""
from __future__ import annotations

import os
from typing import Sequence

from rich.console import Console
from rich.table import Table

from iotwatch.captures.tshark.preflight import (INSTALL_HINT, WIFI_WARNING, capture_permission, dumpcap_interfaces,
                                                find_tool, is_permission_problem, monitor_mode_support, permission_fix,
                                                tool_version, wifi_mode)
from iotwatch.detector.model import FAST_KERNELS, kernel_status  # numpy only; no torch, no UI

from ..usage import UsageParser


def main(argv: Sequence[str] | None = None) -> int:
    """``iotwatch doctor``: tool paths/versions, capture permission per interface, fixes. 0 usable, 3 not."""
    ap = UsageParser(prog="iotwatch doctor", description="Check tshark/dumpcap and capture permission per interface.")
    ap.add_argument("-i", "--iface", action="append", metavar="IFACE", help="check only these interfaces")
    ns = ap.parse_args(list(argv or []))

    con = Console(highlight=False, soft_wrap=True)
    tshark = find_tool("tshark", None)
    dumpcap = find_tool("dumpcap", None)
    problems: list[str] = []
    tools = Table(title="tools", title_justify="left", show_edge=False)
    for col in ("tool", "path", "version"):
        tools.add_column(col)
    for name, path in (("tshark", tshark), ("dumpcap", dumpcap)):
        if path is None:
            tools.add_row(name, "[red]not found[/]", "")
            problems.append(f"{name} not found ({INSTALL_HINT})")
        elif not os.access(path, os.X_OK):
            tools.add_row(name, path, "[red]not executable by this user[/]")
            problems.append(f"cannot run {path} ({permission_fix(path) if name == 'dumpcap' else INSTALL_HINT})")
        else:
            tools.add_row(name, path, tool_version(path))
    con.print(tools)

    kernel, why = kernel_status()
    colour = "green" if kernel in FAST_KERNELS else "yellow"
    con.print(f"inference kernel: [{colour}]{kernel}[/] ({why})")
    capturable = 0
    if dumpcap and os.access(dumpcap, os.X_OK):
        ifaces = dumpcap_interfaces(dumpcap)
        if ns.iface:
            known = dict(ifaces)
            ifaces = [(i, known.get(i, "")) for i in ns.iface]
        table = Table(title="capture permission per interface", title_justify="left", show_edge=False)
        for col in ("interface", "description", "capture", "notes"):
            table.add_column(col)
        warnings = []
        denied = 0
        for name, desc in ifaces:
            ok, reason = capture_permission(name, dumpcap)
            capturable += ok
            denied += not ok and is_permission_problem(reason)
            mode = wifi_mode(name)
            if mode == "managed":
                warnings.append(f"[yellow]warning:[/] {name}: {WIFI_WARNING}")
            if mode:
                can, why = monitor_mode_support(name, dumpcap) if ok else (False, "no capture permission")
                mode += ", monitor mode (-I) " + ("supported" if can else f"not available: {why}")
            state = "[green]ok[/]" if ok else ("[red]denied[/]" if is_permission_problem(reason) else "unavailable")
            table.add_row(name, desc, state if ok else f"{state}: {reason}",
                          f"Wi-Fi {mode} mode" if mode else "")
        con.print(table)
        for w in warnings:
            con.print(w)
        if not capturable:
            problems.append(f"no interface can be captured ({permission_fix(dumpcap)})")
    if problems:
        for p in problems:
            con.print(f"[red]problem:[/] {p}")
        if tshark and os.access(tshark, os.X_OK):
            con.print("replaying capture files (-r FILE) still works.")
        return 3
    con.print(f"[green]ready:[/] live capture on {capturable} interface(s) and file replay.")
    return 0
