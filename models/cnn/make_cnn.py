"""Export the small CNN of `configs/cnn.yaml` to MLIR (run once; the output is committed).

Why a script and a committed file: the main job must run on a machine without torch, yet
the model must be a real network exported by a real frontend. Re-run with
`python models/cnn/make_cnn.py` (needs `pip install torch==2.13.0 iree-turbine`).
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch  # noqa: E402
from suite import SmallCNN  # noqa: E402  (one definition, shared with the model suite)

HERE = pathlib.Path(__file__).resolve().parent
BATCH = 8


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
