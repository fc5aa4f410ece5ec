"""Seed inputs for the fuzz tests: a valid file of every kind the harness reads, and
every bad input of issue 14 (the ones that gave tracebacks, the hang, the wrong
acceptances), each as the command line a user would have typed.

Every ``Case`` is run through ``callout-harness`` in-process; the fuzz test then
mutates the valid seeds of each kind.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEEP = 500

#: File kinds the fuzz test mutates, each with a valid seed file in the repository
#: (or built by ``make_bundle``).
KINDS = ("scenario", "profile", "pool", "manifest", "errata", "trace", "results",
         "environment", "sums", "history")


def deep_toml() -> bytes:
    return b"a = " + b"[" * DEEP + b"]" * DEEP + b"\n"


def deep_json() -> bytes:
    return b"[" * DEEP + b"]" * DEEP


def trace_bytes() -> bytes:
    """A small whole trace (header with the end promise, trace_end last)."""
    lines = [
        {"ev": "trace", "format": 1, "ends": True, "target": "sim"},
        {"seq": 1, "t": 0.0, "ev": "classify", "id": 1, "layer": "ALE_AUTH_CONNECT_V4",
         "endpoint": 5, "proto": "tcp", "dir": "out", "reauth": False, "can_pend": True},
        {"seq": 2, "t": 0.0, "ev": "pend_operation", "id": 1, "ctx": "c1",
         "status": "STATUS_SUCCESS"},
        {"seq": 3, "t": 0.0, "ev": "classify_done", "id": 1, "action": "BLOCK",
         "absorb": True, "rights": False},
        {"seq": 4, "t": 0.05, "ev": "complete_operation", "ctx": "c1"},
        {"seq": 5, "t": 0.05, "ev": "trace_end", "events": 4},
    ]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


ERRATA = b"""[[known]]
rule = "PC001"
target = "si*"
reason = "pend leak in the retry path, bug 1234"
owner = "alice"
created = 2026-01-01
expires = 2999-01-01
"""


def make_bundle(into: Path) -> Path:
    """A real bundle (synthetic items, real traces) at ``into/bundle``."""
    from harness.certify.bundle import finish_bundle
    from tests.certify.helpers import make_items

    items = make_items(into / "work")
    finish_bundle(into / "bundle", items, vm="sim", driver=None, root=into)
    return into / "bundle"


def seed_file(kind: str, into: Path) -> Path:
    """A valid file of ``kind`` under ``into`` (a bundle file lives in its bundle)."""
    into.mkdir(parents=True, exist_ok=True)
    if kind == "scenario":
        return Path(shutil.copy(ROOT / "scenarios" / "connect-pend-permit.toml", into / "s.toml"))
    if kind in ("profile", "pool") and not (into / "templates").exists():
        shutil.copytree(ROOT / "fixtures" / "templates", into / "templates")
    if kind == "profile":
        path = into / "linux-tcg.toml"
        text = (ROOT / "fixtures" / "linux-tcg.toml").read_text(encoding="utf-8")
        path.write_text(text.replace("${CALLOUT_HARNESS_GUEST}", str(into)), encoding="utf-8")
        return path
    if kind == "pool":
        shutil.copy(ROOT / "fixtures" / "win11.toml", into / "win11.toml")
        path = into / "pool.toml"
        path.write_text(f'[pool]\nlease_ttl_s = 600\noverlay_dir = "{into / "overlays"}"\n\n'
                        '[[slot]]\nname = "ch-a"\nuri = "test:///default"\nprofile = "win11"\n',
                        encoding="utf-8")
        return path
    if kind == "manifest":
        target = into / "probe"
        if not target.exists():
            shutil.copytree(ROOT / "drivers" / "probe", target)
        return target / "driver.toml"
    if kind == "errata":
        path = into / "errata.toml"
        path.write_bytes(ERRATA)
        return path
    if kind == "trace":
        path = into / "t.jsonl"
        path.write_bytes(trace_bytes())
        return path
    if kind == "history":
        from harness.history.store import add_run

        bundle = into / "bundle" if (into / "bundle").is_dir() else make_bundle(into)
        path = into / "history.jsonl"
        path.unlink(missing_ok=True)
        add_run(bundle, path)
        return path
    bundle = into / "bundle" if (into / "bundle").is_dir() else make_bundle(into)
    return bundle / {"results": "results.json", "environment": "environment.json",
                     "sums": "SHA256SUMS"}[kind]


def load(kind: str, path: Path) -> object:
    """Read a file of ``kind`` the way the command that takes it does (without running
    scenarios or VMs): the fuzz test's fast path. Bad input raises a HarnessError."""
    if kind == "scenario":
        from harness.scenario.loader import load_scenario
        return load_scenario(path)
    if kind == "profile":
        from harness.vm.profile import load_profile
        return load_profile(path)
    if kind == "pool":
        from harness.vm.pool import load_pool
        return load_pool(path, [path.parent])
    if kind == "manifest":
        from harness.certify.environment import driver_entry
        return driver_entry(path)
    if kind == "errata":
        from harness.errata import load_errata
        return load_errata(path)
    raise ValueError(kind)


