"""Driver manifests: ``drivers/<name>/driver.toml`` and the files it names.

A manifest tells the harness what to deploy and what to listen to: the
package files (``.sys``, ``.inf``, ``.cat``, test ``.cer``; paths relative to
the manifest), the service name, the TraceLogging provider GUID, the WFP
provider key and the callouts (key and layer) the driver registers. Loading
checks everything a lab run would otherwise discover an hour later:

- the files exist;
- the ``.sys`` is a PE image for the manifest's architecture (AMD64/ARM64)
  with the native subsystem (IMAGE_SUBSYSTEM_NATIVE = 1), read with pefile;
- the INF parses (sections case-insensitive, ``;`` comments) and one of its
  ``AddService`` directives installs the manifest's service;
- every GUID is well formed and every layer is a run-time layer name.

Each problem is one :class:`~harness.errors.ManifestError` line:
``FILE:LINE: KEY: expected X, found Y``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import ManifestError, describe
from harness.guest.inf import InfError, parse_inf
from harness.tomlfile import clip, parse_toml

#: The longest path or name a manifest may give (Windows' MAX_PATH is 260).
MAX_TEXT = 1024

#: IMAGE_FILE_HEADER.Machine per architecture name.
MACHINES: dict[str, int] = {"amd64": 0x8664, "arm64": 0xAA64}
IMAGE_SUBSYSTEM_NATIVE = 1
_GUID = re.compile(r"\{?[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\}?")
# run-time layer names: FWPS_LAYER_X_V4 without its prefix
_LAYER = re.compile(r"(?!FWP[MS]_LAYER_)[A-Z][A-Z0-9_]*_V[46](?:_DISCARD)?")
_DRIVER_KEYS = frozenset({
    "name", "sys", "inf", "cat", "cer", "service", "install", "architecture",
    "etw_provider", "provider_key",
})
_CALLOUT_KEYS = frozenset({"key", "layer"})


@dataclass(frozen=True)
class ManifestCallout:
    key: str
    layer: str


@dataclass(frozen=True)
class DriverManifest:
    """A validated driver manifest; paths are absolute."""

    path: Path
    name: str
    sys: Path
    inf: Path
    cat: Path
    cer: Path
    service: str
    install: Literal["pnp", "service"]
    architecture: Literal["amd64", "arm64"]
    etw_provider: str
    provider_key: str
    callouts: tuple[ManifestCallout, ...]

    @property
    def files(self) -> tuple[Path, ...]:
        """The package files to copy into the guest."""
        return (self.sys, self.inf, self.cat, self.cer)


def normalize_guid(text: str) -> str:
    """A GUID in registry form: ``{XXXXXXXX-...}``, upper case."""
    return "{" + text.strip("{}").upper() + "}"


class _Loader:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, key: str, table: str = "driver", index: int = 0) -> int | None:
        """The line where ``key`` is set inside the ``index``-th ``[table]``/``[[table]]``."""
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        any_header = re.compile(r"^\s*\[")
        assign = re.compile(rf"^\s*{re.escape(key)}\s*=")
        seen = -1
        inside = False
        for number, line in enumerate(self.lines, 1):
            if header.match(line):
                seen += 1
                inside = seen == index
                if inside and not key:
                    return number
                continue
            if any_header.match(line):
                inside = False
            elif inside and assign.match(line):
                return number
        return None

    def error(
        self, key: str, expected: str, found: str, *, table: str = "driver", index: int = 0,
        dotted: str | None = None,
    ) -> ManifestError:
        return ManifestError(
            str(self.path), line=self.line_of(key, table, index),
            key=clip(dotted or f"{table}.{key}"), expected=expected, found=clip(found),
        )


def load_manifest(path: str | Path, *, check_binaries: bool = True) -> DriverManifest:
    """Load and validate ``driver.toml``.

    ``check_binaries=False`` skips the build outputs (.sys, .cat, .cer), for a
    source tree where the WDK has not run yet; the INF and GUIDs are checked
    either way.
    """
    path = Path(path)
    text, data = parse_toml(path, ManifestError, syntax_as_expected=True)
    loader = _Loader(path, text)
    driver = data.get("driver")
    if not isinstance(driver, dict):
        raise ManifestError(str(path), key="driver", expected="a [driver] table",
                            found=describe(driver) if driver is not None else "nothing")
    for key in sorted(set(data) - {"driver", "callouts", "sim"}):  # [sim]: harness.csim
        raise ManifestError(str(path), key=clip(key), expected="[driver], [[callouts]] or [sim]",
                            found="an unknown table")
    for key in sorted(set(driver) - _DRIVER_KEYS):
        raise loader.error(key, "a known key (" + ", ".join(sorted(_DRIVER_KEYS)) + ")",
                           "an unknown key")
    base = path.parent

    def text_field(key: str, default: str | None = None) -> str:
        value = driver.get(key, default)
        if value is None:
            raise ManifestError(str(path), key=f"driver.{key}", expected="a string",
                                found="nothing (key missing)")
        if not isinstance(value, str) or not value.strip():
            raise loader.error(key, "a non-empty string", describe(value))
        if len(value) > MAX_TEXT or "\0" in value:
            raise loader.error(key, f"at most {MAX_TEXT} characters and no NUL",
                               describe(value))
        return value

    def choice(key: str, options: tuple[str, ...], default: str) -> Any:
        value = text_field(key, default)
        if value not in options:
            raise loader.error(key, "one of " + ", ".join(options), describe(value))
        return value

    def guid(key: str, value: Any, **where: Any) -> str:
        if not isinstance(value, str) or not _GUID.fullmatch(value):
            raise loader.error(key, "a GUID like {01234567-89ab-cdef-0123-456789abcdef}",
                               describe(value), **where)
        return normalize_guid(value)

    def file_field(key: str, suffix: str, required: bool) -> Path:
        value = text_field(key)
        try:
            resolved = (base / value).resolve()
            exists = resolved.is_file()
        except (OSError, ValueError, RuntimeError) as exc:
            raise loader.error(key, "a readable path (relative to the manifest)",
                               f"{describe(value)} ({exc.__class__.__name__})") from None
        if resolved.suffix.lower() != suffix:
            raise loader.error(key, f"a {suffix} file", describe(value))
        if required and not exists:
            raise loader.error(key, "an existing file (relative to the manifest)",
                               f"no file at {value}")
        return resolved

    architecture = choice("architecture", tuple(MACHINES), "amd64")
    manifest_kw: dict[str, Any] = {
        "name": text_field("name", base.name),
        "sys": file_field("sys", ".sys", check_binaries),
        "inf": file_field("inf", ".inf", True),
        "cat": file_field("cat", ".cat", check_binaries),
        "cer": file_field("cer", ".cer", check_binaries),
        "service": text_field("service"),
        "install": choice("install", ("pnp", "service"), "pnp"),
        "architecture": architecture,
        "etw_provider": guid("etw_provider", driver.get("etw_provider")),
        "provider_key": guid("provider_key", driver.get("provider_key")),
    }
    raw_callouts = data.get("callouts", [])
    if not isinstance(raw_callouts, list) or not raw_callouts:
        raise ManifestError(str(path), key="callouts",
                            expected="one or more [[callouts]] tables",
                            found=describe(raw_callouts) if raw_callouts else "none")
    callouts = []
    for i, item in enumerate(raw_callouts):
        if not isinstance(item, dict):
            raise ManifestError(str(path), key=f"callouts[{i}]", expected="a table",
                                found=describe(item))
        for key in sorted(set(item) - _CALLOUT_KEYS):
            raise loader.error(key, "key or layer", "an unknown key", table="callouts",
                               index=i, dotted=f"callouts[{i}].{key}")
        key_guid = guid("key", item.get("key"), table="callouts", index=i,
                        dotted=f"callouts[{i}].key")
        layer = item.get("layer")
        if not isinstance(layer, str) or not _LAYER.fullmatch(layer):
            raise loader.error("layer", "a run-time layer name like ALE_AUTH_CONNECT_V4",
                               describe(layer), table="callouts", index=i,
                               dotted=f"callouts[{i}].layer")
        callouts.append(ManifestCallout(key_guid, layer))
    keys = [c.key for c in callouts]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise loader.error("key", "a callout key used once", f"{key} again",
                               dotted=f"callouts[{i}].key", table="callouts", index=i)
    manifest = DriverManifest(path=path.resolve(), callouts=tuple(callouts), **manifest_kw)
    _check_inf(manifest, loader)
    if check_binaries:
        check_image(manifest.sys, architecture, source=str(path))
    return manifest


def _check_inf(manifest: DriverManifest, loader: _Loader) -> None:
    try:
        inf = parse_inf(manifest.inf)
    except InfError as exc:
        raise ManifestError(exc.path, line=exc.line, message=exc.reason) from None
    services = inf.services()
    if manifest.service.lower() not in {s.lower() for s in services}:
        raise loader.error(
            "service", f"a service the INF installs ({', '.join(services) or 'none'})",
            describe(manifest.service),
        )
    catalog = inf.value("Version", "CatalogFile")
    if catalog and catalog.lower() != manifest.cat.name.lower():
        raise loader.error("cat", f"the INF's CatalogFile ({catalog})", describe(manifest.cat.name))


def check_image(sys_path: Path, architecture: str, *, source: str) -> None:
    """Raise :class:`ManifestError` unless ``sys_path`` is a native-subsystem driver image."""
    try:
        import pefile
    except ImportError as exc:
        raise ManifestError(source, message="checking a .sys needs pefile: "
                            "pip install 'callout-harness[guest]'") from exc
    where = str(sys_path)
    try:
        image = pefile.PE(where, fast_load=True)
    except pefile.PEFormatError as exc:
        raise ManifestError(where, expected="a PE image", found=str(exc.value)) from None
    except OSError as exc:
        raise ManifestError(where, message=f"cannot read ({exc.strerror or exc})") from None
    try:
        machine = image.FILE_HEADER.Machine
        expected = MACHINES[architecture]
        if machine != expected:
            names = {v: k for k, v in MACHINES.items()}
            raise ManifestError(
                where, key="Machine", expected=f"{architecture} (0x{expected:04X})",
                found=f"{names.get(machine, 'machine')} (0x{machine:04X})",
            )
        if image.OPTIONAL_HEADER.Magic != 0x20B:
            raise ManifestError(where, key="OptionalHeader.Magic", expected="PE32+ (0x20B)",
                                found=f"0x{image.OPTIONAL_HEADER.Magic:X}")
        subsystem = image.OPTIONAL_HEADER.Subsystem
        if subsystem != IMAGE_SUBSYSTEM_NATIVE:
            raise ManifestError(
                where, key="Subsystem", expected="IMAGE_SUBSYSTEM_NATIVE (1), a kernel driver",
                found=f"{pefile.SUBSYSTEM_TYPE.get(subsystem, 'subsystem')} ({subsystem})",
            )
    finally:
        image.close()
