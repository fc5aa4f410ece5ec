"""Run history and trends: ``callout-harness history add | report``.

- :mod:`harness.history.store`   the history file (JSON lines), one record per bundle
- :mod:`harness.history.trends`  groups per driver and OS build, newly failing/passing,
  and the offline trend page (inline SVG)
- :mod:`harness.history.cli`     the subcommands
"""
