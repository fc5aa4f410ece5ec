"""Pack the harness into a zipapp that a guest's python3 can run.

Only what the engine model and the scenario runner need goes in: no libvirt,
WinRM or SSH clients, no pytest plugin. The archive is built once per
content hash and cached in the output directory.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipapp
from pathlib import Path

import harness

# Subpackages and modules a guest never imports (they need clients a guest lacks).
_LEAVE_OUT = ("vm", "guest", "certify", "history", "commands", "plugin.py", "plugin_ci.py",
              "cli.py", "report")


def _sources() -> list[Path]:
    root = Path(harness.__file__).parent
    files = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in _LEAVE_OUT or "__pycache__" in rel.parts:
            continue
        files.append(path)
    return files


def build_zipapp(out_dir: Path) -> Path:
    """The harness as ``harness-<hash>.pyz`` in ``out_dir`` (built if missing)."""
    root = Path(harness.__file__).parent
    files = _sources()
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    target = out_dir / f"harness-{digest.hexdigest()[:12]}.pyz"
    if target.is_file():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pyz-") as tmp:
        stage = Path(tmp)
        for path in files:
            dest = stage / "harness" / path.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        (stage / "__main__.py").write_text(
            "import sys\nfrom harness.targets.guest_run import main\nsys.exit(main())\n"
        )
        partial = target.with_suffix(".partial")
        zipapp.create_archive(stage, partial, interpreter="/usr/bin/env python3")
        partial.replace(target)
    return target
