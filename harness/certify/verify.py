"""Check a certification bundle (a directory or its .tar.gz) for changes, gaps and forgery.

Every problem is one line, naming the file relative to the bundle::

    changed: traces/a.sim.seed1.jsonl (SHA-256 differs from SHA256SUMS)
    missing: traces/a.sim.seed1.jsonl (listed in SHA256SUMS; trace of a[sim] in results.json)
    unlisted: notes.txt (not in SHA256SUMS)
    refused: traces/etc (a symbolic link; a bundle holds regular files only)
    incomplete: environment.json has no "seeds"
    incomplete: the run was interrupted (results.json says complete: false)
    rejudged: a[sim]: results.json says passed, its trace breaks PC001
    unsigned: ... (only with trusted keys; otherwise a note)

Sums alone prove nothing against someone who edits results.json and writes
new sums, so verify also judges every trace again with the contract checker
and compares what it finds with results.json (violations with their evidence
seqs, and outcomes that a trace contradicts), and checks the signature over
SHA256SUMS (:mod:`harness.certify.signing`). An empty problem list means the
bundle is whole, unaltered and consistent with its own traces.

Malformed documents (results.json that is not what a bundle writes, a
SHA256SUMS that is not UTF-8, an archive past its bounds) are bad input:
:class:`~harness.errors.BundleError`, exit 2.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.certify.bundle import ENVIRONMENT, REQUIRED_FILES, RESULTS, SUMS
from harness.certify.documents import (
    MAX_JSON_BYTES,
    DocumentError,
    check_environment,
    check_results,
    parse_json,
)
from harness.certify.environment import REQUIRED_KEYS, sha256_file
from harness.certify.signing import SIGNATURE, SignatureCheck, check_signature
from harness.certify.tree import scan, unpack
from harness.errors import BundleError, InputError
from harness.tomlfile import clip
from harness.verdict import OUTCOMES, RED

_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
MAX_SUMS_BYTES = 16 << 20
_GREEN = frozenset({"passed", "flaky"})


@dataclass
class Verification:
    """What ``certify verify`` found: ``problems`` empty means the bundle is sound.

    ``signature`` says whether SHA256SUMS is signed and by whom; ``rejudged``
    counts the traces judged again.
    """

    bundle: str
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    signature: SignatureCheck | None = None
    rejudged: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _read_sums(directory: Path, problems: list[str]) -> dict[str, str]:
    path = directory / SUMS
    if not path.is_file() or path.is_symlink():
        return {}
    if path.stat().st_size > MAX_SUMS_BYTES:
        raise BundleError(f"{SUMS}: expected at most {MAX_SUMS_BYTES} bytes")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = raw.count(b"\n", 0, exc.start) + 1
        raise BundleError(f"{SUMS}:{at}: expected UTF-8 text, found byte "
                          f"0x{raw[exc.start]:02X}") from None
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        found = _SUM_LINE.match(line)
        if not found:
            problems.append(f"malformed: {SUMS}:{number} (expected '<sha256>  <path>')")
            continue
        sums[found.group(2)] = found.group(1)
    return sums


def _load_json(directory: Path, name: str) -> Any:
    path = directory / name
    if not path.is_file() or path.is_symlink():
        return None
    if path.stat().st_size > MAX_JSON_BYTES:
        raise BundleError(f"{name}: expected at most {MAX_JSON_BYTES} bytes")
    try:
        return parse_json(path.read_bytes(), name)
    except DocumentError as exc:
        raise BundleError(str(exc)) from None


def _referenced_traces(results: dict[str, Any]) -> dict[str, str]:
    """Trace path -> which item names it, from results.json."""
    refs: dict[str, str] = {}
    for item in results["items"]:
        who = item["id"]
        paths = [item.get("trace")] + [a.get("trace") for a in item.get("attempts", [])]
        for path in paths:
            if isinstance(path, str) and path not in refs:
                refs[path] = who
    return refs


def _violation_key(v: dict[str, Any]) -> tuple[str, str, str, tuple[int, ...]]:
    return (str(v.get("rule")), str(v.get("severity")), str(v.get("message")),
            tuple(v.get("events") or ()))


def _judge(directory: Path, rel: str, rules: list[str] | None) -> tuple[Any, str | None]:
    """The checker's result for one trace of the bundle, or the reason it could not judge."""
    from harness.contract.checker import check_file

    path = directory / rel
    try:
        return check_file(path, rules), None
    except InputError as exc:
        text = str(exc)
        prefix = str(path)
        return None, rel + text[len(prefix):] if text.startswith(prefix) else text


