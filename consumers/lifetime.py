"""Children that do not outlive their parent: the kernel signals them when it dies.

Used by the supervisor for its workers, and by the local runtime for its JVMs, so a
parent killed without the chance to stop its children (SIGKILL, OOM) leaves nothing
running: each child gets SIGTERM and stops as it would when asked.
"""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, between fork and exec (Popen's preexec_fn)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
