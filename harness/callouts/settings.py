"""What one scenario asks of the callout under test, as plain data.

A scenario's ``[callout]`` table (a :class:`~harness.scenario.model.CalloutConfig`)
plus what the target derived from its steps: the remote addresses the
``block`` list names, and the remote ports whose streams are edited out of
band. Every callout kind receives this one object through ``configure``
before the scenario starts: the Python reference and its mutants, a user's
``module:`` class, and a C driver (where it travels as the probe's
configuration IOCTL). Data only, so it crosses a process or an IOCTL as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.scenario.model import CalloutConfig


@dataclass(frozen=True)
class CalloutSettings:
    """The scenario's ``[callout]`` knobs, resolved against its steps."""

    knobs: CalloutConfig = field(default_factory=CalloutConfig)
    #: "ip:port" remotes to block (the steps named in ``block``)
    blocked_remotes: frozenset[str] = frozenset()
    #: remote ports whose TCP streams are edited out of band
    edit_ports: frozenset[int] = frozenset()

    def decide(self, remote: str | None) -> str:
        """PERMIT or BLOCK for a connection to ``remote``, as the scenario asks."""
        if remote in self.blocked_remotes:
            return "BLOCK"
        if self.knobs.decision == "block" and remote:
            return "BLOCK"
        return "PERMIT"
