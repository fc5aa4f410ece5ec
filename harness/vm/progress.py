"""Progress of long VM steps (boot, revert, image copy, dump), as values.

Provisioning code calls :func:`report`; whoever started it (the pytest
plugin, the CLI) passes a callable that prints or logs each
:class:`ProgressEvent`. Nothing here prints by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a long operation on a slot.

    ``step`` is a short machine-readable name (``boot``, ``revert``,
    ``overlay``, ``image-copy``, ``snapshot``, ``dump``, ``teardown``);
    ``done`` marks the last event of a step, with its ``elapsed_s``;
    ``fraction`` is 0..1 when the step knows how far it is.
    """

    step: str
    slot: str
    message: str
    done: bool = False
    fraction: float | None = None
    elapsed_s: float | None = None

    def __str__(self) -> str:
        text = f"[{self.slot}] {self.step}: {self.message}" if self.slot else (
            f"{self.step}: {self.message}"
        )
        if self.done and self.elapsed_s is not None:
            text += f" ({self.elapsed_s:.1f} s)"
        return text


Progress = Callable[[ProgressEvent], None]


def report(
    progress: Progress | None,
    step: str,
    slot: str,
    message: str,
    *,
    done: bool = False,
    fraction: float | None = None,
    elapsed_s: float | None = None,
) -> None:
    if progress is not None:
        progress(ProgressEvent(step, slot, message, done, fraction, elapsed_s))
