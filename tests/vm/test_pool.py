"""Pool files: slots across hypervisors, validated with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import PoolError, ProfileError
from harness.vm.pool import load_pool, slot_order
from tests.support.vm_guest import FIXTURES

POOL = """\
[pool]
lease_ttl_s = 7200
overlay_dir = "/var/lib/callout-harness/overlays"

[[slot]]
name = "ch-win11-a"
uri = "qemu:///system"
profile = "win11"

[[slot]]
name = "ch-win11-b"
uri = "qemu+ssh://ci@hv2/system"
profile = "win11"
overlay_dir = "/srv/overlays"

[[slot]]
name = "ch-win10-a"
uri = "qemu+ssh://ci@hv2/system"
profile = "win10"
"""


@pytest.fixture(autouse=True)
def _images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLOUT_HARNESS_IMAGES", "/images")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(text)
    return path


def test_pool_spans_hypervisors(tmp_path: Path) -> None:
    pool = load_pool(write(tmp_path, POOL), [FIXTURES])
    assert [s.name for s in pool.slots] == ["ch-win11-a", "ch-win11-b", "ch-win10-a"]
    assert pool.uris == ["qemu:///system", "qemu+ssh://ci@hv2/system"]
    assert pool.slots[1].overlay_dir == Path("/srv/overlays")
    assert pool.slots[0].overlay_dir == Path("/var/lib/callout-harness/overlays")
    assert pool.slots[2].profile.name == "win10"
    assert pool.lease_ttl_s == 7200


def test_workers_start_at_different_slots(tmp_path: Path) -> None:
    slots = load_pool(write(tmp_path, POOL), [FIXTURES]).slots
    assert slot_order(slots, 0)[0].name == "ch-win11-a"
    assert slot_order(slots, 1)[0].name == "ch-win11-b"
    assert [s.name for s in slot_order(slots, 5)] == ["ch-win10-a", "ch-win11-a", "ch-win11-b"]


MISTAKES = [
    ("duplicate-slot", 'name = "ch-win11-b"', 'name = "ch-win11-a"', "slot[1].name",
     "expected a name not used by slot[0]", 11),
    ("unknown-profile", 'profile = "win10"', 'profile = "win12"', "slot[2].profile",
     "found string 'win12'", 19),
    ("ttl-too-short", "lease_ttl_s = 7200", "lease_ttl_s = 5", "pool.lease_ttl_s",
     "expected an integer >= 60, found number 5", 2),
    ("bad-uri", 'uri = "qemu:///system"', 'uri = "hv1"', "slot[0].uri",
     "expected a libvirt URI, found string 'hv1'", 7),
    ("unknown-slot-key", 'profile = "win11"\n\n[[slot]]\nname = "ch-win11-b"',
     'profile = "win11"\ncpus = 4\n\n[[slot]]\nname = "ch-win11-b"', "slot[0].cpus",
     "unknown key", 9),
    ("bad-slot-name", 'name = "ch-win10-a"', 'name = "ch win10 a"', "slot[2].name",
     "expected a domain name", 17),
    ("missing-overlay-dir", 'overlay_dir = "/var/lib/callout-harness/overlays"\n', "",
     "pool.overlay_dir", "expected a path, found nothing", 1),
]


@pytest.mark.parametrize(("old", "new", "key", "words", "line"),
                         [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_pool_mistakes_are_one_line_errors(
    tmp_path: Path, old: str, new: str, key: str, words: str, line: int
) -> None:
    assert old in POOL
    path = write(tmp_path, POOL.replace(old, new, 1))
    with pytest.raises(PoolError) as caught:
        load_pool(path, [FIXTURES])
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: {key}: "), message
    assert words in message, message


def test_a_broken_profile_is_reported_against_the_profile_file(tmp_path: Path) -> None:
    (tmp_path / "templates").symlink_to(FIXTURES / "templates")
    (tmp_path / "broken.toml").write_text('name = "broken"\nos = "beos"\n')
    path = write(tmp_path, POOL.replace('profile = "win10"', 'profile = "broken"'))
    with pytest.raises(ProfileError) as caught:
        load_pool(path, [FIXTURES])
    assert str(caught.value).startswith(f"{tmp_path / 'broken.toml'}:2: os: expected one of")


def test_the_example_lab_pool_loads() -> None:
    pool = load_pool(FIXTURES / "pools" / "lab.toml", [FIXTURES])
    assert len(pool.slots) == 4
    assert pool.uris == ["qemu:///system", "qemu+ssh://ci@hv2/system"]
