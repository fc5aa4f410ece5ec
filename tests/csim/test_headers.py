"""The clean-room headers carry the documented values: compiled and printed by gcc."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.csim.build import INCLUDE, gcc
from harness.csim.config import IOCTL_PROBE_CONFIGURE, SIZE
from harness.csim.layers import LAYER_IDS
from tests.csim.conftest import PROBE

# Values from the Microsoft Learn reference pages (fwptypes.h, fwpsk.h, ntstatus.h).
DOCUMENTED = {
    "FWP_ACTION_BLOCK": 0x1001, "FWP_ACTION_PERMIT": 0x1002,
    "FWP_ACTION_CALLOUT_TERMINATING": 0x5003, "FWP_ACTION_CALLOUT_INSPECTION": 0x6004,
    "FWP_ACTION_CALLOUT_UNKNOWN": 0x4005, "FWP_ACTION_CONTINUE": 0x2006,
    "FWP_ACTION_NONE": 0x7, "FWP_ACTION_NONE_NO_MATCH": 0x8,
    "FWP_CONDITION_FLAG_IS_REAUTHORIZE": 0x4, "FWPS_RIGHT_ACTION_WRITE": 0x1,
    "FWPS_CLASSIFY_OUT_FLAG_ABSORB": 0x1,
    "FWPS_METADATA_FIELD_COMPLETION_HANDLE": 0x4000,
    "FWPS_METADATA_FIELD_TRANSPORT_ENDPOINT_HANDLE": 0x8000,
    "FWPS_FIELD_ALE_AUTH_CONNECT_V4_IP_REMOTE_ADDRESS": 6,
    "FWPS_FIELD_ALE_AUTH_CONNECT_V4_FLAGS": 12,
    "FWPS_FIELD_INBOUND_TRANSPORT_V4_FLAGS": 9,
    "FWPS_FIELD_STREAM_V4_MAX": 8,
    "FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_MAX": 14,
    "STATUS_SUCCESS": 0, "STATUS_PENDING": 0x103, "STATUS_NOT_FOUND": 0xC0000225,
}


def _print_values(tmp_path: Path, names: list[str], extra: str = "") -> dict[str, int]:
    body = "\n".join(f'    printf("%s %llu\\n", "{n}", (unsigned long long)(UINT32)({n}));'
                     for n in names)
    src = tmp_path / "values.c"
    src.write_text("#include <stdio.h>\n#include <ntddk.h>\n#include <fwpsk.h>\n" + extra +
                   "\nint main(void) {\n" + body + "\n    return 0;\n}\n")
    exe = tmp_path / "values"
    subprocess.run([gcc(), "-fshort-wchar", "-Wall", "-Wextra", f"-I{INCLUDE}", f"-I{PROBE}",
                    str(src), "-o", str(exe)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {line.split()[0]: int(line.split()[1]) for line in out.splitlines()}


def test_constants_carry_the_documented_values(tmp_path: Path) -> None:
    assert _print_values(tmp_path, list(DOCUMENTED)) == DOCUMENTED


def test_layer_ids_agree_with_the_header(tmp_path: Path) -> None:
    got = _print_values(tmp_path, [f"FWPS_LAYER_{name}" for name in LAYER_IDS])
    assert got == {f"FWPS_LAYER_{name}": value for name, value in LAYER_IDS.items()}


def test_probe_config_layout_matches_the_python_packer(tmp_path: Path) -> None:
    got = _print_values(tmp_path, ["sizeof(PROBE_CONFIG)", "IOCTL_PROBE_CONFIGURE"],
                        '#include "probe_ioctl.h"')
    assert got == {"sizeof(PROBE_CONFIG)": SIZE, "IOCTL_PROBE_CONFIGURE": IOCTL_PROBE_CONFIGURE}
    assert IOCTL_PROBE_CONFIGURE == 0x0012A004


def test_the_windows_agent_sees_the_same_probe_config_layout(tmp_path: Path) -> None:
    """The step agent (mingw-w64, the Windows SDK's windows.h) packs the same bytes."""
    import shutil

    import pytest

    mingw = shutil.which("x86_64-w64-mingw32-gcc")
    if mingw is None:
        pytest.skip("mingw-w64 is needed (gcc-mingw-w64-x86-64 in ci/apt-packages.txt)")
    src = tmp_path / "layout.c"
    src.write_text(
        "#include <windows.h>\n#include <winioctl.h>\n#include \"probe_ioctl.h\"\n"
        f"_Static_assert(sizeof(PROBE_CONFIG) == {SIZE}, \"size\");\n"
        f"_Static_assert(IOCTL_PROBE_CONFIGURE == {IOCTL_PROBE_CONFIGURE}, \"code\");\n"
        "_Static_assert(__builtin_offsetof(PROBE_CONFIG, blocked) == 44, \"blocked\");\n"
        "_Static_assert(__builtin_offsetof(PROBE_CONFIG, editPorts) == 1324, \"ports\");\n")
    subprocess.run([mingw, "-Wall", "-Wextra", f"-I{PROBE}", "-c", str(src), "-o",
                    str(tmp_path / "layout.o")], check=True, capture_output=True)
