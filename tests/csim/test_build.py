"""The host build: warnings, the missing-symbol refusal, the cache, the [sim] table."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.csim.build import BuildError, build, runtime_exports
from harness.csim.manifest import load_sim_manifest
from harness.errors import ManifestError
from tests.csim.conftest import DRIVERS, PROBE


def test_probe_builds_warning_free(tmp_path: Path) -> None:
    manifest = load_sim_manifest(PROBE)
    built = build(manifest, cache=tmp_path)
    assert built.library.is_file()
    # -Wall -Wextra with -Werror on top: no warning anywhere in probe.c
    from harness.csim.build import flags_for, gcc
    done = subprocess.run([gcc(), *flags_for(manifest), "-Werror", "-c", str(manifest.sources[0]),
                           "-o", str(tmp_path / "probe.o")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_mutant_builds_warning_free(tmp_path: Path) -> None:
    from harness.csim.build import flags_for, gcc

    manifest = load_sim_manifest(PROBE)
    assert len(manifest.mutants) >= 12
    keys = {build(manifest, mutant=m.name, cache=tmp_path).key for m in manifest.mutants}
    assert len(keys) == len(manifest.mutants)  # each define makes its own object
    for m in manifest.mutants:
        done = subprocess.run([gcc(), *flags_for(manifest, defines=(m.define,)), "-Werror",
                               "-c", str(manifest.sources[0]), "-o", str(tmp_path / "m.o")],
                              capture_output=True, text=True)
        assert done.returncode == 0, f"{m.name}: {done.stderr}"


def test_missing_symbols_fail_the_build_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as info:
        build(load_sim_manifest(DRIVERS / "missing"), cache=tmp_path)
    message = str(info.value)
    assert message == ("the host runtime does not provide: FwpsInjectMacReceiveAsync0, "
                       "FwpsInjectNetworkReceiveAsync0")


def test_the_cache_builds_once_and_rebuilds_on_a_change(tmp_path: Path) -> None:
    src = tmp_path / "drv"
    src.mkdir()
    for name in ("driver.toml", "crasher.c"):
        (src / name).write_text((DRIVERS / "crasher" / name).read_text())
    (src / "common.h").write_text((DRIVERS / "common.h").read_text())
    toml = (src / "driver.toml").read_text().replace('include_dirs = [".."]', "")
    (src / "driver.toml").write_text(toml)
    cache = tmp_path / "cache"
    first = build(load_sim_manifest(src), cache=cache)
    stamp = first.library.stat().st_mtime_ns
    again = build(load_sim_manifest(src), cache=cache)
    assert again.library == first.library and again.library.stat().st_mtime_ns == stamp
    (src / "common.h").write_text((src / "common.h").read_text() + "\n/* changed */\n")
    changed = build(load_sim_manifest(src), cache=cache)
    assert changed.key != first.key


def test_a_compile_error_names_the_file_and_line(tmp_path: Path) -> None:
    src = tmp_path / "drv"
    src.mkdir()
    (src / "bad.c").write_text("#include <ntddk.h>\nint DriverEntry(void) { return x; }\n")
    (src / "driver.toml").write_text(
        '[driver]\nname = "bad"\n\n[[callouts]]\nkey = "{11111111-2222-3333-0102-030405060708}"\n'
        'layer = "ALE_AUTH_CONNECT_V4"\n\n[sim]\nsources = ["bad.c"]\n')
    with pytest.raises(BuildError) as info:
        build(load_sim_manifest(src), cache=tmp_path / "cache")
    assert "bad.c:2" in str(info.value) and "compiling" in str(info.value)


@pytest.mark.parametrize(("sim", "expected"), [
    ('sources = []', "sim.sources: expected at least one source file"),
    ('sources = ["nope.c"]', "sim.sources: expected an existing file"),
    ('sources = ["x.c"]\ndefines = ["A B"]', "sim.defines: expected NAME or NAME=VALUE"),
    ('sources = ["x.c"]\nflags = 1', "sim.flags: expected one of"),
    ('sources = ["x.c"]\n[[sim.mutants]]\nname = "Bad"\ndefine = "X"\nrules = ["PC001"]\n'
     'description = "d"', "sim.mutants[0].name: expected a snake_case name"),
])
def test_bad_sim_tables_are_one_line_errors(tmp_path: Path, sim: str, expected: str) -> None:
    (tmp_path / "x.c").write_text("")
    (tmp_path / "driver.toml").write_text(
        '[driver]\nname = "x"\n\n[[callouts]]\nkey = "{11111111-2222-3333-0102-030405060708}"\n'
        f'layer = "ALE_AUTH_CONNECT_V4"\n\n[sim]\n{sim}\n')
    with pytest.raises(ManifestError) as info:
        load_sim_manifest(tmp_path)
    assert expected in str(info.value)
    assert str(tmp_path / "driver.toml") in str(info.value) and "\n" not in str(info.value)


def test_runtime_exports_are_generated_from_the_runtime() -> None:
    names = runtime_exports()
    for name in ("FwpsPendOperation0", "FwpsCompleteClassify0", "FwpsStreamInjectAsync0",
                 "ExAllocatePool2", "KeSetTimer", "IoQueueWorkItem", "FwpmFilterAdd0"):
        assert name in names
    assert "FwpsInjectMacReceiveAsync0" not in names


def test_the_readme_lists_exactly_what_the_runtime_provides() -> None:
    readme = (PROBE.parents[1] / "README.md").read_text()
    block = readme.split("<!-- csim-exports -->")[1].split("<!-- /csim-exports -->")[0]
    listed = block.replace("```", "").split()
    assert listed == runtime_exports()
