"""Job configuration: YAML in, validated `JobConfig` out."""

from ._job import (
    DEMOTE_FLAG,
    BudgetSpec,
    ConfigError,
    JobConfig,
    ModelSpec,
    PrecisionSpec,
    ProposerSpec,
    SearchSpec,
    TargetSpec,
    config_from_dict,
    load_config,
)

__all__ = [
    "DEMOTE_FLAG",
    "BudgetSpec",
    "ConfigError",
    "JobConfig",
    "ModelSpec",
    "PrecisionSpec",
    "ProposerSpec",
    "SearchSpec",
    "TargetSpec",
    "config_from_dict",
    "config_reference",
    "load_config",
]


def __getattr__(name: str):
    # Imported on first use: `python -m schedtune.config._reference` (which regenerates
    # docs/config.md) warns when the package has imported the module before it runs.
    if name == "config_reference":
        from ._reference import config_reference

        return config_reference
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
