"""dumpcap must not outlive iotwatch, however iotwatch ends (issue 16, item 2).

The parent-death signal (``PR_SET_PDEATHSIG``) that tshark gets does not work for dumpcap in the
README's recommended setup: dumpcap carries file capabilities (``cap_net_raw,cap_net_admin``), and
the kernel clears the parent-death signal when it executes such a file. After ``kill -9`` of a
non-root iotwatch, dumpcap kept capturing with its 128 MiB buffer until a matching packet made its
write fail (seen alive 49 s later).

So dumpcap is started under a tiny watchdog (plain Python, no capabilities, no iotwatch imports)
holding the read end of a *lifeline* pipe whose only write end stays in iotwatch. When iotwatch
exits for any reason (``kill -9`` included) the kernel closes that write end, the watchdog reads EOF
and stops dumpcap (SIGTERM, SIGKILL after 2 s). dumpcap is the watchdog's own child, so the pid it
signals cannot have been reused. To iotwatch the watchdog looks like dumpcap: SIGTERM/SIGINT/SIGHUP
are passed on, dumpcap writes straight to the inherited stdout/stderr, and the watchdog exits with
dumpcap's exit status once dumpcap has ended.
"""
from __future__ import annotations

import os
import shutil
import sys

# Runs as ``python -I -S -c WATCHDOG LIFELINE_FD DUMPCAP [ARGS...]``.
WATCHDOG = r"""
import os, select, signal, subprocess, sys
fd = int(sys.argv[1])
child = None
asked = False

def forward(signum, frame):
    global asked
    asked = True        # a stop asked before dumpcap is started is passed on once it is
    if child is not None:
        try:
            child.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass

# the handlers come first: a SIGTERM that arrived between starting dumpcap and installing them
# ended the watchdog alone, leaving dumpcap capturing with nobody to stop it
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(s, forward)
child = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL)
if asked:
    forward(None, None)
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 1)        # keep no copy of the capture pipe: the reader sees EOF when dumpcap ends
os.close(null)

while child.poll() is None:
    try:
        ready, _, _ = select.select([fd], [], [], 0.2)
    except InterruptedError:
        continue
    if ready and not os.read(fd, 64):      # iotwatch is gone: stop dumpcap
        forward(None, None)
        try:
            child.wait(2)
        except subprocess.TimeoutExpired:
            child.kill()
        break
rc = child.wait()
sys.exit(128 - rc if rc < 0 else rc)
"""


def _python() -> str:
    """An interpreter this user may execute for the watchdog (plain stdlib is all it needs)."""
    if sys.executable and os.access(sys.executable, os.X_OK):
        return sys.executable
    return shutil.which("python3") or sys.executable


class Lifeline:
    """The pipe that ties a watched dumpcap to this process."""

    def __init__(self):
        self.read_fd, self.write_fd = os.pipe()   # both close-on-exec: no other child inherits them

    def argv(self, dumpcap_argv: list[str]) -> list[str]:
        """The command that runs ``dumpcap_argv`` under the watchdog (pass ``pass_fds=(read_fd,)``)."""
        return [_python(), "-I", "-S", "-c", WATCHDOG, str(self.read_fd), *dumpcap_argv]

    def started(self) -> None:
        """The watchdog has its copy of the read end: close ours."""
        if self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1

    def close(self) -> None:
        """Cut the lifeline (the watchdog stops dumpcap if it still runs)."""
        self.started()
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1


def stop_watched(proc, lifeline: Lifeline, grace: float = 2.0) -> None:
    """Stop a watched dumpcap (``proc``: the watchdog's ToolProcess) without ever orphaning it.

    SIGTERM first (passed on; dumpcap prints its statistics). If that is not enough within
    ``grace`` seconds, cut the lifeline: the watchdog then stops dumpcap itself (SIGTERM, SIGKILL
    2 s later) and exits. Only a watchdog still there after that is killed; killing it first, as a
    plain SIGTERM-then-SIGKILL did, left a dumpcap that was slow to go (a loaded machine) running
    with nobody to stop it."""
    proc.terminate(grace, then_kill=False)
    lifeline.close()
    if proc.wait(grace + 3) is None:
        proc.kill()

