"""Subcommands of ``callout-harness`` that live outside the core modules.

Each module has ``add_arguments(parser)`` and ``run(args) -> int`` and is
imported only when its command is used.
"""
