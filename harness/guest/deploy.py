"""Deploy a WDK-built driver package into a Windows guest, and take it out again.

The steps, in the order a VM target runs them (each is one PowerShell script
rendered by :mod:`harness.guest.powershell`, run over any transport):

1. :meth:`Deployment.enable_test_signing` - once per golden image; returns True
   when the guest must reboot before a test-signed driver can load;
2. :meth:`Deployment.upload` - the .sys, .inf, .cat and .cer, each verified by SHA-256;
3. :meth:`Deployment.import_certificate` - the test certificate into
   LocalMachine\\Root and LocalMachine\\TrustedPublisher;
4. :meth:`Deployment.install` - ``pnputil /add-driver X.inf /install``, or for a
   non-PnP callout driver ``sc.exe create NAME type= kernel binPath= ...``;
5. :meth:`Deployment.start` - start the service, check it runs and the module
   is loaded (``Get-Service``, ``driverquery``, ``sc.exe query``);
6. optionally :meth:`Deployment.enable_verifier` (then a reboot);
7. :meth:`Deployment.uninstall`, then :meth:`Deployment.audit`: a
   ``netsh wfp show state`` dump, fetched and parsed here; any object of the
   driver's provider key still in the engine is a leftover.

Rebooting is the VM target's business (libvirt, or ``shutdown /r`` and
``transport.reconnect``); these methods only say when one is needed.
"""

from __future__ import annotations

import contextlib
import logging
import ntpath
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import TargetError, TransportError
from harness.guest import powershell as ps
from harness.guest.base import ProgressCallback, Transport
from harness.guest.manifest import DriverManifest
from harness.guest.wfpstate import WfpObject, audit_report, leftovers

log = logging.getLogger(__name__)

DEFAULT_GUEST_DIR = "C:\\callout-harness"


@dataclass(frozen=True)
class GuestLayout:
    """Where the harness keeps its files in the guest."""

    root: str = DEFAULT_GUEST_DIR

    @property
    def driver_dir(self) -> str:
        return ntpath.join(self.root, "driver")

    @property
    def trace_dir(self) -> str:
        return ntpath.join(self.root, "trace")

    @property
    def wfp_state(self) -> str:
        return ntpath.join(self.root, "wfpstate.xml")

    def driver_file(self, local: Path) -> str:
        return ntpath.join(self.driver_dir, local.name)


def render_scripts(manifest: DriverManifest, layout: GuestLayout | None = None) -> dict[str, str]:
    """Every deployment script for ``manifest``, by step name (for review and dry runs)."""
    layout = layout or GuestLayout()
    sys_name = manifest.sys.name
    scripts = {
        "enable_test_signing": ps.enable_test_signing(),
        "import_certificate": ps.import_certificate(layout.driver_file(manifest.cer)),
        "install": (
            ps.install_pnp(layout.driver_file(manifest.inf)) if manifest.install == "pnp"
            else ps.install_service(manifest.service, layout.driver_file(manifest.sys))
        ),
        "start": ps.start_and_verify(manifest.service),
        "enable_verifier": ps.enable_verifier(sys_name),
        "reset_verifier": ps.reset_verifier(),
        "uninstall": ps.uninstall(
            manifest.service,
            inf_name=manifest.inf.name if manifest.install == "pnp" else None,
            sys_name=sys_name,
        ),
        "dump_wfp_state": ps.dump_wfp_state(layout.wfp_state),
    }
    return scripts


