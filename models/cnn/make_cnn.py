"""Export the small CNN of `configs/cnn.yaml` to MLIR (run once; the output is committed).

Why a script and a committed file: the main job must run on a machine without torch, yet
the model must be a real network exported by a real frontend. Re-run with
`python models/cnn/make_cnn.py` (needs `pip install torch==2.13.0 iree-turbine`).
"""
from __future__ import annotations

import pathlib

import torch
from torch import nn

HERE = pathlib.Path(__file__).resolve().parent
BATCH = 8


class SmallCNN(nn.Module):
    """Three-plus 3x3 conv layers with ReLU, one residual add, max pooling and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.block_a = nn.Conv2d(32, 32, 3, padding=1)
        self.block_b = nn.Conv2d(32, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.wide = nn.Conv2d(32, 64, 3, padding=1)
        self.deep = nn.Conv2d(64, 64, 3, padding=1)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        y = torch.relu(self.block_a(x))
        x = torch.relu(self.block_b(y) + x)
        x = self.pool(x)
        x = torch.relu(self.wide(x))
        x = torch.relu(self.deep(x))
        x = x.mean(dim=(2, 3))
        return self.head(x)


def main() -> None:
    import iree.turbine.aot as aot

    torch.manual_seed(0)
    model = SmallCNN().eval()
    example = torch.randn(BATCH, 3, 32, 32)
    exported = aot.export(model, example)
    out = HERE / "cnn.mlir"
    exported.save_mlir(str(out))
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
