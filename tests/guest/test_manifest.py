"""Driver manifests: the files, the PE image, the INF and the GUIDs are checked on load."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from harness.errors import ManifestError
from harness.guest.manifest import load_manifest
from tests.support.pe import ARM64, I386, SUBSYSTEM_WINDOWS_GUI, write_pe

REPO = Path(__file__).resolve().parents[2]
PROBE = REPO / "drivers" / "probe"


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A copy of the probe's manifest and INF with test-built binaries beside them."""
    root = tmp_path / "probe"
    root.mkdir()
    shutil.copy(PROBE / "driver.toml", root)
    shutil.copy(PROBE / "probe.inf", root)
    release = root / "build" / "x64" / "Release"
    write_pe(release / "probe.sys")
    (release / "probe.cat").write_bytes(b"0\x82catalog")
    (root / "build" / "probe-test.cer").write_bytes(b"0\x82cert")
    return root / "driver.toml"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def guid_text(c_initializer: str) -> str:
    """The registry form of a GUID written as C initializer numbers."""
    p = [int(x, 16) for x in c_initializer.split(",")]
    tail = "".join(f"{b:02X}" for b in p[5:])
    return f"{{{p[0]:08X}-{p[1]:04X}-{p[2]:04X}-{p[3]:02X}{p[4]:02X}-{tail}}}"


def test_a_complete_package_loads(package: Path) -> None:
    manifest = load_manifest(package)
    assert manifest.service == "CalloutProbe" and manifest.architecture == "amd64"
    assert manifest.etw_provider == "{6B2B7A63-6C1B-4E58-9C1B-3E1A0C6F5A01}"
    families = ("ALE_RESOURCE_ASSIGNMENT", "ALE_RESOURCE_RELEASE", "ALE_AUTH_LISTEN",
                "ALE_AUTH_CONNECT", "ALE_AUTH_RECV_ACCEPT", "ALE_FLOW_ESTABLISHED",
                "ALE_ENDPOINT_CLOSURE", "INBOUND_TRANSPORT", "OUTBOUND_TRANSPORT", "STREAM")
    assert [c.layer for c in manifest.callouts] == [
        f"{f}_{v}" for f in families for v in ("V4", "V6")
    ]
    assert manifest.sys == package.parent / "build" / "x64" / "Release" / "probe.sys"


def test_the_repository_probe_manifest_matches_its_source() -> None:
    manifest = load_manifest(PROBE / "driver.toml", check_binaries=False)
    source = (PROBE / "probe.c").read_text()

    def c_guid(name: str) -> str:
        match = re.search(rf"{name},\s*((?:0x[0-9a-fA-F]+,\s*){{10}}0x[0-9a-fA-F]+)\)", source)
        assert match, name
        return guid_text(match[1])

    assert manifest.provider_key == c_guid("PROBE_PROVIDER_KEY")
    # PROBE_LAYER(FAMILY, n4, n6, NAME): keys {9A1E5C10-2B3D-4F60-A172-8394A5B6C7nn}
    expected = []
    for n4, n6, name in re.findall(r"PROBE_LAYER\(FAM_\w+, 0x([0-9a-f]{2}), 0x([0-9a-f]{2}), "
                                   r"(\w+)\)", source):
        for n, v in ((n4, "V4"), (n6, "V6")):
            expected.append((f"{{9A1E5C10-2B3D-4F60-A172-8394A5B6C7{n.upper()}}}", f"{name}_{v}"))
    assert [(c.key, c.layer) for c in manifest.callouts] == expected
    provider = re.search(r'"CalloutProbe",\s*\(([^)]*)\)', source)
    assert provider
    assert manifest.etw_provider == guid_text(provider[1])


def test_unbuilt_binaries_are_reported_at_their_key(package: Path) -> None:
    (package.parent / "build" / "x64" / "Release" / "probe.sys").unlink()
    with pytest.raises(ManifestError) as caught:
        load_manifest(package)
    assert str(caught.value) == (
        f"{package}:{line_of(package, 'sys =')}: driver.sys: expected an existing file "
        "(relative to the manifest), found no file at build/x64/Release/probe.sys"
    )


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ({"machine": ARM64}, "Machine: expected amd64 (0x8664), found arm64 (0xAA64)"),
        ({"machine": I386, "magic": 0x10B}, "Machine: expected amd64 (0x8664), found machine"),
        ({"magic": 0x10B}, "OptionalHeader.Magic: expected PE32+ (0x20B), found 0x10B"),
        ({"subsystem": SUBSYSTEM_WINDOWS_GUI},
         "Subsystem: expected IMAGE_SUBSYSTEM_NATIVE (1), a kernel driver, "
         "found IMAGE_SUBSYSTEM_WINDOWS_GUI (2)"),
    ],
    ids=["arm64-image", "i386-image", "pe32", "gui-subsystem"],
)
def test_the_image_must_be_a_native_driver_for_the_architecture(
    package: Path, image: dict[str, int], message: str,
) -> None:
    sys_path = package.parent / "build" / "x64" / "Release" / "probe.sys"
    write_pe(sys_path, **image)
    with pytest.raises(ManifestError) as caught:
        load_manifest(package)
    assert str(caught.value).startswith(f"{sys_path}: {message}")


