"""schedtune: autotuning IREE's CPU dispatch schedules, one dispatch at a time."""

__version__ = "0.1.0"
