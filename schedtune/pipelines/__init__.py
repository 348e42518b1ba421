"""Model-level pipelines: ordered preprocessing passes with options, plus global flag groups.

The space lives in spaces/pipelines.yaml and is checked against the installed IREE; a
pipeline is validated (space, then iree-opt) before any compile, because iree-compile
ignores a pipeline it cannot parse and still exits 0.
"""

from ._pipeline import (
    PIPELINE_FLAG,
    PassStep,
    Pipeline,
    PipelineError,
    parse_passes,
    passes_of_flags,
    with_scripts_in,
)
from ._space import (
    NO_OPTION,
    OFF,
    FlagGroup,
    PassSpec,
    PipelineSpace,
    compile_ready,
    load_pipeline_space,
    pipeline_error,
    user_pipelines,
)

__all__ = [
    "NO_OPTION",
    "OFF",
    "PIPELINE_FLAG",
    "FlagGroup",
    "PassSpec",
    "PassStep",
    "Pipeline",
    "PipelineError",
    "PipelineSpace",
    "compile_ready",
    "load_pipeline_space",
    "parse_passes",
    "passes_of_flags",
    "pipeline_error",
    "user_pipelines",
    "with_scripts_in",
]
