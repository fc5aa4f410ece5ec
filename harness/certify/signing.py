"""Signing a bundle's SHA256SUMS with an SSH key, and checking the signature.

The signature is an OpenSSH signature (the SSHSIG format of OpenSSH's
PROTOCOL.sshsig, the one ``git`` uses for SSH-signed commits) made and checked
by ``ssh-keygen -Y sign`` / ``-Y verify`` under the namespace
:data:`NAMESPACE`. It sits beside the sums as ``SHA256SUMS.sig``; since the
sums cover every other file, the signature covers the whole bundle.

Why SSH signatures: labs already hold and rotate SSH keys (ssh-agent,
hardware FIDO keys whose secret never leaves the token), a trust list is one
public key per line as in ``authorized_keys``, the format is an open,
documented standard, and signing and checking are done by OpenSSH itself,
an implementation independent of this project, with no new Python dependency.

A trusted-keys file (``certify verify --trusted FILE``) holds OpenSSH public
keys, one per line (``ssh-ed25519 AAAA... comment``; ``#`` comments and blank
lines are ignored). At most :data:`MAX_TRUSTED_KEYS` keys.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BundleError, UsageError

NAMESPACE = "callout-harness-bundle"
SIGNATURE = "SHA256SUMS.sig"
PRINCIPAL = "callout-harness-signer"
MAX_TRUSTED_KEYS = 1000
MAX_TRUSTED_BYTES = 1 << 20
MAX_SIGNATURE_BYTES = 64 << 10
_TIMEOUT_S = 60
_KEY_LINE = re.compile(r"^(?:[a-z0-9@.-]+ )?((?:ssh|ecdsa|sk)-[A-Za-z0-9@.-]+) ([A-Za-z0-9+/=]+)")
_FINGERPRINT = re.compile(r"with ([A-Z0-9-]+) key (SHA256:[A-Za-z0-9+/=]+)")


@dataclass(frozen=True)
class SignatureCheck:
    """What the signature check found. ``state`` is signed-trusted, signed-untrusted
    (a valid signature, no trust list given), unsigned, or bad."""

    state: str
    detail: str


def _ssh_keygen() -> str:
    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise UsageError("signing and checking bundle signatures needs ssh-keygen "
                         "(Debian: apt-get install openssh-client)")
    return exe


def check_sign_key(key: Path) -> Path:
    """Raise :class:`UsageError` unless ``key`` is a readable private key file (checked
    before a run starts). The key's content is never echoed."""
    key = Path(key)
    if not key.is_file():
        raise UsageError(f"--certify-key {key}: no such key file")
    try:
        with key.open("rb") as stream:
            stream.read(1)
    except OSError as exc:
        raise UsageError(f"--certify-key {key}: cannot read ({exc.strerror or exc})") from None
    _ssh_keygen()
    return key


def sign_sums(sums: Path, key: Path) -> Path:
    """Write ``SHA256SUMS.sig`` beside ``sums`` with the private ``key``."""
    exe = _ssh_keygen()
    out = sums.with_name(SIGNATURE)
    made = Path(f"{sums}.sig")  # where ssh-keygen puts it
    made.unlink(missing_ok=True)
    try:
        proc = subprocess.run(
            [exe, "-Y", "sign", "-q", "-f", str(key), "-n", NAMESPACE, str(sums)],
            capture_output=True, text=True, timeout=_TIMEOUT_S, check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise BundleError(f"signing {sums.name} with {key}: ssh-keygen failed "
                          f"({exc.__class__.__name__})") from None
    if proc.returncode != 0 or not made.is_file():
        # ssh-keygen's message names the file, never the key material.
        reason = (proc.stderr or "no signature written").strip().splitlines()
        raise BundleError(f"signing {sums.name} with {key}: "
                          f"{reason[-1][:200] if reason else 'failed'}")
    if made != out:
        made.replace(out)
    return out


def read_trusted(path: Path) -> list[str]:
    """The public keys of a trusted-keys file, as ``TYPE BASE64`` lines."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_TRUSTED_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"--trusted {path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_TRUSTED_BYTES:
        raise UsageError(f"--trusted {path}: expected at most {MAX_TRUSTED_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--trusted {path}: expected UTF-8 text") from None
    keys: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        found = _KEY_LINE.match(line)
        if not found:
            # Never echo the line: it may be a private key pasted by mistake.
            raise UsageError(f"--trusted {path}:{number}: expected an OpenSSH public key "
                             "('ssh-ed25519 AAAA... comment'), found something else")
        keys.append(f"{found.group(1)} {found.group(2)}")
        if len(keys) > MAX_TRUSTED_KEYS:
            raise UsageError(f"--trusted {path}: expected at most {MAX_TRUSTED_KEYS} keys")
    if not keys:
        raise UsageError(f"--trusted {path}: expected at least one public key, found none")
    return keys


def check_signature(sums: Path, trusted: list[str] | None) -> SignatureCheck:
    """Check ``SHA256SUMS.sig`` over ``sums``: against ``trusted`` keys when given,
    otherwise only that it is a valid signature of these sums."""
    sig = sums.with_name(SIGNATURE)
    if not sig.exists():
        return SignatureCheck("unsigned", f"no {SIGNATURE}")
    if sig.is_symlink() or not sig.is_file() or sig.stat().st_size > MAX_SIGNATURE_BYTES:
        return SignatureCheck("bad", f"{SIGNATURE} is not a regular signature file")
    exe = _ssh_keygen()
    with tempfile.TemporaryDirectory(prefix="harness-sig-") as tmp:
        if trusted is not None:
            allowed = Path(tmp) / "allowed_signers"
            allowed.write_text("".join(f'{PRINCIPAL} namespaces="{NAMESPACE}" {k}\n'
                                       for k in trusted), encoding="utf-8")
            command = [exe, "-Y", "verify", "-f", str(allowed), "-I", PRINCIPAL,
                       "-n", NAMESPACE, "-s", str(sig)]
        else:
            command = [exe, "-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig)]
        try:
            with sums.open("rb") as data:
                proc = subprocess.run(command, stdin=data, capture_output=True, text=True,
                                      timeout=_TIMEOUT_S, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            return SignatureCheck("bad", f"ssh-keygen failed ({exc.__class__.__name__})")
    said = f"{proc.stdout}\n{proc.stderr}"
    found = _FINGERPRINT.search(said)
    who = f"{found.group(1)} key {found.group(2)}" if found else "an unknown key"
    if proc.returncode != 0:
        if trusted is not None:
            alone = check_signature(sums, None)  # a valid signature by another key?
            if alone.state == "signed-untrusted":
                signer = alone.detail.split(" (")[0]
                return SignatureCheck("bad", f"{signer}, which --trusted does not list")
        return SignatureCheck("bad", f"{SIGNATURE} does not verify over {sums.name}")
    if trusted is None:
        return SignatureCheck("signed-untrusted", f"signed by {who} (not checked against "
                                                  "trusted keys: pass --trusted FILE)")
    return SignatureCheck("signed-trusted", f"signed by trusted {who}")
