"""Reaching Windows guests: transports, driver deployment, ETW capture and conversion.

Importing this package is cheap: the WinRM and SSH clients (pywinrm,
paramiko) are imported only when a transport is opened, see
:mod:`harness.guest.base`.
"""

from harness.guest.base import CommandResult, Transport, open_transport
from harness.guest.settings import (
    SSHSettings,
    WinRMSettings,
    parse_transport_settings,
    settings_from_profile,
)

__all__ = [
    "CommandResult",
    "SSHSettings",
    "Transport",
    "WinRMSettings",
    "open_transport",
    "parse_transport_settings",
    "settings_from_profile",
]
