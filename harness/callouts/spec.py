"""``--callout SPEC``: which callout a run on the engine model uses.

One grammar for pytest, ``run``, ``certify run`` and ``simulate``:

``reference``                the reference callout
``mutant:NAME``              a known bug (``callout-harness mutants``)
``module:pkg.mod:Class``     your own Python callout class (``module:`` may be left out)
``c:DIR`` / ``c:DIR#MUTANT``  a driver's own C code (DIR/driver.toml ``[sim]``), see harness.csim

A spec is checked when the run is set up, not in its first scenario: the
module must import, the name must be a class, and an instance must have
every member of the :class:`~harness.engine.callout_api.Callout` protocol.
The module is imported from the Python path, and from the directory the run
starts in.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from harness.errors import UsageError

SPEC_FORMS = "reference, mutant:NAME, module:pkg.mod:Class or c:DIR[#MUTANT]"
#: Members a callout object must have (the driver's entry points).
CALLOUT_MEMBERS = ("attach", "configure", "classify", "notify", "flow_delete", "unloaded")


def spec_kind(spec: str) -> str | None:
    """``reference``, ``mutant`` or ``module`` for a well-formed spec, else None."""
    if spec == "reference":
        return "reference"
    if spec.startswith("mutant:"):
        return "mutant" if spec[len("mutant:"):] else None
    if spec.startswith("c:"):
        return "c" if spec[len("c:"):].partition("#")[0] else None
    target = spec[len("module:"):] if spec.startswith("module:") else spec
    module_name, sep, attr = target.partition(":")
    if sep and module_name and attr and ":" not in attr:
        return "module"
    return None


def resolve(spec: Any, **kw: Any) -> tuple[Any, str | None]:
    """(callout, client-mutant name or None) for a spec or a callout object."""
    if not isinstance(spec, str):
        return spec, None
    if spec == "reference":
        from harness.callouts.reference import ReferenceCallout

        return ReferenceCallout(**kw), None
    if spec.startswith("mutant:"):
        from harness.callouts.mutants import CLIENT_MUTANTS, MUTANTS
        from harness.callouts.reference import ReferenceCallout
        from harness.callouts.registry import lookup

        name = spec[len("mutant:"):]
        mutant = lookup(MUTANTS, name)
        if name in CLIENT_MUTANTS:
            return ReferenceCallout(**kw), name
        return mutant.factory(**kw), None
    if spec.startswith("c:"):
        from harness.csim import load_c_callout

        return load_c_callout(spec), None
    return _module_callout(spec, **kw), None


def load_callout(spec: str, **kw: Any) -> Any:
    """A driver callout from a spec (a client mutant is not one)."""
    callout, client = resolve(spec, **kw)
    if client is not None:
        raise UsageError(
            f"mutant {client!r} is a policy-client mutant, not a callout; "
            "run it with a workload (simulate --callout mutant:NAME)"
        )
    return callout


def _module_callout(spec: str, **kw: Any) -> Any:
    if spec_kind(spec) != "module":
        raise UsageError(f"unknown callout {spec[:80]!r}; expected {SPEC_FORMS}")
    target = spec[len("module:"):] if spec.startswith("module:") else spec
    module_name, _, attr = target.partition(":")
    # As `python -m` does: a module in the directory the run starts from imports
    # (after everything else on the path, so it shadows nothing).
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"callout {spec!r}: cannot import {module_name!r} ({exc}); the module must be "
            "importable from where the run starts (installed, or on PYTHONPATH)"
        ) from exc
    except Exception as exc:  # the user's module raised while importing
        raise UsageError(f"callout {spec!r}: importing {module_name!r} raised "
                         f"{type(exc).__name__}: {exc}") from exc
    factory = getattr(module, attr, None)
    if factory is None:
        raise UsageError(f"callout {spec!r}: {module_name!r} has no {attr!r}")
    if not isinstance(factory, type):
        raise UsageError(f"callout {spec!r}: {attr!r} is a {type(factory).__name__}, "
                         "not a class")
    try:
        made = factory(**kw)
    except Exception as exc:
        raise UsageError(f"callout {spec!r}: {attr}() raised {type(exc).__name__}: {exc}; "
                         "a callout class must construct with no arguments") from exc
    check_callout(made, spec)
    return made


def check_callout(made: Any, spec: str) -> None:
    """A one-line usage error naming every member a callout object lacks."""
    missing = [m for m in CALLOUT_MEMBERS if not callable(getattr(made, m, None))]
    if not isinstance(getattr(made, "name", None), str):
        missing.insert(0, "name")
    layers = getattr(made, "layers", None)
    if not isinstance(layers, tuple | list) or not all(isinstance(x, str) for x in layers):
        missing.insert(1 if "name" in missing else 0, "layers")
    if missing:
        raise UsageError(
            f"callout {spec!r} is not a callout: it lacks {', '.join(missing)} "
            "(subclass harness.callouts.reference.ReferenceCallout to inherit them)"
        )
