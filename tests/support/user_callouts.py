"""Callout classes a user might write, loaded by tests as ``module:tests.support.user_callouts:NAME``."""

from __future__ import annotations

from harness.callouts.reference import ReferenceCallout

NOT_A_CLASS = ("ALE_AUTH_CONNECT_V4",)


class Same(ReferenceCallout):
    """An unchanged subclass: it must be judged exactly as the reference is."""


class Raises(ReferenceCallout):
    """Raises inside classifyFn: the scenario fails, the run goes on."""

    def classify(self, ci, out):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("bug in the user's classify")


class NoFlowDelete:
    """Has most of the protocol but no flowDeleteFn."""

    name = "partial"
    layers = ("ALE_AUTH_CONNECT_V4",)

    def attach(self, api: object) -> None: ...
    def configure(self, settings: object) -> None: ...
    def classify(self, ci: object, out: object) -> None: ...
    def notify(self, type: str, filter: object) -> str:
        return "STATUS_SUCCESS"
    def unloaded(self) -> None: ...


class NeedsArguments(ReferenceCallout):
    def __init__(self, mandatory: int) -> None:
        super().__init__()
