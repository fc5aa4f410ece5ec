"""callout-harness: QA for Windows Filtering Platform callout drivers.

The core (``harness.trace``, ``harness.contract``, ``harness.engine``,
``harness.scenarios`` and the sim target) imports nothing heavier than the
standard library and orjson; libvirt, pywinrm and paramiko are imported by the
modules that need them, when they need them.
"""

__version__ = "0.1.0"
