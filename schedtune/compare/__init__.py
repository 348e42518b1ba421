"""`tune compare`: tuned IREE beside IREE's default, onnxruntime, PyTorch eager and torch.compile."""

from ._compare import add_arguments, main

__all__ = ["add_arguments", "main"]