#: Kinds the fuzz test reads through the command line itself (fast commands).
CLI_KINDS = ("trace", "history", "results", "environment", "sums")


def argv_for(kind: str, path: Path, work: Path) -> list[str]:
    """The command line that makes the harness read a file of ``kind`` at ``path``."""
    if kind == "scenario":
        return ["run", "--scenario", str(path), "--out", str(work / "out")]
    if kind == "profile":
        return ["run", "--vm", path.stem, "--fixtures", str(path.parent), "--scenario",
                str(ROOT / "scenarios" / "connect-pend-permit.toml"), "--out", str(work / "o")]
    if kind == "pool":
        return ["vm", "list", "--pool", str(path), "--profiles", str(path.parent)]
    if kind == "manifest":
        return ["certify", "run", "--scenario", str(ROOT / "scenarios" / "connect-pend-permit.toml"),
                "--driver", str(path), "--out", str(work / "cert")]
    if kind == "errata":
        return ["run", "--scenario", str(ROOT / "scenarios" / "connect-pend-permit.toml"),
                "--errata", str(path), "--out", str(work / "out")]
    if kind == "trace":
        return ["check", str(path)]
    if kind == "history":
        return ["history", "report", "--file", str(path), "--out", str(work / "trends.html")]
    return ["certify", "verify", str(path.parent)]


@dataclass(frozen=True)
class Case:
    """One input of the issue: ``build(work)`` writes it and returns the argv."""

    name: str
    build: Callable[[Path], list[str]]
    #: the exit code the fixed harness gives
    exit: int = 2
    #: text the one-line error must contain
    says: str = ""


def _toml_case(kind: str) -> Callable[[Path], list[str]]:
    def build(work: Path) -> list[str]:
        path = seed_file(kind, work)
        path.write_bytes(deep_toml())
        return argv_for(kind, path, work)
    return build


def _write(kind: str, data: bytes | Callable[[bytes], bytes]) -> Callable[[Path], list[str]]:
    def build(work: Path) -> list[str]:
        path = seed_file(kind, work)
        path.write_bytes(data(path.read_bytes()) if callable(data) else data)
        return argv_for(kind, path, work)
    return build


def _results(edit: Callable[[dict], None]) -> Callable[[Path], list[str]]:
    def build(work: Path) -> list[str]:
        path = seed_file("results", work)
        doc = json.loads(path.read_text())
        edit(doc)
        path.write_text(json.dumps(doc))
        return argv_for("results", path, work)
    return build