def _rejudge(directory: Path, results: dict[str, Any], present: set[str],
             result: Verification) -> None:
    """Judge every trace again and compare with what results.json says of it."""
    problems = result.problems
    judged: dict[tuple[str, tuple[str, ...] | None], Any] = {}

    def judge(rel: str, rules: list[str] | None) -> Any:
        key = (rel, None if rules is None else tuple(rules))
        if key not in judged:
            check, why = _judge(directory, rel, rules)
            result.rejudged += 1
            if why is not None:
                problems.append(f"rejudged: {why}")
            judged[key] = check
        return judged[key]

    for item in results["items"]:
        who = item["id"]
        rules = item.get("rules")
        expected = set(item.get("expected_violations") or ())
        final = item.get("trace")
        if isinstance(final, str) and final in present:
            check = judge(final, rules)
            if check is not None:
                recorded = sorted(_violation_key(v) for v in item.get("violations") or ())
                found = sorted(_violation_key(v.as_json()) for v in check.violations)
                if recorded != found:
                    problems.append(
                        f"rejudged: {who}: results.json records violations "
                        f"{sorted({r[0] for r in recorded}) or 'none'}, its trace {final} "
                        f"shows {sorted({f[0] for f in found}) or 'none'} "
                        "(rule, message or evidence differ)")
                fired = {v.rule for v in check.violations}
                if item["outcome"] in _GREEN and (fired != expected or item.get("failures")):
                    broke = sorted(fired - expected) or sorted(expected - fired)
                    problems.append(
                        f"rejudged: {who}: results.json says {item['outcome']}, but its trace "
                        f"{final} {'breaks' if fired - expected else 'does not break'} "
                        f"{', '.join(broke) or 'as recorded'}")
        for attempt in item.get("attempts") or ():
            rel = attempt.get("trace")
            if attempt.get("outcome") != "passed" or not isinstance(rel, str) or rel == final:
                continue
            if rel not in present:
                continue
            check = judge(rel, rules)
            if check is not None:
                fired = {v.rule for v in check.violations}
                if fired != expected:
                    problems.append(f"rejudged: {who}: attempt {attempt.get('attempt')} is "
                                    f"recorded as passed, but its trace {rel} breaks "
                                    f"{', '.join(sorted(fired - expected)) or 'nothing expected'}")


def _summary(results: dict[str, Any], problems: list[str]) -> None:
    counts = dict.fromkeys(OUTCOMES, 0)
    for item in results["items"]:
        counts[item["outcome"]] += 1
    said = {k: v for k, v in results["summary"].items() if v}
    if said != {k: v for k, v in counts.items() if v}:
        problems.append(f"changed: {RESULTS} summary {said} does not count its items "
                        f"{ {k: v for k, v in counts.items() if v} }")
    red = any(item["outcome"] in RED for item in results["items"])
    if results["ok"] is red:
        problems.append(f'changed: {RESULTS} says "ok": {str(results["ok"]).lower()}, '
                        f"but its items are {'red' if red else 'green'}")
    if results.get("complete") is not True:
        why = results.get("interrupted") or "the run did not finish"
        problems.append(f"incomplete: {RESULTS} is not marked complete ({str(why)[:120]}); "
                        "an interrupted run is no certification")


