"""Run reports: the timeline model of a trace and the self-contained HTML page."""

from harness.report.html import ReportItem, render_html, write_html
from harness.report.timeline import Timeline, build_timeline

__all__ = ["ReportItem", "Timeline", "build_timeline", "render_html", "write_html"]
