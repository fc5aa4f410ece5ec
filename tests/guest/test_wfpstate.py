"""Reading `netsh wfp show state` dumps for the clean-uninstall audit."""

from __future__ import annotations

import io

import pytest

from harness.errors import TargetError
from harness.guest.wfpstate import audit_report, iter_objects, leftovers
from tests.guest.conftest import DATA

PROBE_PROVIDER = "{3F0B1C2D-4E5F-4A6B-8C7D-9E0F1A2B3C4D}"


def test_every_object_kind_is_found_with_its_provider() -> None:
    objects = list(iter_objects(DATA / "wfpstate_leftovers.xml"))
    assert [(o.type, o.name) for o in objects] == [
        ("provider", "Microsoft Windows WFP Built-in TCP Templates provider."),
        ("provider", "callout-harness probe"),
        ("sublayer", "WFP Built-in IPsec Tunnel Sublayer"),
        ("sublayer", "callout-harness probe sublayer"),
        ("callout", "callout-harness probe callout"),
        ("filter", "Default Outbound"),
        ("filter", "callout-harness probe filter"),
    ]
    assert objects[2].provider is None  # <providerKey/>


def test_leftovers_are_the_drivers_objects_only() -> None:
    found = leftovers(DATA / "wfpstate_leftovers.xml", "3f0b1c2d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
    assert [(o.type, o.key) for o in found] == [
        ("provider", PROBE_PROVIDER),
        ("sublayer", "{3F0B1C2D-4E5F-4A6B-8C7D-9E0F1A2B3C4E}"),
        ("callout", "{9A1E5C10-2B3D-4F60-A172-8394A5B6C701}"),
        ("filter", "{5D1F3C2B-0000-4A6B-8C7D-000000000001}"),
    ]
    report = audit_report(found, PROBE_PROVIDER)
    assert report.splitlines()[0] == f"4 WFP object(s) of provider {PROBE_PROVIDER} remain:"
    assert ("  filter {5D1F3C2B-0000-4A6B-8C7D-000000000001} (callout-harness probe filter)"
            " at FWPM_LAYER_ALE_AUTH_CONNECT_V4") in report.splitlines()


def test_a_clean_engine_has_no_leftovers() -> None:
    assert leftovers(DATA / "wfpstate_clean.xml", PROBE_PROVIDER) == []
    assert audit_report([], PROBE_PROVIDER).startswith("clean uninstall")


def test_a_truncated_dump_is_an_error_with_its_line() -> None:
    text = (DATA / "wfpstate_leftovers.xml").read_bytes()[:2000]
    source = io.BytesIO(text)
    source.name = "wfpstate.xml"
    with pytest.raises(TargetError, match=r"^wfpstate\.xml:\d+: malformed WFP state XML"):
        leftovers(source, PROBE_PROVIDER)
