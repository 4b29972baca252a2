"""``iotwatch doctor``: tool paths and versions, the inference kernel, capture permission per interface, fixes.

Exit 0 when live capture works on at least one interface, 3 when it does not (file replay may still work),
2 when every interface named with -i is unknown.
"""
from __future__ import annotations

import os
from typing import Sequence

from rich.markup import escape
from rich.table import Table

from iotwatch.captures.tshark.preflight import (INSTALL_HINT, WIFI_WARNING, capture_permission, dumpcap_interfaces,
                                                find_tool, is_permission_problem, monitor_mode_support, permission_fix,
                                                sys_net, tool_version, wifi_mode)
from iotwatch.captures.errors import one_line
from iotwatch.detector.features import tables_kernel_status  # numpy only
from iotwatch.detector.model import FAST_KERNELS, kernel_status  # numpy only; no torch, no UI

from ..console import console
from ..usage import UsageParser


def build_parser() -> UsageParser:
    ap = UsageParser(prog="iotwatch doctor", description="Check tshark/dumpcap and capture permission per interface.")
    ap.add_argument("-i", "--iface", action="append", metavar="IFACE", help="check only these interfaces")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """``iotwatch doctor``: tool paths/versions, capture permission per interface, fixes. 0 usable, 3 not."""
    ns = build_parser().parse_args(list(argv or []))

    con = console()
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
    tk, twhy = tables_kernel_status()
    con.print(f"feature-table kernel: [{'green' if tk == 'C' else 'yellow'}]{tk}[/] ({twhy})")
    capturable = 0
    if dumpcap and os.access(dumpcap, os.X_OK):
        ifaces = dumpcap_interfaces(dumpcap)
        unknown: list[str] = []
        if ns.iface:
            known = dict(ifaces)
            real = set(known) | set(sys_net())
            unknown = [i for i in ns.iface if i not in real and not i.isdigit()]
            ifaces = [(i, known.get(i, "")) for i in ns.iface if i not in unknown]
            for i in unknown:   # named as such, not as a permission problem (issue 16)
                problems.append(f"unknown interface {one_line(repr(i), 80)} (available: "
                                f"{', '.join(n for n, _ in dumpcap_interfaces(dumpcap)) or 'none found'})")
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
        if not capturable and denied:
            problems.append(f"no interface can be captured ({permission_fix(dumpcap)})")
        elif not capturable and ifaces:
            problems.append("none of these interfaces can be captured (see the table)")
    if problems:
        for p in problems:
            con.print(f"[red]problem:[/] {escape(p)}")
        if tshark and os.access(tshark, os.X_OK):
            con.print("replaying capture files (-r FILE) still works.")
        only_unknown = dumpcap and ns.iface and not capturable and len(problems) == len(unknown)
        return 2 if only_unknown else 3
    con.print(f"[green]ready:[/] live capture on {capturable} interface(s) and file replay.")
    return 0
