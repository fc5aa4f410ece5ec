"""Read ``netsh wfp show state`` output and find what a driver left behind.

``netsh wfp show state file=wfpstate.xml`` dumps the engine's objects as XML::

    <wfpstate>
      <providers numItems="..">
        <item><providerKey>{GUID}</providerKey><displayData><name>..</name>..</item>
      </providers>
      <subLayers numItems="..">
        <item><subLayerKey>{..}</subLayerKey><displayData>..</displayData>
              <providerKey>{..}</providerKey>..</item>
      </subLayers>
      <layers numItems="..">
        <item>
          <layer><layerKey>FWPM_LAYER_..</layerKey>..</layer>
          <callouts><item><calloutKey>{..}</calloutKey>..<providerKey>{..}</providerKey>
                          <applicableLayer>FWPM_LAYER_..</applicableLayer>..</item></callouts>
          <filters><item><filterKey>{..}</filterKey>..<providerKey>{..}</providerKey>
                         <layerKey>FWPM_LAYER_..</layerKey>..</item></filters>
        </item>
      </layers>
    </wfpstate>

Objects are recognised by their own key element (``filterKey``, ``calloutKey``,
``subLayerKey``, ``providerContextKey``; a ``providers`` item is a provider),
wherever the section sits, so the other ``netsh wfp show`` dumps
(``filters.xml``) read the same way. The file is stream-parsed: a busy
engine's state runs to tens of megabytes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness.errors import TargetError

#: The element naming an object's own key, per object type (filter first:
#: a filter item also carries a subLayerKey, and an action's calloutKey).
_KEY_ELEMENTS = (
    ("filterKey", "filter"),
    ("calloutKey", "callout"),
    ("providerContextKey", "provider_context"),
    ("subLayerKey", "sublayer"),
)


@dataclass(frozen=True)
class WfpObject:
    """One engine object from a state dump."""

    type: str
    key: str
    name: str
    provider: str | None
    layer: str | None = None

    def describe(self) -> str:
        where = f" at {self.layer}" if self.layer else ""
        return f"{self.type} {self.key} ({self.name or 'unnamed'}){where}"


def _guid(text: str | None) -> str | None:
    text = (text or "").strip()
    return "{" + text.strip("{}").upper() + "}" if text else None


def _child_text(item: ET.Element, tag: str) -> str | None:
    child = item.find(tag)
    return child.text.strip() if child is not None and child.text else None


def _object(item: ET.Element, section: str) -> WfpObject | None:
    name = _child_text(item, "displayData/name") or ""
    provider = _guid(_child_text(item, "providerKey"))
    for tag, kind in _KEY_ELEMENTS:
        key = _child_text(item, tag)
        if key:
            layer = _child_text(item, "layerKey") or _child_text(item, "applicableLayer")
            return WfpObject(kind, _guid(key) or key, name, provider, layer)
    if section == "providers" and provider:
        return WfpObject("provider", provider, name, provider)
    return None


def iter_objects(source: str | Path | IO[bytes]) -> Iterator[WfpObject]:
    """Every provider, sublayer, callout, filter and provider context in a dump."""
    where = str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "-")
    stack: list[str] = []
    try:
        for event, element in ET.iterparse(source, events=("start", "end")):
            if event == "start":
                stack.append(element.tag)
                continue
            stack.pop()
            if element.tag == "item" and stack and stack[-1] != "item":
                obj = _object(element, stack[-1])
                if obj is not None:
                    yield obj
                if len(stack) <= 2:  # a top-level section item: done with it
                    element.clear()
    except ET.ParseError as exc:
        line, column = exc.position
        raise TargetError(f"{where}:{line}: malformed WFP state XML at column {column}") from None
    except OSError as exc:
        raise TargetError(f"{where}: cannot read ({exc.strerror or exc})") from None


def leftovers(source: str | Path | IO[bytes], provider_key: str) -> list[WfpObject]:
    """Objects in a dump that belong to ``provider_key`` (the provider itself included)."""
    wanted = _guid(provider_key)
    return [obj for obj in iter_objects(source) if obj.provider == wanted]


def audit_report(objects: Iterable[WfpObject], provider_key: str) -> str:
    """One line per leftover object, or a line saying the engine is clean."""
    found = list(objects)
    if not found:
        return f"clean uninstall: no WFP object of provider {_guid(provider_key)} remains"
    lines = [f"{len(found)} WFP object(s) of provider {_guid(provider_key)} remain:"]
    lines += [f"  {obj.describe()}" for obj in found]
    return "\n".join(lines)
