"""The objects BFE defines itself: built-in layers, sublayers, callouts, providers.

They exist from the start, cannot be added or deleted (OB003), and may be
referred to by any object of any lifetime (OB001, OB006). The lists follow the
Windows SDK headers (fwpmu.h, fwpmk.h) and the "Filtering layer identifiers",
"Filtering sublayer identifiers", "Built-in callout identifiers" and
"Built-in provider identifiers" pages. The names come from
``harness.trace.builtins``, which the contract checker uses too, so what this
model calls built-in is what the checker judges as such; this module adds the
sublayer weights the model arbitrates with.

BFE knows every Windows filtering layer, although the network side of the
model classifies only at ``harness.engine.objects.LAYERS``: a filter at
another layer is accepted and simply never matched.
"""

from __future__ import annotations

from typing import Final

from harness.engine.objects import BUILTIN_SUBLAYERS, BfeObject, CalloutObject, Provider, Sublayer
from harness.trace import builtins as names

#: Every filtering layer, by its run-time name without prefix.
LAYERS: Final[frozenset[str]] = names.LAYERS

# Sublayers the SDK defines beyond the weighted ones of objects.py. Their
# weights are not documented; they rank below every documented one so that
# they never change how the model's own policy arbitrates.
_EXTRA_SUBLAYERS: Final = (
    ("FWPM_SUBLAYER_EDGE_TRAVERSAL", 0x0F00),
    ("FWPM_SUBLAYER_IPSEC_FORWARD_OUTBOUND_TUNNEL", 0x0E00),
    ("FWPM_SUBLAYER_IPSEC_DOSP", 0x0D00),
    ("FWPM_SUBLAYER_TCP_TEMPLATES", 0x0C00),
    ("FWPM_SUBLAYER_IPSEC_SECURITY_REALM", 0x0B00),
)
SUBLAYERS: Final[tuple[tuple[str, int], ...]] = BUILTIN_SUBLAYERS + _EXTRA_SUBLAYERS

CALLOUTS: Final[frozenset[str]] = names.CALLOUTS
PROVIDERS: Final[frozenset[str]] = names.PROVIDERS


def builtin_objects() -> list[BfeObject]:
    """Fresh built-in sublayer, callout and provider objects for a new BFE."""
    objs: list[BfeObject] = [Sublayer(key=k, lifetime="builtin", weight=w) for k, w in SUBLAYERS]
    objs += [CalloutObject(key=k, lifetime="builtin") for k in sorted(CALLOUTS)]
    objs += [Provider(key=k, lifetime="builtin") for k in sorted(PROVIDERS)]
    return objs
