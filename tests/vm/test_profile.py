"""VM profiles: the shipped ones load; each kind of mistake is one line that
names the file, the line and the key, what was expected and what was found."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ProfileError
from harness.vm.profile import available_profiles, find_profile, load_profile
from tests.support.vm_guest import FIXTURES, REPO

GOOD = """\
name = "lab"
os = "windows"
uri = "qemu:///system"
template = "windows.xml"

[machine]
domain_type = "kvm"
memory_mib = 4096
vcpus = 2
firmware = "uefi"
uefi_loader = "/usr/share/OVMF/OVMF_CODE_4M.fd"
uefi_vars_template = "/usr/share/OVMF/OVMF_VARS_4M.fd"
tpm = true
disk_bus = "sata"
nic_model = "e1000e"

[image]
base = "/images/win11.qcow2"

[network]
mode = "user"

[network.forwards]
winrm = 5986

[transport.winrm]
scheme = "https"
host = "127.0.0.1"
forward = "winrm"
username_env = "WINRM_USER"
password_env = "WINRM_PASSWORD"

[snapshots]
clean = "clean"
golden = "golden"
"""


@pytest.fixture
def profile_dir(tmp_path: Path) -> Path:
    (tmp_path / "templates").symlink_to(FIXTURES / "templates")
    return tmp_path


def write(profile_dir: Path, text: str, name: str = "lab") -> Path:
    path = profile_dir / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLOUT_HARNESS_IMAGES", "/images")
    monkeypatch.setenv("CALLOUT_HARNESS_GUEST", "/guest")
    monkeypatch.delenv("CALLOUT_HARNESS_NOT_SET", raising=False)


@pytest.mark.parametrize("name", ["win11", "win10", "server2022", "linux-tcg", "linux-tcg-uefi"])
def test_shipped_profiles_load(name: str) -> None:
    profile = find_profile(name, [FIXTURES])
    assert profile.name == name
    assert profile.template.is_file()
    assert profile.snapshots.clean != profile.snapshots.golden
    for transport in profile.transports.values():
        assert transport.username_env.isupper()  # names of variables, not values


def test_win11_has_uefi_without_secure_boot_and_a_tpm() -> None:
    profile = find_profile("win11", [FIXTURES])
    assert profile.machine.firmware == "uefi" and not profile.machine.secure_boot
    assert profile.machine.tpm
    assert profile.image.base == Path("/images/win11-base.qcow2")


def test_available_profiles_lists_the_fixtures() -> None:
    assert {"win11", "win10", "server2022", "linux-tcg", "linux-tcg-uefi"} <= set(
        available_profiles([FIXTURES]))


def test_a_good_profile_loads(profile_dir: Path) -> None:
    profile = load_profile(write(profile_dir, GOOD))
    assert profile.primary_transport.kind == "winrm"
    assert profile.network.forward("winrm") is not None


MISTAKES = [
    # (id, old text, new text, key in message, words in message)
    ("unknown-top-key", 'os = "windows"', 'os = "windows"\ncolour = "red"', "colour",
     "unknown key"),
    ("unknown-nested-key", "vcpus = 2", "vcpus = 2\nmemory = 4096", "machine.memory",
     "unknown key"),
    ("wrong-type", "memory_mib = 4096", 'memory_mib = "4G"', "machine.memory_mib",
     "expected an integer >= 128 and <= 1048576, found string '4G'"),
    ("bad-choice", 'firmware = "uefi"', 'firmware = "coreboot"', "machine.firmware",
     "expected one of 'bios', 'uefi', found string 'coreboot'"),
    ("secure-boot-on", "tpm = true", "tpm = true\nsecure_boot = true", "machine.secure_boot",
     "test-signed drivers need it off"),
    ("unknown-forward", 'forward = "winrm"', 'forward = "rdp"', "transport.winrm.forward",
     "expected one of winrm, found string 'rdp'"),
    ("forward-on-lan", 'host = "127.0.0.1"', 'host = "0.0.0.0"', "transport.winrm.host",
     "expected '127.0.0.1' with user-mode networking"),
    ("default-network", 'mode = "user"\n\n[network.forwards]\nwinrm = 5986',
     'mode = "libvirt"\nname = "default"', "network.name", "not 'default'"),
    ("missing-table", '[snapshots]\nclean = "clean"\ngolden = "golden"\n', "", "snapshots",
     "expected a table, found nothing"),
    ("unset-env-var", 'base = "/images/win11.qcow2"', 'base = "${CALLOUT_HARNESS_NOT_SET}/w.qcow2"',
     "image.base", "expected environment variable CALLOUT_HARNESS_NOT_SET to be set"),
    ("tpm-without-uefi", 'firmware = "uefi"', 'firmware = "bios"', "machine.tpm",
     "a TPM needs UEFI"),
    ("name-not-file", 'name = "lab"', 'name = "other"', "name", "the file's name"),
    ("bad-snapshot-kind", 'template = "windows.xml"',
     'template = "windows.xml"\nsnapshot = "external"', "snapshot",
     "expected one of 'auto', 'internal', 'saved-state', found string 'external'"),
    ("duplicate-snapshot", 'golden = "golden"', 'golden = "clean"', "snapshots.golden",
     "different from 'clean'"),
]


@pytest.mark.parametrize(("old", "new", "key", "words"),
                         [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_profile_mistakes_are_one_line_errors(
    profile_dir: Path, old: str, new: str, key: str, words: str
) -> None:
    assert old in GOOD
    path = write(profile_dir, GOOD.replace(old, new))
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:"), message
    assert f": {key}: " in message, message
    assert words in message, message
    if key == "snapshots":
        return  # a missing table has no line to point at
    assert caught.value.line is not None, message
    wanted = path.read_text().splitlines()[caught.value.line - 1]
    leaf = key.rpartition(".")[2]
    assert leaf in wanted or wanted.startswith("["), (message, wanted)


def test_a_pasted_secret_is_not_echoed(profile_dir: Path) -> None:
    path = write(profile_dir, GOOD.replace('"WINRM_PASSWORD"', '"hunter2!"'))
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert "transport.winrm.password_env" in message
    assert "hunter2" not in message
    assert caught.value.line == GOOD.splitlines().index('password_env = "WINRM_PASSWORD"') + 1


def test_toml_syntax_error_names_the_line(profile_dir: Path) -> None:
    path = write(profile_dir, GOOD.replace("vcpus = 2", "vcpus = = 2"))
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.line == 9
    assert str(caught.value).startswith(f"{path}:9: not valid TOML")


def test_find_profile_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"expected win12\.toml in .*, found no such file"):
        find_profile("win12", [tmp_path, FIXTURES])


def test_profiles_and_pools_load_without_libvirt(tmp_path: Path) -> None:
    """The profile and pool modules never import libvirt; connecting without
    it names the pip extra."""
    script = f"""
