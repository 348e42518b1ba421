"""Every attribute schedtune stores on Optuna studies and trials, in one place.

The storage is a plain Optuna RDB storage, read by `optuna-dashboard` and by other schedtune
processes (workers, later runs, the LLM proposer's retrieval of similar results).
"""

# Study user attributes.
SKELETONS = "skeletons"  # JSON list of Skeleton.to_json(): fixes the search space on resume
TARGET = "target"  # the target's label, e.g. conv2d_8x64x16x16x32x3x3
LOOPS = "loops"  # JSON {loop name: trip count}
DEFAULT_NS = "default_ns"  # the target's time with IREE's default config, from the analysis
FAMILY = "family"  # the root op's family (schedtune.families)
OP_NAME = "op_name"  # the root op, e.g. linalg.conv_2d_nchw_fchw
ELEMENT_TYPES = "element_types"  # JSON [lhs, rhs, out]
LOOP_ORDER = "loop_order"  # JSON [[knob name, trip count], ...] in the op's loop order
FINGERPRINT = "fingerprint"  # JSON {compiler, cpu_model, cpu_features, flags}: what the times depend on
# One per process that worked the study, "worker:host:pid" -> its start (Unix time); one key
# each, so workers joining together never overwrite each other.
WORKER_PREFIX = "worker:"

# Trial user attributes.
STATUS = "status"  # a TrialStatus value
CONFIG = "config"  # CompilationConfig.canonical()
WORKER = "worker"  # host:pid of the process that ran it
ERROR = "error"  # the failure's message, truncated
CACHED = "cached"  # the result came from the cache
REPAIRED = "repaired"  # the sampled point broke these constraints; CONFIG is its repair
