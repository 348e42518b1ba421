"""Frontend stage: the model named in the job config -> one MLIR file iree-compile takes.

`mlir` files are used as they are (with the matching `--iree-input-type`); `torch` factories
are exported with iree-turbine and `onnx` files imported with `iree-import-onnx`, both in a
child process and cached under the job's work folder by a hash of everything the import
depends on, so a re-run does not import again. The Python API's in-memory modules are exported
in the caller's process (`export_torch_module`).
"""

from ._import import FrontendError, ImportedModel, import_model
from ._torch_export import DTYPES, export_torch_module

__all__ = ["DTYPES", "FrontendError", "ImportedModel", "export_torch_module", "import_model"]