import sys
sys.modules["libvirt"] = None  # any "import libvirt" now raises ImportError
sys.path.insert(0, {str(REPO)!r})
import harness.vm.profile, harness.vm.pool, harness.vm.domainxml, harness.vm.cli
from harness.errors import VmError
from harness.vm.connection import open_connection
try:
    open_connection("test:///default")
except VmError as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert "pip install 'callout-harness[vm]'" in done.stdout, done.stderr


def test_a_profile_chooses_winrm_auth_and_plain_http_only_on_purpose(profile_dir: Path) -> None:
    from harness.guest.settings import settings_from_profile

    basic_http = GOOD.replace('scheme = "https"', 'scheme = "http"\nauth = "basic"')
    profile = load_profile(write(profile_dir, basic_http))
    transport = profile.transports["winrm"]
    assert transport.auth == "basic" and not transport.insecure_http
    with pytest.raises(ProfileError) as refused:
        settings_from_profile(transport, 5985, source="lab.toml")
    assert "set insecure_http = true to allow it" in str(refused.value)
    allowed = load_profile(write(profile_dir, basic_http.replace(
        'auth = "basic"', 'auth = "basic"\ninsecure_http = true')))
    settings = settings_from_profile(allowed.transports["winrm"], 5985, source="lab.toml")
    assert settings.auth == "basic" and not settings.https  # type: ignore[union-attr]
    with pytest.raises(ProfileError) as bad:
        load_profile(write(profile_dir, GOOD.replace('scheme = "https"',
                                                     'scheme = "https"\nauth = "digest"')))
    assert "transport.winrm.auth" in str(bad.value) and "'ntlm'" in str(bad.value)
