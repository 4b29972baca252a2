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
