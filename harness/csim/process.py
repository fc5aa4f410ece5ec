"""Which process a C callout runs in, and the driver libraries loaded there.

The lowest layer of :mod:`harness.csim`: the callout side (``adapter``) asks
whether it runs in a scenario's child, and the crash reporter maps a stack
frame's library back to its build. The isolation side (``isolate``,
``worker``, ``target``) sets these; nothing here imports either side.
"""

from __future__ import annotations

from pathlib import Path

_in_child = False
#: Shared-object file name -> the build it came from (to resolve crash frames).
LIBRARIES: dict[str, Path] = {}


def in_child() -> bool:
    """True inside the child process a scenario runs in."""
    return _in_child


def mark_child() -> None:
    """Called first thing in a scenario's child (fork, worker or sanitizer child)."""
    global _in_child
    _in_child = True