def verify_directory(
    directory: Path, shown: str | None = None, *, trusted: list[str] | None = None
) -> Verification:
    """Check links, sums, required files, environment keys, the signature, and every
    trace results.json names, judged again."""
    result = Verification(shown or str(directory))
    problems = result.problems
    tree = scan(directory)
    problems.extend(f"refused: {what}; a bundle holds regular files only"
                    for what in tree.refused)
    refused = {r.split(" (")[0] for r in tree.refused}
    present = {rel for rel in tree.files if rel not in (SUMS, SIGNATURE)}
    sums = _read_sums(directory, problems) if SUMS in tree.files else {}
    missing: dict[str, list[str]] = {}
    for name in REQUIRED_FILES:
        if name not in tree.files and name not in refused:
            missing.setdefault(name, []).append("a bundle always has it")
    for rel, digest in sums.items():
        if rel not in present:
            if rel not in refused:
                missing.setdefault(rel, []).append(f"listed in {SUMS}")
            continue
        result.checked += 1
        if sha256_file(directory / rel) != digest:
            problems.append(f"changed: {rel} (SHA-256 differs from {SUMS})")
    if SUMS in tree.files:
        problems.extend(f"unlisted: {clip(rel)} (not in {SUMS})"
                        for rel in sorted(present - set(sums)))
        result.signature = check_signature(directory / SUMS, trusted)
        sig = result.signature
        if sig.state == "bad" or (trusted is not None and sig.state != "signed-trusted"):
            problems.append(f"{'unsigned' if sig.state == 'unsigned' else 'signature'}: "
                            f"{sig.detail}")
    raw_results = _load_json(directory, RESULTS) if RESULTS in tree.files else None
    if raw_results is not None:
        try:
            results = check_results(raw_results, RESULTS)
        except DocumentError as exc:
            raise BundleError(str(exc)) from None
        for rel, who in _referenced_traces(results).items():
            if rel not in present and rel not in refused:
                missing.setdefault(rel, []).append(f"trace of {who} in {RESULTS}")
        _summary(results, problems)
        _rejudge(directory, results, present, result)
    raw_env = _load_json(directory, ENVIRONMENT) if ENVIRONMENT in tree.files else None
    if raw_env is not None:
        try:
            environment = check_environment(raw_env, ENVIRONMENT)
        except DocumentError as exc:
            raise BundleError(str(exc)) from None
        problems.extend(f'incomplete: {ENVIRONMENT} has no "{key}"'
                        for key in REQUIRED_KEYS if key not in environment)
    problems.extend(f"missing: {clip(rel)} ({'; '.join(why)})"
                    for rel, why in sorted(missing.items()))
    return result


def verify(path: str | Path, *, trusted: list[str] | None = None) -> Verification:
    """Verify a bundle directory or a DIR.tar.gz archive.

    ``trusted`` is the list of public keys whose signature is required
    (:func:`harness.certify.signing.read_trusted`); without it a signature is
    checked for validity only and an unsigned bundle is reported as such.
    Raises :class:`BundleError` when ``path`` is neither or is malformed (bad input).
    """
    target = Path(path)
    if target.is_symlink():
        raise BundleError(f"{target}: a symbolic link; name the bundle itself")
    if target.is_dir():
        try:
            return verify_directory(target, trusted=trusted)
        except BundleError as exc:
            raise _named(exc, target) from None
    if not target.is_file():
        raise BundleError(f"{target}: no such bundle directory or archive")
    with tempfile.TemporaryDirectory(prefix="harness-verify-") as tmp:
        base = unpack(target, Path(tmp))
        try:
            found = verify_directory(base, shown=str(target), trusted=trusted)
        except BundleError as exc:
            raise _named(exc, target, str(base)) from None
        prefix = str(base)
        found.problems = [p.replace(prefix + "/", "") for p in found.problems]
        return found


def _named(exc: BundleError, bundle: Path, inner: str | None = None) -> BundleError:
    """``exc`` with its message naming the bundle first (``BUNDLE: results.json: ...``)."""
    text = str(exc)
    if inner is not None:
        text = text.replace(inner + "/", "").replace(inner, "")
    if text.startswith(str(bundle)):
        return BundleError(text)
    return BundleError(f"{bundle}: {text}")
