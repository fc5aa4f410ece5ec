"""Headless Chromium screenshots for report tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(page: Path, out: Path, size: tuple[int, int] = (1300, 900)) -> Path:
    """Render ``page`` (a local file) in headless Chromium and save a PNG."""
    browser = find_chromium()
    if browser is None:
        raise RuntimeError("chromium is not installed")
    profile = out.parent / f"{out.stem}-profile"
    cmd = [
        browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
        f"--screenshot={out}", f"--window-size={size[0]},{size[1]}", page.resolve().as_uri(),
    ]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    if not out.is_file():
        raise RuntimeError(f"chromium wrote no screenshot for {page}")
    return out


def dump_dom(page: Path, workdir: Path) -> str:
    """The DOM as Chromium parsed it (proves the page parses as HTML)."""
    browser = find_chromium()
    if browser is None:
        raise RuntimeError("chromium is not installed")
    cmd = [
        browser, *CHROMIUM_FLAGS, f"--user-data-dir={workdir / 'dom-profile'}", "--dump-dom",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    return proc.stdout
