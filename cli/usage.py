"""argparse for every iotwatch command (cli/ is the only argparse user)."""
from __future__ import annotations

import argparse

from iotwatch.captures.errors import InputError


class UsageParser(argparse.ArgumentParser):
    """argparse for every iotwatch command: a usage error is an ``InputError`` (one line, exit 2)
    naming the command's help, instead of argparse's usage dump and exit. Every command and
    sub-command answers ``-V/--version``."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        from iotwatch import __version__

        self.add_argument("-V", "--version", action="version", version=f"iotwatch {__version__}")

    def error(self, message):
        raise InputError(message, hint=f"see '{self.prog} --help'")

    def parse_known_args(self, args=None, namespace=None):
        """argparse's, and a file, folder or interface option given an empty string is refused:
        ``-r "$CAP"`` (or ``-i "$IF"``) with the variable unset replayed the bundled demo as if it were
        the user's traffic, and ``--report ""`` silently wrote no report."""
        ns, rest = super().parse_known_args(args, namespace)
        for action in self._actions:
            if isinstance(action.metavar, str) and action.metavar.split(".")[0] in _PATH_METAVARS:
                value = getattr(ns, action.dest, None)
                if value == "" or (isinstance(value, list) and "" in value):
                    what = "interface name" if action.metavar == "IFACE" else "path"
                    self.error(f"{'/'.join(action.option_strings) or action.metavar} was given an empty {what} "
                               "(an unset shell variable?)")
        return ns, rest


_PATH_METAVARS = {"FILE", "DIR", "PATH", "IFACE"}   # the metavars of file, folder and interface arguments