def _history_bundle(edit: Callable[[dict], None]) -> Callable[[Path], list[str]]:
    def build(work: Path) -> list[str]:
        path = seed_file("results", work)
        doc = json.loads(path.read_text())
        edit(doc)
        path.write_text(json.dumps(doc))
        return ["history", "add", str(path.parent), "--file", str(work / "h.jsonl")]
    return build


def _history_line(edit: Callable[[dict], None]) -> Callable[[Path], list[str]]:
    def build(work: Path) -> list[str]:
        path = seed_file("history", work)
        record = json.loads(path.read_text().splitlines()[0])
        edit(record)
        path.write_text(json.dumps(record) + "\n")
        return argv_for("history", path, work)
    return build


def _set_item(key: str, value: object) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        doc["items"][0][key] = value
    return edit


def _peers(work: Path) -> list[str]:
    path = work / "peers.toml"
    path.write_text('[[steps]]\nid = "u1"\ndo = "udp_send"\npeers = 9223372036854775807\n',
                    encoding="utf-8")
    return argv_for("scenario", path, work)


def _manifest_edit(old: str, new: str) -> Callable[[Path], list[str]]:
    def build(work: Path) -> list[str]:
        path = seed_file("manifest", work)
        text = path.read_text(encoding="utf-8")
        assert old in text, old
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return argv_for("manifest", path, work)
    return build


def _long_manifest_path(work: Path) -> list[str]:
    path = seed_file("manifest", work)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('sys = "build/x64/Release/probe.sys"', 'sys = "' + "a" * 300_000 + '.sys"'),
                    encoding="utf-8")
    return argv_for("manifest", path, work)


def _errata_history(content: bytes | None) -> Callable[[Path], list[str]]:
    def build(work: Path) -> list[str]:
        history = work / "hist.jsonl"
        if content is not None:
            history.write_bytes(content)
        return ["run", "--scenario", str(ROOT / "scenarios" / "connect-pend-permit.toml"),
                "--errata", str(seed_file("errata", work)), "--errata-history", str(history),
                "--out", str(work / "out")]
    return build


def _huge_trace_line(work: Path) -> list[str]:
    path = work / "huge.jsonl"
    with path.open("wb") as out:
        out.write(b'{"seq":1,"t":0,"ev":"x","pad":"')
        block = b"a" * (1 << 20)
        for _ in range(int(os.environ.get("HARNESS_FUZZ_HUGE_MB", "100"))):
            out.write(block)
        out.write(b'"}\n')
    return ["check", str(path)]


def _cut_trace(work: Path) -> list[str]:
    path = seed_file("trace", work)
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:3]))
    return ["check", str(path)]


