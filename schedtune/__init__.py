"""schedtune: autotuning IREE's CPU dispatch schedules, one dispatch at a time.

import schedtune
result = schedtune.tune(model, example_inputs, budget={"max_minutes": 10})
"""

from ._version import __version__

__all__ = ["TuningResult", "__version__", "run", "tune"]


def __getattr__(name: str):
    # The API pulls in the whole job (Optuna, the compiler's bindings); the tool's child
    # processes (`python -m schedtune.x`) import this package too and need none of it.
    if name in ("TuningResult", "run", "tune"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'schedtune' has no attribute {name!r}")
