"""VM profiles: what a kind of test VM looks like, loaded from TOML.

A profile (``fixtures/win11.toml`` and friends) names the libvirt URI, the
read-only base image, the virtual hardware, the domain template, how the
harness reaches the guest (QEMU user-mode port forwards on 127.0.0.1, or a
named libvirt network), the transports and the names of the environment
variables that hold their credentials, the snapshot names and how snapshots
are taken (``snapshot = "internal" | "saved-state" | "auto"``). Loading checks
every key; a mistake is one line naming the file, line, key, what was
expected and what was found, and unknown keys are mistakes too.

Standard library only, so profiles load without libvirt installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ProfileError
from harness.tomlfile import Document, Table

PROFILE_SUFFIX = ".toml"
LOOPBACK = "127.0.0.1"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_TEMPLATE = re.compile(r"[A-Za-z0-9_.-]+\.xml")

OS_KINDS = ("windows", "linux")
DOMAIN_TYPES = ("kvm", "qemu")
MACHINE_TYPES = ("q35", "pc")
FIRMWARES = ("bios", "uefi")
DISK_BUSES = ("virtio", "sata", "scsi", "ide")
NIC_MODELS = ("virtio", "e1000e", "e1000", "rtl8139")
IMAGE_FORMATS = ("qcow2", "raw")
NETWORK_MODES = ("user", "libvirt")
TRANSPORTS = ("winrm", "ssh")
WINRM_SCHEMES = ("https", "http")
#: WinRM authentication methods a profile may choose (as pywinrm names them).
WINRM_AUTHS = ("ntlm", "kerberos", "credssp", "basic", "certificate")
ON_CRASH = ("preserve", "coredump-destroy", "coredump-restart", "destroy", "restart")
DUMP_FORMATS = ("elf", "kdump-zlib", "kdump-lzo", "kdump-snappy", "win-dmp")
#: How a slot is reverted: libvirt internal snapshots (disk and RAM in the
#: qcow2 overlay), saved-state snapshots (virDomainSaveFlags plus a frozen
#: overlay and NVRAM copy; any firmware), or chosen by firmware and libvirt
#: version (``auto``, :mod:`harness.vm.snapshots`).
SNAPSHOT_KINDS = ("auto", "internal", "saved-state")


@dataclass(frozen=True)
class MachineSpec:
    """Virtual hardware."""

    domain_type: str
    machine_type: str
    memory_mib: int
    vcpus: int
    firmware: str
    secure_boot: bool
    uefi_loader: Path | None
    uefi_vars_template: Path | None
    tpm: bool
    disk_bus: str
    nic_model: str
    hyperv: bool


@dataclass(frozen=True)
class Image:
    """The base disk (never written: each slot boots an overlay) and, for
    direct kernel boot, the kernel, initrd and command line."""

    base: Path
    format: str
    kernel: Path | None
    initrd: Path | None
    cmdline: str | None


@dataclass(frozen=True)
class Forward:
    """A QEMU user-mode port forward; the host port on 127.0.0.1 is chosen
    when a slot is leased, so parallel slots never collide."""

    name: str
    guest_port: int


@dataclass(frozen=True)
class Network:
    mode: str
    libvirt_network: str | None
    forwards: tuple[Forward, ...]

    def forward(self, name: str) -> Forward | None:
        return next((f for f in self.forwards if f.name == name), None)


@dataclass(frozen=True)
class TransportSpec:
    """How to reach the guest. ``forward`` names a port forward (user-mode
    networking); otherwise ``port`` is used as is. Credentials are never
    here: only the names of the environment variables that hold them."""

    kind: str
    host: str
    port: int | None
    forward: str | None
    scheme: str | None
    ca_path: Path | None
    username_env: str
    password_env: str | None
    key_path_env: str | None
    #: SSH only: where host keys are checked (default: the user's known_hosts)
    known_hosts: Path | None = None
    #: SSH only: trust and record the key of a host not yet known (never a changed key)
    accept_new_host_key: bool = False
    #: WinRM only: the authentication method (ntlm, kerberos, credssp, basic, certificate)
    auth: str = "ntlm"
    #: WinRM only: allow plain HTTP with an auth that sends the password readably
    insecure_http: bool = False


@dataclass(frozen=True)
class Snapshots:
    clean: str
    golden: str


@dataclass(frozen=True)
class Crash:
    on_crash: str
    dump_format: str


@dataclass(frozen=True)
class Profile:
    """One VM profile, validated."""

    name: str
    path: Path
    os: str
    description: str
    uri: str
    template: Path
    machine: MachineSpec
    image: Image
    network: Network
    transports: Mapping[str, TransportSpec]
    snapshots: Snapshots
    crash: Crash
    #: one of SNAPSHOT_KINDS
    snapshot: str = "auto"

    @property
    def primary_transport(self) -> TransportSpec:
        """The transport the harness waits on to call a guest ready."""
        preferred = "winrm" if self.os == "windows" else "ssh"
        return self.transports.get(preferred) or next(iter(self.transports.values()))


def templates_dir(profile_path: Path) -> Path:
    return profile_path.parent / "templates"


def load_profile(path: str | Path) -> Profile:
    """Load and validate one profile file; raise ProfileError on any mistake."""
    doc = Document(Path(path), ProfileError)
    root = doc.root()
    name = root.string("name", pattern=_NAME, what="a lower-case name ([a-z0-9_.-])")
    if name != doc.path.stem:
        raise root.error("name", expected=f"{doc.path.stem!r} (the file's name)", found=name)
    os_kind = root.string("os", choices=OS_KINDS)
    description = root.string("description", default="")
    uri = root.string("uri", pattern=re.compile(r"[a-z][a-z0-9+]*://.*"), what="a libvirt URI")
    template_name = root.string("template", pattern=_TEMPLATE, what="a template file name (*.xml)")
    template = templates_dir(doc.path) / template_name
    if not template.is_file():
        raise root.error("template", expected=f"a file in {template.parent}", found=template_name)
    snapshot = root.string("snapshot", choices=SNAPSHOT_KINDS, default="auto")
    machine = _machine(root.table("machine"), os_kind)
    image = _image(root.table("image"))
    network = _network(root.table("network"))
    transports = _transports(root.table("transport"), network)
    snapshots = _snapshots(root.table("snapshots"))
    crash = _crash(root.table("crash", required=False), os_kind)
    root.finish()
    return Profile(
        name=name, path=doc.path, os=os_kind, description=description, uri=uri,
        template=template, machine=machine, image=image, network=network,
        transports=transports, snapshots=snapshots, crash=crash, snapshot=snapshot,
    )


def _machine(table: Table, os_kind: str) -> MachineSpec:
    firmware = table.string("firmware", choices=FIRMWARES)
    secure_boot = table.boolean("secure_boot", default=False)
    if secure_boot:
        # Test-signed drivers load only with Secure Boot off.
        raise table.error("secure_boot", expected="false (test-signed drivers need it off)",
                          found=secure_boot)
    loader = vars_template = None
    if firmware == "uefi":
        loader = table.path("uefi_loader")
        vars_template = table.path("uefi_vars_template")
    tpm = table.boolean("tpm", default=False)
    if tpm and firmware != "uefi":
        raise table.error("tpm", expected="false with firmware 'bios' (a TPM needs UEFI)",
                          found=tpm)
    machine = MachineSpec(
        domain_type=table.string("domain_type", choices=DOMAIN_TYPES),
        machine_type=table.string("machine_type", choices=MACHINE_TYPES, default="q35"),
        memory_mib=table.integer("memory_mib", minimum=128, maximum=1024 * 1024),
        vcpus=table.integer("vcpus", minimum=1, maximum=256),
        firmware=firmware,
        secure_boot=secure_boot,
        uefi_loader=loader,
        uefi_vars_template=vars_template,
        tpm=tpm,
        disk_bus=table.string("disk_bus", choices=DISK_BUSES),
        nic_model=table.string("nic_model", choices=NIC_MODELS),
        hyperv=table.boolean("hyperv", default=os_kind == "windows"),
    )
    table.finish()
    return machine


def _image(table: Table) -> Image:
    image = Image(
        base=table.path("base"),
        format=table.string("format", choices=IMAGE_FORMATS, default="qcow2"),
        kernel=table.path("kernel", default=None),
        initrd=table.path("initrd", default=None),
        cmdline=table.string("cmdline", default=None),
    )
    if (image.kernel is None) != (image.initrd is None):
        missing = "initrd" if image.initrd is None else "kernel"
        raise table.error(missing, expected="kernel and initrd together (direct kernel boot)")
    table.finish()
    return image


def _network(table: Table) -> Network:
    mode = table.string("mode", choices=NETWORK_MODES)
    libvirt_network = None
    forwards: list[Forward] = []
    if mode == "libvirt":
        libvirt_network = table.string("name", pattern=_NAME, what="a libvirt network name")
        if libvirt_network == "default":
            # The stock NAT network would put test guests on the host's LAN side.
            raise table.error("name", expected="a dedicated network, not 'default'",
                              found=libvirt_network)
    else:
        ports = table.table("forwards")
        for fwd_name in list(ports.data):
            if not _NAME.fullmatch(fwd_name):
                raise ports.error(fwd_name, expected="a forward name ([a-z0-9_.-])",
                                  found=fwd_name)
            forwards.append(Forward(fwd_name, ports.integer(fwd_name, minimum=1, maximum=65535)))
        if not forwards:
            raise table.error("forwards", expected="at least one port forward", found={})
    table.finish()
    return Network(mode=mode, libvirt_network=libvirt_network, forwards=tuple(forwards))


def _transports(table: Table, network: Network) -> dict[str, TransportSpec]:
    result: dict[str, TransportSpec] = {}
    for kind in list(table.data):
        if kind not in TRANSPORTS:
            raise table.error(kind, expected=f"one of {', '.join(TRANSPORTS)}", found=kind)
        result[kind] = _transport(table.table(kind), kind, network)
    if not result:
        raise table.error("winrm", expected="at least one [transport.winrm] or [transport.ssh]")
    table.finish()
    return result


def _transport(table: Table, kind: str, network: Network) -> TransportSpec:
    host = table.string("host")
    forward = table.string("forward", default=None)
    port = table.integer("port", default=None, minimum=1, maximum=65535)
    if network.mode == "user":
        if forward is None:
            raise table.error("forward", expected="the name of a [network.forwards] entry")
        if network.forward(forward) is None:
            names = ", ".join(f.name for f in network.forwards)
            raise table.error("forward", expected=f"one of {names}", found=forward)
        if host != LOOPBACK:
            # user-mode forwards listen on loopback only, never on a LAN address
            raise table.error("host", expected=f"{LOOPBACK!r} with user-mode networking",
                              found=host)
    elif port is None:
        raise table.error("port", expected="a port (libvirt network mode has no forwards)")
    scheme = ca_path = password_env = key_path_env = known_hosts = None
    accept_new = insecure_http = False
    auth = "ntlm"
    if kind == "winrm":
        scheme = table.string("scheme", choices=WINRM_SCHEMES)
        ca_path = table.path("ca_path", default=None)
        password_env = table.env_name("password_env")
        auth = table.string("auth", choices=WINRM_AUTHS, default="ntlm")
        insecure_http = table.boolean("insecure_http", default=False)
    else:
        key_path_env = table.env_name("key_path_env", default=None)
        password_env = table.env_name("password_env", default=None)
        if key_path_env is None and password_env is None:
            raise table.error("key_path_env", expected="key_path_env or password_env")
        known_hosts = table.path("known_hosts", default=None)
        accept_new = table.boolean("accept_new_host_key", default=False)
    transport = TransportSpec(
        kind=kind, host=host, port=port, forward=forward, scheme=scheme, ca_path=ca_path,
        username_env=table.env_name("username_env"), password_env=password_env,
        key_path_env=key_path_env, known_hosts=known_hosts, accept_new_host_key=accept_new,
        auth=auth, insecure_http=insecure_http,
    )
    table.finish()
    return transport


def _snapshots(table: Table) -> Snapshots:
    names = re.compile(r"[A-Za-z0-9_.-]{1,64}")
    snapshots = Snapshots(
        clean=table.string("clean", pattern=names, what="a snapshot name"),
        golden=table.string("golden", pattern=names, what="a snapshot name"),
    )
    if snapshots.clean == snapshots.golden:
        raise table.error("golden", expected="a name different from 'clean'",
                          found=snapshots.golden)
    table.finish()
    return snapshots


def _crash(table: Table, os_kind: str) -> Crash:
    crash = Crash(
        on_crash=table.string("on_crash", choices=ON_CRASH, default="preserve"),
        dump_format=table.string(
            "dump_format", choices=DUMP_FORMATS,
            default="win-dmp" if os_kind == "windows" else "kdump-zlib",
        ),
    )
    if crash.dump_format == "win-dmp" and os_kind != "windows":
        raise table.error("dump_format", expected="a Linux dump format", found="win-dmp")
    table.finish()
    return crash


def find_profile(name: str, search_dirs: Iterable[str | Path]) -> Profile:
    """Load the profile called ``name`` from the first directory that has it.

    ``name`` is a bare profile name (``win11``); each directory is searched
    for ``NAME.toml``. Raises ProfileError listing where it looked.
    """
    if not _NAME.fullmatch(name):
        raise ProfileError(name, expected="a profile name ([a-z0-9_.-])", found=repr(name))
    dirs = [Path(d) for d in search_dirs]
    for directory in dirs:
        candidate = directory / f"{name}{PROFILE_SUFFIX}"
        if candidate.is_file():
            return load_profile(candidate)
    where = ", ".join(str(d) for d in dirs) or "no directories"
    raise ProfileError(name, expected=f"{name}{PROFILE_SUFFIX} in {where}", found="no such file")


def available_profiles(search_dirs: Iterable[str | Path]) -> list[str]:
    """Names of the profile files in ``search_dirs`` (not validated)."""
    names: set[str] = set()
    for directory in search_dirs:
        for path in Path(directory).glob(f"*{PROFILE_SUFFIX}"):
            if _NAME.fullmatch(path.stem):
                names.add(path.stem)
    return sorted(names)
