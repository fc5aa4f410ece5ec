"""``pytest --certify DIR --certify-key KEY`` signs the bundle; verify checks the signer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.cli import main

CATALOG = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.mark.skipif(shutil.which("ssh-keygen") is None,
                    reason="ssh-keygen is not installed (Debian package 'openssh-client')")
def test_pytest_signs_the_bundle_it_writes(pytester: pytest.Pytester, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "signer"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (pytester.path / "scenarios").mkdir()
    shutil.copy(CATALOG / "connect-pend-permit.toml", pytester.path / "scenarios")
    bundle = pytester.path / "bundle"
    result = pytester.runpytest("scenarios", "--certify", str(bundle), "--certify-key", str(key),
                                "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert (bundle / "SHA256SUMS.sig").is_file()
    capsys.readouterr()
    assert main(["certify", "verify", str(bundle), "--trusted", f"{key}.pub"]) == 0
    assert "signed by" in capsys.readouterr().out


def test_a_certify_key_without_certify_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--certify-key", "nowhere", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--certify-key signs a bundle: it needs --certify DIR*"])
