"""Job configuration: YAML in, validated `JobConfig` out."""

from ._job import (
    BudgetSpec,
    ConfigError,
    JobConfig,
    ModelSpec,
    ProposerSpec,
    SearchSpec,
    TargetSpec,
    load_config,
)

__all__ = [
    "BudgetSpec",
    "ConfigError",
    "JobConfig",
    "ModelSpec",
    "ProposerSpec",
    "SearchSpec",
    "TargetSpec",
    "load_config",
]
