"""The host build of a driver: the ``[sim]`` table of its ``driver.toml``.

``[sim]`` names what to compile for the engine model and the C mutants of the
driver (compile-time variants)::

    [sim]
    sources = ["probe.c"]            # relative to driver.toml; at least one
    include_dirs = ["."]             # searched before the host headers
    defines = ["PROBE_HOST=1"]       # NAME or NAME=VALUE, passed as -D

    [[sim.mutants]]
    name = "forgets_complete"        # selected as c:DIR#forgets_complete
    define = "PROBE_MUTANT_FORGETS_COMPLETE"
    rules = ["PC001", "EP009"]       # what its trace must trip
    description = "never completes a pended connect"
    crashes = false                  # true: the runtime stops the bug (a crash with a stack)

The ``[[callouts]]`` entries (key and layer) say at which run-time layer each
callout key the driver registers sits: the engine model routes classifies by
layer, the driver registers by key. Every problem is one
:class:`~harness.errors.ManifestError` line naming the file, line and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ManifestError
from harness.tomlfile import Document, Table

MAX_SOURCES = 64
MAX_INCLUDE_DIRS = 16
MAX_DEFINES = 64
MAX_MUTANTS = 64
MAX_CALLOUTS = 64

_DEFINE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(=[^\s]{0,200})?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_RULE = re.compile(r"[A-Z]{2}\d{3}")
_GUID = re.compile(r"\{?[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\}?")
_LAYER = re.compile(r"[A-Z][A-Z0-9_]*_V[46]")


@dataclass(frozen=True)
class CMutant:
    """One compile-time variant of a driver: ``-D<define>``."""

    name: str
    define: str
    rules: tuple[str, ...]
    description: str
    #: the bug is one the runtime stops (a crash with a stack), not a trace the checker judges
    crashes: bool = False


@dataclass(frozen=True)
class SimManifest:
    """What the host build of one driver needs; paths are absolute."""

    path: Path
    name: str
    sources: tuple[Path, ...]
    include_dirs: tuple[Path, ...]
    defines: tuple[str, ...]
    #: callout key (upper-case GUID without braces) -> run-time layer, in file order
    layers: tuple[tuple[str, str], ...]
    mutants: tuple[CMutant, ...]

    @property
    def root(self) -> Path:
        return self.path.parent

    def mutant(self, name: str) -> CMutant:
        for m in self.mutants:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.mutants) or "none"
        raise ManifestError(str(self.path), key="sim.mutants",
                            expected=f"a mutant named {name!r} (known: {known})",
                            found="no such mutant")


def normal_guid(text: str) -> str:
    return text.strip("{}").upper()


#: manifests read in this process, by path and modification stamp
_LOADED: dict[tuple[str, int, int], SimManifest] = {}


def load_sim_manifest(directory: str | Path) -> SimManifest:
    """Read ``DIR/driver.toml`` (or the file itself) and validate its ``[sim]`` table."""
    path = Path(directory)
    if path.is_dir() or path.suffix != ".toml":
        path = path / "driver.toml"
    try:
        stat = path.stat()
    except OSError as exc:
        raise ManifestError(str(path), message="file not found") from exc
    memo = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    known = _LOADED.get(memo)
    if known is None:
        known = _LOADED[memo] = _load(path)
    return known


def _load(path: Path) -> SimManifest:
    doc = Document(path, ManifestError)
    root = doc.root()
    driver = root.table("driver")
    name = driver.string("name", default=path.parent.name)
    if not _NAME.fullmatch(name.lower()):
        raise driver.fail("name", expected="a driver name (letters, digits, _)", found=name)
    sim = root.table("sim")
    sources = _paths(sim, "sources", path.parent, MAX_SOURCES, files=True, required=True)
    include_dirs = _paths(sim, "include_dirs", path.parent, MAX_INCLUDE_DIRS, files=False,
                          required=False)
    defines = sim.strings("defines", default=[])
    if len(defines) > MAX_DEFINES:
        raise sim.fail("defines", expected=f"at most {MAX_DEFINES} defines",
                       found=f"{len(defines)}")
    for d in defines:
        if not _DEFINE.fullmatch(d):
            raise sim.fail("defines", expected="NAME or NAME=VALUE (no spaces)", found=d)
    mutants = _mutants(sim)
    sim.finish()
    layers = _layers(root)
    return SimManifest(path.resolve(), name.lower(), sources, include_dirs, tuple(defines),
                       layers, mutants)


def _paths(table: Table, key: str, base: Path, limit: int, *, files: bool,
           required: bool) -> tuple[Path, ...]:
    values = table.strings(key) if required else table.strings(key, default=[])
    if required and not values:
        raise table.fail(key, expected="at least one source file", found="an empty array")
    if len(values) > limit:
        raise table.fail(key, expected=f"at most {limit} entries", found=f"{len(values)}")
    out: list[Path] = []
    for value in values:
        p = (base / value).resolve()
        ok = p.is_file() if files else p.is_dir()
        if not ok:
            what = "an existing file" if files else "an existing directory"
            raise table.fail(key, expected=f"{what} (relative to driver.toml)", found=value)
        if files and p.suffix != ".c":
            raise table.fail(key, expected="a C source file (.c)", found=value)
        out.append(p)
    return tuple(out)


def _mutants(sim: Table) -> tuple[CMutant, ...]:
    if not sim.has("mutants"):
        return ()
    tables = sim.tables("mutants")
    if len(tables) > MAX_MUTANTS:
        raise sim.fail("mutants", expected=f"at most {MAX_MUTANTS} mutants",
                       found=f"{len(tables)}")
    seen: set[str] = set()
    out: list[CMutant] = []
    for t in tables:
        name = t.string("name", pattern=_NAME, what="a snake_case name")
        if name in seen:
            raise t.fail("name", expected="a name no other mutant has", found=name)
        seen.add(name)
        define = t.string("define", pattern=_IDENT, what="a C macro name")
        crashes = t.boolean("crashes", default=False)
        rules = t.strings("rules", default=[])
        if (not rules and not crashes) or not all(_RULE.fullmatch(r) for r in rules):
            raise t.fail("rules", expected="rule IDs such as PC001 (or crashes = true)",
                         found=rules)
        description = t.string("description")
        t.finish()
        out.append(CMutant(name, define, tuple(rules), description, crashes))
    return tuple(out)


def _layers(root: Table) -> tuple[tuple[str, str], ...]:
    if not root.has("callouts"):
        raise root.fail("callouts", expected="[[callouts]] entries (key and layer)")
    tables = root.tables("callouts")
    if len(tables) > MAX_CALLOUTS:
        raise root.fail("callouts", expected=f"at most {MAX_CALLOUTS} callouts",
                        found=f"{len(tables)}")
    out: list[tuple[str, str]] = []
    keys: set[str] = set()
    for t in tables:
        key = t.string("key", pattern=_GUID, what="a GUID")
        layer = t.string("layer", pattern=_LAYER, what="a run-time layer name such as "
                         "ALE_AUTH_CONNECT_V4")
        if normal_guid(key) in keys:
            raise t.fail("key", expected="a key no other callout has", found=key)
        keys.add(normal_guid(key))
        out.append((normal_guid(key), layer))
    return tuple(out)
