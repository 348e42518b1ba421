"""Report stage: summary.json for machines, report.md (tabulate) for people, the console display."""

from ._progress import progress_display
from ._summary import SCHEMA_VERSION, BuildRun, JobSummary, dispatch_rows, machine_fields, untuned_rows, yardstick
from ._write import write_report

__all__ = [
    "SCHEMA_VERSION",
    "BuildRun",
    "JobSummary",
    "dispatch_rows",
    "machine_fields",
    "progress_display",
    "untuned_rows",
    "write_report",
    "yardstick",
]