class Deployment:
    """The deployment steps for one driver package on one guest."""

    def __init__(
        self, transport: Transport, manifest: DriverManifest, *,
        layout: GuestLayout | None = None, timeout_s: float = 600.0,
    ) -> None:
        self.transport = transport
        self.manifest = manifest
        self.layout = layout or GuestLayout()
        self.timeout_s = timeout_s
        self.scripts = render_scripts(manifest, self.layout)

    def _step(self, name: str) -> str:
        log.info("%s: %s (%s)", self.transport.target, name, self.manifest.name)
        result = self.transport.run_powershell(self.scripts[name], timeout_s=self.timeout_s)
        return result.check(f"{name} of {self.manifest.name}").stdout

    def enable_test_signing(self) -> bool:
        """Turn test signing on; True when the guest must reboot for it to apply."""
        return ps.REBOOT_MARKER in self._step("enable_test_signing")

    def upload(self, on_progress: ProgressCallback | None = None) -> dict[str, str]:
        """Copy the package files into the guest; returns name -> SHA-256."""
        digests = {}
        for local in self.manifest.files:
            remote = self.layout.driver_file(local)
            digests[local.name] = self.transport.put_file(local, remote, on_progress=on_progress)
        return digests

    def import_certificate(self) -> None:
        self._step("import_certificate")

    def install(self) -> None:
        """Install the package; a service install needs a .sys with its own signature."""
        if self.manifest.install == "service" and not embedded_signature(self.manifest.sys):
            raise TargetError(
                f"install of {self.manifest.name}: {self.manifest.sys.name} has no embedded "
                "signature; a driver started with sc create is checked against the .sys "
                "itself, not the catalog (sign it: signtool sign /fd sha256 /f probe-test.pfx "
                f"{self.manifest.sys.name}), or install the package with install = \"pnp\"")
        self._step("install")

    def start(self) -> None:
        """Start the driver and check that it is running and loaded."""
        self._step("start")

    def enable_verifier(self) -> bool:
        """Driver Verifier standard checks for the driver; True: reboot needed."""
        return ps.REBOOT_MARKER in self._step("enable_verifier")

    def reset_verifier(self) -> None:
        self._step("reset_verifier")

    def uninstall(self) -> None:
        self._step("uninstall")

    def audit(self, local_dir: Path | None = None) -> list[WfpObject]:
        """The driver's WFP objects still in the engine (empty after a clean uninstall)."""
        self._step("dump_wfp_state")
        with tempfile.TemporaryDirectory() as scratch:
            target = (local_dir or Path(scratch)) / "wfpstate.xml"
            self.transport.get_file(self.layout.wfp_state, target)
            found = leftovers(target, self.manifest.provider_key)
        log.info("%s: %s", self.transport.target, audit_report(found, self.manifest.provider_key))
        return found

    def uninstall_clean(self, local_dir: Path | None = None) -> None:
        """Uninstall, then raise :class:`TargetError` if the audit finds leftovers."""
        self.uninstall()
        found = self.audit(local_dir)
        if found:
            raise TargetError(audit_report(found, self.manifest.provider_key))


def reboot_and_wait(transport: Transport, *, timeout_s: float = 900.0,
                    poll_s: float = 5.0, sleep: Any = time.sleep) -> float:
    """Restart the guest and wait until it is back: its LastBootUpTime has changed.

    Waiting for the connection alone is not enough (the old session can
    answer until the guest goes down); a dropped connection, a refused one and
    a shell that vanished are all expected on the way. Returns seconds taken.
    """
    started = time.monotonic()
    before = transport.run_powershell(ps.last_boot_time(), timeout_s=120).check(
        "reading the boot time before the reboot").stdout.strip()
    # the guest may go down under the command: that is the point
    with contextlib.suppress(TransportError):
        transport.run_powershell(ps.restart(), timeout_s=120)
    while True:
        remaining = timeout_s - (time.monotonic() - started)
        if remaining <= 0:
            raise TargetError(f"{transport.target}: the guest did not come back from its "
                              f"reboot within {timeout_s:.0f} s (boot time still {before})")
        try:
            transport.reconnect(timeout_s=remaining)
            now = transport.run_powershell(ps.last_boot_time(), timeout_s=120)
        except TransportError:
            sleep(min(poll_s, max(0.0, remaining)))
            continue
        if now.ok and now.stdout.strip() and now.stdout.strip() != before:
            return time.monotonic() - started
        sleep(min(poll_s, max(0.0, remaining)))


#: IMAGE_DIRECTORY_ENTRY_SECURITY: the Authenticode signature embedded in the file
_SECURITY_DIRECTORY = 4


def embedded_signature(path: Path) -> bool:
    """True when the PE at ``path`` carries an embedded (Authenticode) signature.

    The optional header's security data directory names a WIN_CERTIFICATE at
    a file offset; its presence is checked here, its validity is Windows' job.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if data[:2] != b"MZ" or len(data) < 0x40:
        return False
    pe = int.from_bytes(data[0x3C:0x40], "little")
    optional = pe + 24
    if data[pe:pe + 4] != b"PE\0\0" or optional + 2 > len(data):
        return False
    magic = int.from_bytes(data[optional:optional + 2], "little")
    directories = optional + (112 if magic == 0x20B else 96)
    entry = directories + 8 * _SECURITY_DIRECTORY
    if entry + 8 > len(data):
        return False
    offset = int.from_bytes(data[entry:entry + 4], "little")
    size = int.from_bytes(data[entry + 4:entry + 8], "little")
    if size < 8 or offset + size > len(data):
        return False
    length = int.from_bytes(data[offset:offset + 4], "little")
    return 8 <= length <= size
