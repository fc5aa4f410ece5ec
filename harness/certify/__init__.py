"""Certification runs: retries kept visible, known issues, and the signed-off bundle.

- :mod:`harness.verdict`           (outside the package) an item's verdict and stale errata
- :mod:`harness.certify.environment`  the environment manifest
- :mod:`harness.certify.bundle`    the bundle directory, SHA256SUMS and DIR.tar.gz
- :mod:`harness.certify.verify`    ``certify verify``
- :mod:`harness.certify.cli`       ``callout-harness certify run | verify``
"""
