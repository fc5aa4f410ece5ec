"""Where a scenario runs: ``sim`` (the embedded engine model) or a VM profile."""
