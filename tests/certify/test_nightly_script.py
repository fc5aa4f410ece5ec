"""``ci/nightly.sh`` on the engine model: bundle, history and trend page, night after night."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.certify.helpers import needs_sim

ROOT = Path(__file__).resolve().parents[2]


@needs_sim
def test_two_nights_on_the_model_make_a_history(tmp_path: Path) -> None:
    out = tmp_path / "nightly"
    env = {**os.environ, "HARNESS_OUT": str(out), "HARNESS_WORKERS": "2",
           "GITHUB_ENV": str(tmp_path / "github.env")}
    env.pop("HARNESS_POOL", None)
    for _night in range(2):
        proc = subprocess.run(["bash", str(ROOT / "ci" / "nightly.sh")], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600, check=False)
        # Red or green, the night is recorded; 2 or more would be a broken run.
        assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "OK (" in proc.stdout  # certify verify of the archive
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 2
    latest = out / "latest"
    assert latest.resolve() == runs[-1].resolve()
    for name in ("junit.xml", "bundle/results.json", "bundle/report.html", "bundle.tar.gz"):
        assert (latest / name).is_file(), name
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert len(history) == 2
    assert history[0]["items"] and all(i["os_build"] == "engine-model"
                                       for i in history[0]["items"])
    page = (out / "trends.html").read_text()
    assert "no driver (engine model callout) · OS build engine-model" in page
    exported = (tmp_path / "github.env").read_text().splitlines()
    assert f"HARNESS_RUN_DIR={runs[-1].resolve()}" in exported
    assert f"HARNESS_TRENDS={out.resolve()}/trends.html" in exported
