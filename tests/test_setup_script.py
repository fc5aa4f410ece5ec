"""``ci/setup.sh --core`` (what ``ci/sim.sh`` runs) on a copy of the repository:
it leaves ``.venv/bin/pytest`` and ``.venv/bin/callout-harness`` as the README
says, and installing the package prints no packaging deprecation banner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_core_setup_leaves_pytest_and_no_deprecation_banner(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(REPO, copy, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "harness-out", "__pycache__", ".mypy_cache", ".ruff_cache",
        ".pytest_cache", "*.egg-info", "build", "nightly-out"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    # not as root through apt: this machine's python3 and its venv module are used as they are
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    done = subprocess.run(["bash", "ci/setup.sh", "--core"], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-2000:]
    assert (copy / ".venv" / "bin" / "pytest").is_file()
    assert (copy / ".venv" / "bin" / "callout-harness").is_file()
    assert "project.license" not in output and "deprecated" not in output.lower(), output
