"""A scenario's ``[callout]`` knobs applied to a callout on the engine model.

The knobs are a mixin put in front of whatever callout class the run uses
(the reference, or a mutant, which is a subclass of it): each override
either does what the knob asks or defers to the class behind it, so a
mutant keeps its bug while the scenario decides what gets pended.
"""

from __future__ import annotations

from typing import Any

from harness.callouts.reference import ReferenceCallout
from harness.engine.callout_api import ClassifyIn, ClassifyOut
from harness.scenario.model import CalloutConfig


class ScenarioKnobs(ReferenceCallout):
    """Mixin: read ``self.knobs`` (a CalloutConfig) before the reference behaviour."""

    knobs: CalloutConfig = CalloutConfig()

    def on_connect(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        if "connect" in self.knobs.pend:
            super().on_connect(ci, out)
            return
        self.endpoint_context(ci.endpoint)
        if ci.rights:
            self.give(out, self.decide(ci), True)

    def on_recv_accept(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        if "recv_accept" in self.knobs.pend:
            super().on_recv_accept(ci, out)
            return
        self.endpoint_context(ci.endpoint)
        if ci.rights:
            self.give(out, self.decide(ci), True)

    def answer_reauth(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        if self.knobs.pend_on_reauth and ci.can_pend and ci.rights:
            # A driver that tries to pend every authorization: on a
            # reauthorization the engine refuses (STATUS_FWP_CANNOT_PEND) and a
            # correct driver then answers synchronously, without absorbing.
            result = self.api.pend_operation(ci)
            if result.ok and result.handle is not None:
                # The engine let a reauthorization pend (a broken engine): finish it.
                ctx = result.handle
                self.api.call_later(0.0, lambda: self.api.complete_operation(ctx))
        super().answer_reauth(ci, out)

    def endpoint_context(self, endpoint: int | None) -> None:
        if self.knobs.endpoint_contexts:
            super().endpoint_context(endpoint)

    def associate_flow(self, ci: ClassifyIn) -> None:
        if self.knobs.flow_contexts:
            super().associate_flow(ci)

    def unloaded(self) -> None:
        """DriverUnload after every callout unregistered: free what is left."""
        for endpoint in list(self.endpoint_ctx):
            self.free_endpoint_context(endpoint)

    def wants_queue(self, ci: ClassifyIn) -> bool:
        # Queuing datagrams is what makes a closure worth pending: without
        # "closure" among the pend points, the driver handles packets inline.
        return "closure" in self.knobs.pend and super().wants_queue(ci)


def with_knobs(callout: Any, knobs: CalloutConfig) -> Any:
    """``callout`` with the scenario's knobs in front of its class (reference-based only)."""
    if not isinstance(callout, ReferenceCallout):
        return callout
    cls = type(callout)
    knobbed = type(f"Scenario{cls.__name__}", (ScenarioKnobs, cls), {"knobs": knobs})
    callout.__class__ = knobbed
    handlers = getattr(callout, "_handlers", None)
    if isinstance(handlers, dict):
        # the reference binds its per-layer handlers at construction: rebind
        # them so the knobs' overrides are the ones called
        for family, bound in list(handlers.items()):
            handlers[family] = getattr(callout, bound.__name__)
    return callout
