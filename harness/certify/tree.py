"""The files of a bundle: regular files only, within bounds, directory or archive.

A bundle holds regular files and directories and nothing else. A symbolic or
hard link (a trace pointing at ``/etc/passwd``, ``traces/etc -> /etc``), a
device, a FIFO or a socket is refused, never followed or skipped in silence.

Bounds (the same for a directory and an archive, checked from the archive's
member headers before a byte of a member is written):

- at most :data:`MAX_MEMBERS` entries,
- at most :data:`MAX_TOTAL_BYTES` bytes in all, and
- for an archive, at most :data:`MAX_RATIO` times its own compressed size.
"""

from __future__ import annotations

import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from harness.errors import BundleError

MAX_MEMBERS = 20_000
MAX_TOTAL_BYTES = 2 << 30
MAX_RATIO = 200
#: Below this many bytes the ratio is not checked (a tiny archive of tiny files).
RATIO_FLOOR_BYTES = 16 << 20
_CHUNK = 1 << 20


@dataclass
class Tree:
    """The regular files under a bundle root (sorted posix paths) and what was refused."""

    files: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def scan(directory: Path) -> Tree:
    """Walk ``directory`` without following links; raise :class:`BundleError` past a bound."""
    tree = Tree()
    total = count = 0
    pending = [Path(directory)]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise BundleError(f"{folder}: cannot list ({exc.strerror or exc})") from None
        for entry in entries:
            count += 1
            if count > MAX_MEMBERS:
                raise BundleError(f"{directory}: more than {MAX_MEMBERS} entries; "
                                  "a bundle holds fewer")
            rel = Path(entry.path).relative_to(directory).as_posix()
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                pending.append(Path(entry.path))
            elif stat.S_ISREG(info.st_mode):
                if info.st_nlink > 1:
                    tree.refused.append(f"{rel} (a hard link)")
                    continue
                total += info.st_size
                if total > MAX_TOTAL_BYTES:
                    raise BundleError(f"{directory}: more than {MAX_TOTAL_BYTES} bytes; "
                                      "a bundle holds less")
                tree.files.append(rel)
            else:
                tree.refused.append(f"{rel} ({_kind(info.st_mode)})")
    tree.files.sort()
    tree.refused.sort()
    return tree


def _member_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a FIFO"
    return "not a regular file"


def _copy(source: IO[bytes], out: Path, size: int) -> None:
    left = size
    with out.open("xb") as sink:
        while left > 0:
            block = source.read(min(_CHUNK, left))
            if not block:
                raise BundleError(f"{out.name}: archive member ends early")
            sink.write(block)
            left -= len(block)


def unpack(archive: Path, into: Path) -> Path:
    """Stream ``archive`` (tar, optionally compressed) into ``into``, checking each member
    header against the bounds before writing it; returns the bundle root inside ``into``.

    Links, devices, FIFOs and unsafe paths raise :class:`BundleError` (bad input).
    """
    compressed = max(archive.stat().st_size, 1)
    total = count = 0
    roots: set[str] = set()
    try:
        with tarfile.open(archive, "r|*") as tar:
            for member in tar:
                count += 1
                if count > MAX_MEMBERS:
                    raise BundleError(f"{archive}: more than {MAX_MEMBERS} members; "
                                      "a bundle holds fewer")
                name = PurePosixPath(member.name)
                if name.is_absolute() or ".." in name.parts or not name.parts:
                    raise BundleError(f"{archive}: unsafe path in archive: {member.name[:200]}")
                if not (member.isfile() or member.isdir()):
                    raise BundleError(f"{archive}: {member.name[:200]}: {_member_kind(member)};"
                                      " a bundle holds regular files only")
                roots.add(name.parts[0])
                target = into.joinpath(*name.parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                total += member.size
                if total > MAX_TOTAL_BYTES:
                    raise BundleError(f"{archive}: members add up to more than "
                                      f"{MAX_TOTAL_BYTES} bytes; a bundle holds less")
                if total > RATIO_FLOOR_BYTES and total > MAX_RATIO * compressed:
                    raise BundleError(f"{archive}: members add up to more than {MAX_RATIO} "
                                      "times the archive's size (an archive bomb?)")
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - isfile() members have data
                    continue
                try:
                    _copy(source, target, member.size)
                except FileExistsError:
                    raise BundleError(f"{archive}: {member.name[:200]}: listed twice") from None
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise BundleError(f"{archive}: not a readable bundle archive ({exc})") from None
    if len(roots) == 1:
        base = into / roots.pop()
        if base.is_dir():
            return base
    return into
