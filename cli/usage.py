"""argparse for every iotwatch command (cli/ is the only argparse user)."""
from __future__ import annotations

import argparse

from iotwatch.captures.errors import InputError


class UsageParser(argparse.ArgumentParser):
    """argparse for every iotwatch command: a usage error is an ``InputError`` (one line, exit 2)
    naming the command's help, instead of argparse's usage dump and exit."""

    def error(self, message):
        raise InputError(message, hint=f"see '{self.prog} --help'")