CASES: tuple[Case, ...] = (
    # 1. tracebacks
    *(Case(f"deep-toml-{kind}", _toml_case(kind), says="nested at most")
      for kind in ("scenario", "profile", "pool", "manifest", "errata")),
    Case("deep-json-trace-line", _write("trace", b'{"seq":1,"t":0,"ev":"x","v":'
                                        + b"[" * 100_000 + b"]" * 100_000 + b"}\n"),
         says="nested at most"),
    Case("non-utf8-manifest", _write("manifest", lambda d: d.replace(b"probe", b"pr\xffbe", 1)),
         says="expected UTF-8"),
    Case("manifest-driver-int", _write("manifest", b"driver = -2147483648\n"),
         says="driver: expected a [driver] table"),
    Case("manifest-300kb-path", _long_manifest_path, says="driver.sys"),
    Case("verify-attempts-float", _results(_set_item("attempts", -1.0)),
         says="items[0].attempts: expected an array"),
    Case("verify-deep-json", _write("results", deep_json()), says="results.json"),
    Case("verify-non-utf8-sums", _write("sums", lambda d: d + b"\xff\xfe\n"),
         says="SHA256SUMS:9: expected UTF-8"),
    Case("history-add-string-item", _history_bundle(lambda d: d["items"].append("x")),
         says="items[3]: expected an object"),
    Case("history-add-outcome-array", _history_bundle(_set_item("outcome", [])),
         says="items[0].outcome"),
    Case("history-add-deep-json", lambda w: (
        seed_file("results", w).write_bytes(deep_json()),
        ["history", "add", str(w / "bundle"), "--file", str(w / "h.jsonl")])[1],
        says="results.json"),
    Case("history-report-non-object-item", _history_line(lambda r: r["items"].append(3)),
         says="items[3]: expected an object"),
    Case("history-report-driver-float", _history_line(lambda r: r.update(driver=1.5)),
         says="driver: expected an object or null"),
    # 2. the hang
    Case("scenario-peers-huge", _peers, says="peers"),
    # 3. wrong acceptances
    Case("manifest-non-utf8", _write("manifest", lambda d: d + b"# \xff\n"),
         says="expected UTF-8"),
    Case("manifest-duplicate-key", _manifest_edit('service = "', 'service = "x"\nservice = "'),
         says="valid TOML"),
    Case("manifest-unknown-key", _manifest_edit("[driver]", "[driver]\nflavour = 1"),
         says="driver.flavour"),
    Case("manifest-install-true", _manifest_edit('install = "service"', "install = true"),
         says="driver.install"),
    Case("errata-history-array", _errata_history(b"[]\n"), says="hist.jsonl:1"),
    # 4. unbounded lines
    Case("trace-100mb-line", _huge_trace_line, says="expected a line of at most"),
    # 6. cut short
    Case("trace-cut-short", _cut_trace, says="cut short after line 3"),
)


def _json_edit(data: bytes, edit: Callable[[dict], None]) -> bytes:
    doc = json.loads(data)
    edit(doc)
    return json.dumps(doc).encode()


def _line_edit(data: bytes, edit: Callable[[dict], None]) -> bytes:
    first, *rest = data.splitlines(keepends=True)
    return _json_edit(first, edit) + b"\n" + b"".join(rest)


def issue_seeds(kind: str, valid: bytes) -> list[bytes]:
    """The fuzz test's seed corpus of ``kind``: the valid file and each of the issue's
    inputs of that kind (the 100 MB trace line as a 2 MB one)."""
    seeds = [valid]
    if kind in ("scenario", "profile", "pool", "manifest", "errata"):
        seeds.append(deep_toml())
    if kind == "scenario":
        seeds.append(b'[[steps]]\nid = "u1"\ndo = "udp_send"\npeers = 9223372036854775807\n')
    if kind == "manifest":
        seeds += [valid.replace(b"probe", b"pr\xffbe", 1), b"driver = -2147483648\n",
                  valid.replace(b'sys = "build/x64/Release/probe.sys"',
                                b'sys = "' + b"a" * 300_000 + b'.sys"'),
                  valid.replace(b'service = "', b'service = "x"\nservice = "', 1),
                  valid.replace(b"[driver]", b"[driver]\nflavour = 1", 1),
                  valid.replace(b'install = "service"', b"install = true")]
    if kind == "trace":
        seeds += [b'{"seq":1,"t":0,"ev":"x","v":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
                  b"".join(valid.splitlines(keepends=True)[:3]),
                  b'{"seq":1,"t":0,"ev":"x","pad":"' + b"a" * (2 << 20) + b'"}\n']
    if kind == "results":
        seeds += [_json_edit(valid, _set_item("attempts", -1.0)), deep_json(),
                  _json_edit(valid, lambda d: d["items"].append("x")),
                  _json_edit(valid, _set_item("outcome", []))]
    if kind == "environment":
        seeds.append(deep_json())
    if kind == "sums":
        seeds.append(valid + b"\xff\xfe\n")
    if kind == "history":
        seeds += [_line_edit(valid, lambda r: r["items"].append(3)),
                  _line_edit(valid, lambda r: r.update(driver=1.5)), deep_json() + b"\n"]
    return seeds
