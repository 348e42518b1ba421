"""Report stage: summary.json for machines, report.md (tabulate) for people."""
from ._write import write_report

__all__ = ["write_report"]
