"""Child process of the torch frontend: `python -m schedtune.frontend._torch_export FACTORY OUT SHAPE...`.

A separate process keeps torch (its threads, ~1 GB of memory, any crash in user code) out of
the tuning process, and lets the parent put a timeout on it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import pathlib
import sys

DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "i8": "int8", "i32": "int32", "i64": "int64"}


def load_factory(factory: str):
    """`path/to/file.py:function` or `package.module:function` -> the function."""
    module_name, _, function = factory.rpartition(":")
    if not module_name or not function:
        raise SystemExit(f"factory {factory!r} is not of the form module:function")
    if module_name.endswith(".py"):
        path = pathlib.Path(module_name)
        sys.path.insert(0, str(path.parent))  # helper modules beside the factory
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    fn = getattr(module, function, None)
    if fn is None:
        raise SystemExit(f"factory {factory!r}: {module_name} has no {function}")
    return fn


def example_inputs(shapes: list[str], seed: int = 0) -> tuple:
    import torch

    gen = torch.Generator().manual_seed(seed)
    tensors = []
    for spec in shapes:
        *dims, dtype = spec.split("x")
        shape = tuple(int(d) for d in dims)
        torch_dtype = getattr(torch, DTYPES[dtype])
        if torch_dtype.is_floating_point:
            tensors.append(torch.randn(shape, generator=gen).to(torch_dtype))
        else:
            tensors.append(torch.randint(0, 8, shape, generator=gen).to(torch_dtype))
    return tuple(tensors)


@contextlib.contextmanager
def bf16_parameters():
    """Let iree-turbine export bf16 parameters (`model.to(torch.bfloat16)`).

    It turns each parameter into a numpy array to embed its bytes, and numpy has no bf16:
    "Got unsupported ScalarType BFloat16". Its module's numpy is swapped, while exporting, for
    one that hands over a bf16 tensor's bits as int16: the embedded bytes are the same and the
    global's element type still comes from the tensor (bf16)."""
    import numpy as np
    import torch
    from iree.turbine.aot.support import ir_utils

    class _NumpyWithBf16Bits:
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def array(value, *args, **kwargs):
            if isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16:
                return value.view(torch.int16).numpy()
            return np.array(value, *args, **kwargs)

    real = ir_utils.np
    ir_utils.np = _NumpyWithBf16Bits()
    try:
        yield
    finally:
        ir_utils.np = real


def export_torch_module(module, example_inputs: tuple, out: pathlib.Path) -> pathlib.Path:
    """An in-memory `nn.Module` as torch-dialect MLIR at `out` (the Python API's frontend: the
    module lives in the caller's process, so it is exported there)."""
    import iree.turbine.aot as aot
    import torch

    from ..errors import FrontendError

    if not isinstance(module, torch.nn.Module):
        raise FrontendError(f"model: expected a torch.nn.Module, got {type(module).__name__}")
    partial = out.with_name(out.name + ".partial")
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), bf16_parameters():
            aot.export(module, *example_inputs).save_mlir(str(partial))
    except Exception as exc:  # torch.export's many failure types; the user needs the first line
        partial.unlink(missing_ok=True)
        raise FrontendError(
            f"torch export failed: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}"
        ) from exc
    finally:
        module.train(was_training)
    partial.replace(out)
    return out


def main(argv: list[str]) -> int:
    factory, out, *shapes = argv
    import iree.turbine.aot as aot
    import torch

    torch.manual_seed(0)
    model = load_factory(factory)()
    if not isinstance(model, torch.nn.Module):
        raise SystemExit(f"factory {factory!r} returned {type(model).__name__}, not a torch.nn.Module")
    model.eval()
    with torch.no_grad(), bf16_parameters():
        exported = aot.export(model, *example_inputs(shapes))
        exported.save_mlir(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
