"""Tiny torch models for the frontend tests (factories for `model.factory`)."""

import torch
from torch import nn


class TinyConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        return torch.softmax(self.fc(y.mean(dim=(2, 3))), dim=-1)


def tiny_convnet() -> nn.Module:
    torch.manual_seed(0)
    return TinyConvNet().eval()


def tiny_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(128, 96), nn.ReLU(), nn.Linear(96, 16)).eval()


def broken() -> nn.Module:
    raise RuntimeError("weights file missing")


def not_a_module():
    return 3


class TinyMatMul(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


def tiny_matmul() -> nn.Module:
    return TinyMatMul().eval()


def tiny_mlp_bf16() -> nn.Module:
    """The tiny MLP cast to bf16 as users deploy it (`model.to(torch.bfloat16)`)."""
    return tiny_mlp().to(torch.bfloat16)
