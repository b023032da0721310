"""No core dumps of the daemon: its memory holds the exchange API secret.

``forbid_core_dumps`` marks the process non-dumpable (``prctl(PR_SET_DUMPABLE, 0)``: no core
file, and other processes of the same user cannot ptrace it or read its memory) and sets its
core size limit to 0 (systemd-coredump and a plain ``core`` file both honour it). The systemd
unit sets ``LimitCORE=0`` as well. On systems without ``prctl`` only the limit is set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import sys

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def _prctl():  # type: ignore[no-untyped-def]
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def forbid_core_dumps() -> bool | None:
    """Make this process leave no core dump. Returns whether it is still dumpable (False once
    forbidden), or None where that cannot be asked (not Linux)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    prctl = _prctl()
    if prctl is None:
        return None
    if prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
    return is_dumpable()


def is_dumpable() -> bool | None:
    """``prctl(PR_GET_DUMPABLE)`` of this process; None where there is no prctl."""
    prctl = _prctl()
    return None if prctl is None else prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0
