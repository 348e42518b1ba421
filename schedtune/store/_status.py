"""The statuses a trial can end with, and which of them spend the search budget."""

from __future__ import annotations

import enum


class TrialStatus(str, enum.Enum):
    """A trial's outcome; stored by value (a plain string) in trial attributes and the cache."""

    OK = "ok"  # compiled, applied, correct, timed: the only status with a time
    COMPILE_ERROR = "compile_error"
    COMPILE_TIMEOUT = "compile_timeout"
    COMPILE_CRASH = "compile_crash"
    NOT_APPLIED = "not_applied"  # IREE compiled it but did not use the config
    WRONG_RESULT = "wrong_result"
    RUN_ERROR = "run_error"
    # Free: no budget spent.
    CONSTRAINT = "constraint"  # rejected before compiling
    DUPLICATE = "duplicate"  # the study already measured this config
    IN_PROGRESS = "in_progress"  # another worker holds the config
    OVER_BUDGET = "over_budget"  # another worker filled the last slot
    LOST = "lost"  # its process was killed mid-trial
    INVALID = "invalid"  # read back from the storage, it fails the checks a new one passes

    def __str__(self) -> str:
        return self.value

    @property
    def spends_budget(self) -> bool:
        return self not in _FREE

    @classmethod
    def of_compile(cls, compile_status: str) -> TrialStatus:
        """The trial status for a failed `iree.compile_model` status (error, timeout, crash)."""
        return cls(f"compile_{compile_status}")


_FREE = frozenset(
    {
        TrialStatus.CONSTRAINT,
        TrialStatus.DUPLICATE,
        TrialStatus.IN_PROGRESS,
        TrialStatus.OVER_BUDGET,
        TrialStatus.LOST,
        TrialStatus.INVALID,
    }
)


def spends_budget(status: str | None) -> bool:
    """Whether a stored status (a string, or None for an untagged trial) counts against the budget."""
    if status is None:
        return False
    try:
        return TrialStatus(status).spends_budget
    except ValueError:
        return True
