"""Write a certification bundle: a directory and the same content as DIR.tar.gz.

Layout::

    DIR/
      results.json      per scenario and target: outcome, attempts, violations
                        with evidence seqs, seed, trace path (relative to DIR)
      environment.json  harness, Python, dependencies, targets, VM stack, driver, seeds
      junit.xml         pytest's own --junitxml output, or written here for certify run
      report.html       the HTML report, its trace links relative to DIR
      traces/           every trace, retries included
      SHA256SUMS        sha256sum format, over every other file
      SHA256SUMS.sig    with a signing key: an SSH signature of SHA256SUMS

``certify verify`` (:mod:`harness.certify.verify`) checks all of it.

Nothing is half-written: the directory is built under a temporary name beside
DIR and renamed into place, the archive is written to ``DIR.tar.gz.partial``
and renamed, so Ctrl-C leaves the previous bundle (or nothing), never a torn
one. A run that was interrupted can still be written with ``complete=False``:
results.json then says ``"complete": false`` and why, and verify refuses it.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__
from harness.certify.environment import build_environment, sha256_file
from harness.certify.signing import SIGNATURE, sign_sums
from harness.certify.tree import scan
from harness.errata import DEFAULT_STALE_RUNS, Errata
from harness.errors import InputError, UsageError
from harness.history.records import errata_sections
from harness.report.html import ReportItem, write_html
from harness.verdict import OUTCOMES, RED, ErrataReport, ItemOutcome, errata_report

SUMS = "SHA256SUMS"
RESULTS = "results.json"
ENVIRONMENT = "environment.json"
JUNIT = "junit.xml"
REPORT = "report.html"
TRACES = "traces"
#: Files every bundle has besides its traces.
REQUIRED_FILES = (RESULTS, ENVIRONMENT, JUNIT, REPORT, SUMS)
_BUNDLE_NAMES = frozenset({*REQUIRED_FILES, TRACES, SIGNATURE})


@dataclass(frozen=True)
class Bundle:
    directory: Path
    archive: Path
    results: dict[str, Any]


def archive_path(directory: Path) -> Path:
    return directory.with_name(directory.name + ".tar.gz")


def check_bundle_dir(directory: Path) -> None:
    """Raise :class:`UsageError` unless ``directory`` is absent, empty or a previous
    bundle: a bundle never clears files it did not write."""
    if not directory.exists():
        return
    if not directory.is_dir():
        raise UsageError(f"bundle directory {directory}: exists and is not a directory")
    foreign = sorted(p.name for p in directory.iterdir() if p.name not in _BUNDLE_NAMES)
    if foreign:
        raise UsageError(f"bundle directory {directory}: holds files a bundle does not "
                         f"({', '.join(foreign[:3])}); choose a new or empty directory")


def _prepare(directory: Path) -> Path:
    """A fresh work directory beside ``directory``, to be renamed into place."""
    check_bundle_dir(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{directory.name}.partial-", dir=directory.parent))
    (work / TRACES).mkdir()
    return work


def _install(work: Path, directory: Path) -> None:
    """Put the finished ``work`` directory at ``directory``, replacing a previous bundle."""
    old: Path | None = None
    if directory.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old-", dir=directory.parent))
        os.replace(directory, old / "bundle")
    os.replace(work, directory)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _rules_of(record: dict[str, Any]) -> list[str] | None:
    """The rules the item was judged by: the record's, or its scenario's selection."""
    rules = record.get("rules")
    if isinstance(rules, list):
        return sorted(str(r) for r in rules)
    path = record.get("path")
    if not path:
        return None
    from harness.errors import InputError
    from harness.scenario.loader import load_scenario

    try:
        return sorted(load_scenario(path).expect.rules)
    except (InputError, OSError):
        return None


def _copy_traces(directory: Path, items: Iterable[ItemOutcome]) -> dict[str, str]:
    """Copy every trace into DIR/traces; source path -> path relative to DIR."""
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for item in items:
        for source in item.traces:
            if source in mapping:
                continue
            src = Path(source)
            name = src.name
            stem, n = name, 1
            while name in used:
                n += 1
                name = f"{n}-{stem}"
            used.add(name)
            rel = f"{TRACES}/{name}"
            if src.is_file():
                shutil.copy2(src, directory / rel)
            mapping[source] = rel
    return mapping


def item_json(item: ItemOutcome, traces: dict[str, str]) -> dict[str, Any]:
    record = item.record
    final = str(record.get("trace") or "")
    return {
        "id": item.item_id,
        "nodeid": item.nodeid,
        "scenario": item.scenario,
        "target": item.target,
        "os_build": item.os_build,
        "outcome": item.outcome,
        "seed": record.get("seed"),
        "trace": traces.get(final, final) if final else None,
        "attempts": [
            {**a.as_json(), "trace": traces.get(a.trace, a.trace) if a.trace else None}
            for a in item.attempts
        ],
        "failures": list(record.get("failures", [])),
        "violations": [
            {k: v.get(k) for k in ("rule", "party", "severity", "message", "events")}
            for v in record.get("violations", [])
        ],
        "expected_violations": list(record.get("expected_violations", [])),
        "rules": _rules_of(record),
        "known_issues": list(item.known_issues),
        "message": item.message,
        "duration_s": record.get("duration_s", 0.0),
    }


def results_document(
    items: list[ItemOutcome], traces: dict[str, str], errata: dict[str, Any] | None,
    *, complete: bool = True, interrupted: str | None = None,
) -> dict[str, Any]:
    summary = dict.fromkeys(OUTCOMES, 0)
    for item in items:
        summary[item.outcome] = summary.get(item.outcome, 0) + 1
    return {
        "format": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "harness_version": __version__,
        "targets": sorted({item.target for item in items}),
        "summary": summary,
        "ok": not any(item.outcome in RED for item in items),
        "complete": complete,
        "interrupted": None if complete else (interrupted or "interrupted"),
        "errata": errata,
        "items": [item_json(item, traces) for item in items],
    }


def _report(directory: Path, entries: list[dict[str, Any]], vm: str) -> None:
    from harness.trace.reader import TraceReader

    rows = []
    for entry in entries:
        path = directory / entry["trace"] if entry["trace"] else None
        events = None
        if path is not None and path.is_file():
            try:
                events = list(TraceReader(path))
            except (InputError, OSError):  # a broken trace still gets its row
                events = []
        message = entry["message"] or "; ".join(entry["failures"])
        if entry["outcome"] == "flaky":
            tries = ", ".join(f"try {a['attempt']}: {a['outcome']}" for a in entry["attempts"])
            message = f"flaky: passed after {len(entry['attempts']) - 1} retry(ies) ({tries})"
        rows.append(ReportItem(
            name=entry["scenario"], target=entry["target"], outcome=entry["outcome"],
            violations=entry["violations"], seed=entry["seed"],
            duration_s=float(entry.get("duration_s") or 0.0), trace_path=entry["trace"],
            message=message, events=events, expected_rules=entry["expected_violations"],
        ))
    write_html(directory / REPORT, rows, title="callout-harness certification run",
               target=vm)


# -- JUnit for runs made without pytest -----------------------------------------

def write_junit(path: Path, entries: list[dict[str, Any]], suite: str = "callout-harness"
                ) -> Path:
    """JUnit XML with the properties the pytest plugin records for each item."""
    failures = sum(1 for e in entries if e["outcome"] == "failed")
    errors = sum(1 for e in entries if e["outcome"] == "error")
    skipped = sum(1 for e in entries if e["outcome"] == "skipped")
    took = sum(float(e.get("duration_s") or 0.0) for e in entries)
    suites = ET.Element("testsuites")
    ts = ET.SubElement(suites, "testsuite", name=suite, tests=str(len(entries)),
                       failures=str(failures), errors=str(errors), skipped=str(skipped),
                       time=f"{took:.3f}")
    for e in entries:
        case = ET.SubElement(ts, "testcase", classname=f"scenarios.{e['scenario']}",
                             name=e["id"], time=f"{float(e.get('duration_s') or 0.0):.3f}")
        props = ET.SubElement(case, "properties")
        rules = ",".join(sorted({v["rule"] for v in e["violations"]}))
        for key, value in (("target", e["target"]), ("seed", e["seed"]), ("trace", e["trace"]),
                           ("rules", rules), ("attempts", len(e["attempts"]) or 1),
                           ("harness_outcome", e["outcome"])):
            ET.SubElement(props, "property", name=key, value=str(value))
        text = "\n".join(e["failures"])
        if e["outcome"] == "failed":
            fail = ET.SubElement(case, "failure", message=(e["message"] or text)[:500])
            fail.text = text
        elif e["outcome"] == "error":
            ET.SubElement(case, "error", message=e["message"][:500]).text = e["message"]
        elif e["outcome"] == "skipped":
            ET.SubElement(case, "skipped", message=e["message"][:500])
        elif e["outcome"] == "known":
            ET.SubElement(case, "system-out").text = e["message"]
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
    return path


# -- sums and archive ----------------------------------------------------------

def bundle_files(directory: Path) -> list[str]:
    """Every regular file under ``directory`` but SHA256SUMS and its signature, as
    sorted posix paths (links and special files are never part of a bundle)."""
    return [rel for rel in scan(directory).files if rel not in (SUMS, SIGNATURE)]


def write_sums(directory: Path, sign_key: Path | None = None) -> Path:
    lines = [f"{sha256_file(directory / rel)}  {rel}\n" for rel in bundle_files(directory)]
    out = directory / SUMS
    out.write_text("".join(lines), encoding="utf-8")
    if sign_key is not None:
        sign_sums(out, sign_key)
    return out


def write_archive(directory: Path, name: str | None = None, out: Path | None = None) -> Path:
    """DIR.tar.gz of ``directory``, written under a temporary name and renamed.

    ``name`` is the top folder inside the archive (default: the directory's name).
    """
    out = out or archive_path(directory)
    top = name or directory.name
    partial = out.with_name(out.name + ".partial")
    extra = [SIGNATURE] if (directory / SIGNATURE).is_file() else []
    try:
        with tarfile.open(partial, "w:gz") as tar:
            for rel in [*bundle_files(directory), SUMS, *extra]:
                tar.add(directory / rel, arcname=f"{top}/{rel}", recursive=False)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def write_bundle(
    directory: Path,
    items: list[ItemOutcome],
    environment: dict[str, Any],
    *,
    junit: Path | None = None,
    errata: dict[str, Any] | None = None,
    vm: str = "sim",
    sign_key: Path | None = None,
    complete: bool = True,
    interrupted: str | None = None,
) -> Bundle:
    """Write the bundle directory, its SHA256SUMS (signed with ``sign_key``, an SSH
    private key, when given) and DIR.tar.gz, each under a temporary name first.

    ``complete=False`` marks the bundle of an interrupted run (``interrupted`` says
    why): it is written so nothing is lost, and ``certify verify`` refuses it.
    """
    directory = Path(directory)
    # pytest may have written its JUnit XML inside the directory about to be replaced.
    junit_xml = junit.read_bytes() if junit is not None and junit.is_file() else None
    work = _prepare(directory)
    try:
        traces = _copy_traces(work, items)
        results = results_document(items, traces, errata, complete=complete,
                                   interrupted=interrupted)
        (work / RESULTS).write_text(json.dumps(results, indent=1), encoding="utf-8")
        (work / ENVIRONMENT).write_text(json.dumps(environment, indent=1), encoding="utf-8")
        if junit_xml is not None:
            (work / JUNIT).write_bytes(junit_xml)
        else:
            write_junit(work / JUNIT, results["items"])
        _report(work, results["items"], vm)
        write_sums(work, sign_key)
        archive = write_archive(work, name=directory.name, out=archive_path(directory))
        _install(work, directory)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return Bundle(directory, archive, results)


def finish_bundle(
    directory: Path,
    items: list[ItemOutcome],
    *,
    vm: str,
    driver: Path | None,
    root: Path,
    errata: Errata | None = None,
    junit: Path | None = None,
    history: Path | None = None,
    stale_runs: int = DEFAULT_STALE_RUNS,
    command: list[str] | dict[str, Any] | None = None,
    sign_key: Path | None = None,
    complete: bool = True,
    interrupted: str | None = None,
) -> tuple[Bundle, ErrataReport]:
    """Write the bundle of a run; returns it and the errata report.

    For an interrupted run pass ``complete=False`` (and ``interrupted``, a short
    reason such as "KeyboardInterrupt after 12 of 44 items"): verify refuses it.
    """
    previous = errata_sections(history) if history is not None else []
    report = errata_report(errata, items, previous=previous, stale_runs=stale_runs)
    environment = build_environment(items, vm=vm, driver=driver, root=root, command=command,
                                    errata=errata.path if errata else None)
    bundle = write_bundle(directory, items, environment, junit=junit, errata=report.section,
                          vm=vm, sign_key=sign_key, complete=complete, interrupted=interrupted)
    return bundle, report
