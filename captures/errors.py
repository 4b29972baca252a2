"""Errors that reach the user as one clear line and a documented exit code (CONTRACT §3).

Every layer raises these instead of letting a traceback escape:
  exit 2 -> ``InputError``       usage or input error (file, filter, interface, labels, model)
  exit 3 -> ``EnvironmentProblem`` tshark/dumpcap missing, no capture permission, not root
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_ANOMALIES = 1  # only with --fail-on anomaly
EXIT_INPUT = 2
EXIT_ENV = 3


class IotwatchError(Exception):
    """Base class: ``str(err)`` is the one line shown to the user (what, where, how to fix)."""

    exit_code = EXIT_INPUT

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # one line, never a traceback
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InputError(IotwatchError):
    """Bad file, filter, interface, label file or model bundle: exit 2."""

    exit_code = EXIT_INPUT


class EnvironmentProblem(IotwatchError):
    """Missing tshark/dumpcap, no capture permission, needs root: exit 3."""

    exit_code = EXIT_ENV