def test_an_arm64_manifest_takes_an_arm64_image(package: Path) -> None:
    edit(package, 'architecture = "amd64"', 'architecture = "arm64"')
    write_pe(package.parent / "build" / "x64" / "Release" / "probe.sys", machine=ARM64)
    assert load_manifest(package).architecture == "arm64"


def test_a_file_that_is_not_pe_at_all(package: Path) -> None:
    sys_path = package.parent / "build" / "x64" / "Release" / "probe.sys"
    sys_path.write_bytes(b"#!/bin/sh\necho not a driver\n")
    with pytest.raises(ManifestError, match=r"probe\.sys: expected a PE image, found "):
        load_manifest(package)


def test_the_service_must_be_one_the_inf_installs(package: Path) -> None:
    edit(package, 'service = "CalloutProbe"', 'service = "OtherName"')
    with pytest.raises(ManifestError) as caught:
        load_manifest(package)
    assert str(caught.value) == (
        f"{package}:{line_of(package, 'service =')}: driver.service: expected a service the "
        "INF installs (CalloutProbe), found string 'OtherName'"
    )


def test_inf_sections_are_case_insensitive_and_comments_ignored(package: Path) -> None:
    inf = package.parent / "probe.inf"
    edit(inf, "[DefaultInstall.NTamd64.Services]", "[defaultinstall.ntAMD64.services]")
    edit(inf, "AddService = %ServiceName%,,Probe.Service",
         "; AddService = Decoy,,Probe.Service\nAddService = %ServiceName%,,Probe.Service ; real")
    assert load_manifest(package).service == "CalloutProbe"
    # the decoy in the comment does not count
    edit(package, 'service = "CalloutProbe"', 'service = "Decoy"')
    with pytest.raises(ManifestError, match="a service the INF installs"):
        load_manifest(package)


def test_a_utf16_inf_is_read(package: Path) -> None:
    inf = package.parent / "probe.inf"
    inf.write_bytes(inf.read_text().encode("utf-16"))
    assert load_manifest(package).service == "CalloutProbe"


def test_a_broken_inf_names_its_line(package: Path) -> None:
    inf = package.parent / "probe.inf"
    edit(inf, "[Probe.Service]", "[Probe.Service")
    with pytest.raises(ManifestError) as caught:
        load_manifest(package)
    assert str(caught.value) == (
        f"{inf}:{line_of(inf, '[Probe.Service')}: expected a section header [Name], "
        "found '[Probe.Service'"
    )


def test_the_catalog_must_be_the_one_the_inf_names(package: Path) -> None:
    edit(package.parent / "probe.inf", "CatalogFile = probe.cat", "CatalogFile = other.cat")
    with pytest.raises(ManifestError, match=r"driver\.cat: expected the INF's CatalogFile"):
        load_manifest(package)


def test_a_malformed_guid_names_its_line(package: Path) -> None:
    edit(package, '"{9A1E5C10-2B3D-4F60-A172-8394A5B6C702}"', '"{9A1E5C10-2B3D-4F60-A172}"')
    with pytest.raises(ManifestError) as caught:
        load_manifest(package)
    assert str(caught.value) == (
        f"{package}:{line_of(package, '{9A1E5C10-2B3D-4F60-A172}')}: callouts[1].key: "
        "expected a GUID like {01234567-89ab-cdef-0123-456789abcdef}, "
        "found string '{9A1E5C10-2B3D-4F60-A172}'"
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('install = "service"', 'install = "msi"', "driver.install: expected one of pnp, service"),
        ('name = "probe"', 'name = "probe"\nsigned = true', "driver.signed: expected a known key"),
        ('layer = "ALE_RESOURCE_ASSIGNMENT_V4"', 'layer = "FWPM_LAYER_ALE_RESOURCE_ASSIGNMENT_V4"',
         "callouts[0].layer: expected a run-time layer name"),
        ('"{9A1E5C10-2B3D-4F60-A172-8394A5B6C702}"', '"{9A1E5C10-2B3D-4F60-A172-8394A5B6C701}"',
         "callouts[1].key: expected a callout key used once"),
        ('[driver]', '[driver', "expected valid TOML"),
    ],
    ids=["install", "unknown-key", "layer-prefix", "duplicate-callout", "toml"],
)
def test_bad_manifest_values_are_one_line_each(
    package: Path, old: str, new: str, message: str,
) -> None:
    edit(package, old, new)
    with pytest.raises(ManifestError) as caught:
        load_manifest(package)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert re.match(rf"{re.escape(str(package))}:\d+: ", str(caught.value))
