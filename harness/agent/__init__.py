"""The step agent: the C program that runs a scenario's steps inside a Windows guest.

Its source is ``drivers/agent/`` (C, Winsock and fwpuclnt); :mod:`.build`
cross-compiles it with mingw-w64, :mod:`.plan` compiles a scenario into the
JSON step plan it executes, :mod:`.results` reads back what it observed.
"""

from __future__ import annotations

#: The agent's TraceLogging provider: its name, and the ETW name hash of that name.
AGENT_PROVIDER_NAME = "CalloutHarness.Agent"
AGENT_PROVIDER = "{25D608EB-8EE4-5DB8-DE6A-770EF87B011A}"
