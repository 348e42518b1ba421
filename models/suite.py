"""The model suite: small, real network shapes with fixed-seed random weights (nothing downloaded).

Each public function is a factory for the `torch` frontend (`factory: models/suite.py:NAME`)
and for `tune compare`: it returns an `nn.Module` in eval mode. The frontend seeds
torch before calling it; the factories seed again so that they are deterministic on their own.
Batch norm is folded into the preceding conv, as an inference deployment would do, with
non-trivial random statistics so that the folding changes the weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """A conv followed by a batch norm with random statistics, folded into one conv."""
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False).eval()
    bn = nn.BatchNorm2d(cout).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.1, 0.1)
    return fuse_conv_bn_eval(conv, bn)


class SmallCNN(nn.Module):
    """The core job's CNN: 3x3 convs with ReLU, one residual add, max pooling, a linear head."""

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


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 conv+BN, residual add), 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, 3, stride)
        self.conv2 = _conv_bn(cout, cout, 3)
        self.shortcut = _conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv1(x))
        return torch.relu(self.conv2(y) + self.shortcut(x))


class ResNetStack(nn.Module):
    """A ResNet-18-style stem and two stages (32 then 64 channels) on 32x32 images."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 32, 3)
        self.stage1 = nn.Sequential(BasicBlock(32, 32, 1), BasicBlock(32, 32, 1))
        self.stage2 = nn.Sequential(BasicBlock(32, 64, 2), BasicBlock(64, 64, 1))
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = self.stage2(self.stage1(x))
        return self.head(x.mean(dim=(2, 3)))


class DepthwiseSeparable(nn.Module):
    """MobileNet-v1 block: depthwise 3x3 conv+BN+ReLU6, pointwise 1x1 conv+BN+ReLU6."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.depthwise = _conv_bn(cin, cin, 3, stride, groups=cin)
        self.pointwise = _conv_bn(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu6(self.depthwise(x))
        return nn.functional.relu6(self.pointwise(x))


class MobileNetLike(nn.Module):
    """A MobileNet-v1-style net on 64x64 images: strided stem, five depthwise-separable blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 16, 3, 2)
        self.blocks = nn.Sequential(
            DepthwiseSeparable(16, 32, 1),
            DepthwiseSeparable(32, 64, 2),
            DepthwiseSeparable(64, 64, 1),
            DepthwiseSeparable(64, 128, 2),
            DepthwiseSeparable(128, 128, 1),
        )
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu6(self.stem(x))
        x = self.blocks(x)
        return self.head(x.mean(dim=(2, 3)))


class BertEncoderLayer(nn.Module):
    """One BERT-base encoder layer (hidden 768, 12 heads, FFN 3072, post-LN, GELU).

    Attention is written out (matmul, scale, softmax, matmul) rather than through
    `scaled_dot_product_attention`, the way BERT implementations of its era compute it.
    """

    def __init__(self, hidden: int = 768, heads: int = 12, ffn: int = 3072) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden)
        self.intermediate = nn.Linear(hidden, ffn)
        self.output = nn.Linear(ffn, hidden)
        self.out_norm = nn.LayerNorm(hidden)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        context = torch.matmul(torch.softmax(scores, dim=-1), v)
        context = context.transpose(1, 2).reshape(b, s, h)
        x = self.attn_norm(x + self.attn_out(context))
        y = self.output(nn.functional.gelu(self.intermediate(x)))
        return self.out_norm(x + y)


class SdpaBlock(nn.Module):
    """A pre-LN transformer block written the usual PyTorch way: fused QKV projection,
    `F.scaled_dot_product_attention`, GELU MLP (4x hidden). `causal` makes it a GPT-2-style
    decoder block, otherwise a ViT-style encoder block."""

    def __init__(self, hidden: int, heads: int, causal: bool) -> None:
        super().__init__()
        self.heads = heads
        self.causal = causal
        self.norm1 = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, 4 * hidden)
        self.fc2 = nn.Linear(4 * hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, s, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        x = x + self.proj(y.transpose(1, 2).reshape(b, s, h))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))


class MLP(nn.Module):
    """A plain multi-layer perceptron: 512 -> 1024 -> 1024 -> 1024 -> 10 with ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(512, 1024),
            nn.ReLU(),
            nn.Linear(1024, 1024),
            nn.ReLU(),
            nn.Linear(1024, 1024),
            nn.ReLU(),
            nn.Linear(1024, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MatMul(nn.Module):
    """One matrix product of two inputs (no weights): a pure GEMM, packing included."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


# Real-size networks at batch 1, 224x224, as torchvision defines their architectures (written
# out here: nothing is downloaded, the weights are fixed-seed random, batch norm folded).


class Bottleneck(nn.Module):
    """ResNet-50 bottleneck: 1x1 reduce, 3x3 (strided), 1x1 expand (x4), residual add."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * 4
        self.conv1 = _conv_bn(cin, width, 1)
        self.conv2 = _conv_bn(width, width, 3, stride)
        self.conv3 = _conv_bn(width, cout, 1)
        self.shortcut = _conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv1(x))
        y = torch.relu(self.conv2(y))
        return torch.relu(self.conv3(y) + self.shortcut(x))


class ResNet(nn.Module):
    """torchvision's ResNet: 7x7/2 stem, 3x3/2 max pool, four stages, global average pool, fc."""

    def __init__(self, block: type[nn.Module], layers: list[int], expansion: int, classes: int = 1000) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 64, 7, 2)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        stages, cin = [], 64
        for i, count in enumerate(layers):
            width = 64 * 2**i
            blocks = []
            for j in range(count):
                blocks.append(block(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width * expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.stem(x)))
        x = self.stages(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _make_divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class SqueezeExcite(nn.Module):
    """MobileNetV3's squeeze-excite: global average pool, 1x1 reduce + ReLU, 1x1 expand + hardsigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeeze = _make_divisible(channels // 4)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = nn.functional.adaptive_avg_pool2d(x, 1)
        s = nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * s


class InvertedResidual(nn.Module):
    """MobileNetV3 block: 1x1 expand, depthwise kxk (strided), optional SE, 1x1 project."""

    def __init__(self, cin: int, k: int, expand: int, cout: int, se: bool, hswish: bool, stride: int) -> None:
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        layers: list[nn.Module] = []
        if expand != cin:
            layers += [_conv_bn(cin, expand, 1), act()]
        layers += [_conv_bn(expand, expand, k, stride, groups=expand), act()]
        if se:
            layers.append(SqueezeExcite(expand))
        layers.append(_conv_bn(expand, cout, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


# torchvision's mobilenet_v3_small: (kernel, expanded, out, SE, hardswish, stride) per block.
_MOBILENET_V3_SMALL = [
    (3, 16, 16, True, False, 2),
    (3, 72, 24, False, False, 2),
    (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2),
    (5, 240, 40, True, True, 1),
    (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1),
    (5, 144, 48, True, True, 1),
    (5, 288, 96, True, True, 2),
    (5, 576, 96, True, True, 1),
    (5, 576, 96, True, True, 1),
]


class MobileNetV3Small(nn.Module):
    """torchvision's MobileNetV3-small: hardswish stem, 11 inverted residual blocks (depthwise
    3x3 and 5x5, squeeze-excite), 1x1 conv to 576, pooled, a 1024-wide hardswish classifier."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 16, 3, 2)
        blocks, cin = [], 16
        for k, expand, cout, se, hswish, stride in _MOBILENET_V3_SMALL:
            blocks.append(InvertedResidual(cin, k, expand, cout, se, hswish, stride))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.last = _conv_bn(cin, 576, 1)
        self.classifier = nn.Sequential(nn.Linear(576, 1024), nn.Hardswish(), nn.Linear(1024, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.hardswish(self.stem(x))
        x = nn.functional.hardswish(self.last(self.blocks(x)))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _build(cls: type[nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    return cls().eval()


def cnn() -> nn.Module:
    return _build(SmallCNN)


def resnet() -> nn.Module:
    return _build(ResNetStack)


def mobilenet() -> nn.Module:
    return _build(MobileNetLike)


def bert_layer() -> nn.Module:
    return _build(BertEncoderLayer)


def mlp() -> nn.Module:
    return _build(MLP)


def matmul() -> nn.Module:
    return _build(MatMul)


def gpt2_block() -> nn.Module:
    """GPT-2-small-sized causal decoder block (hidden 768, 12 heads); the job feeds 1x128x768."""
    torch.manual_seed(0)
    return SdpaBlock(768, 12, causal=True).eval()


def vit_block() -> nn.Module:
    """ViT-small-sized encoder block (hidden 384, 6 heads); the job feeds 4x197x384."""
    torch.manual_seed(0)
    return SdpaBlock(384, 6, causal=False).eval()


def resnet18() -> nn.Module:
    """torchvision's ResNet-18 architecture (BasicBlock x [2, 2, 2, 2]); the job feeds 1x3x224x224."""
    torch.manual_seed(0)
    return ResNet(BasicBlock, [2, 2, 2, 2], 1).eval()


def resnet50() -> nn.Module:
    """torchvision's ResNet-50 architecture (Bottleneck x [3, 4, 6, 3]); the job feeds 1x3x224x224."""
    torch.manual_seed(0)
    return ResNet(Bottleneck, [3, 4, 6, 3], 4).eval()


def mobilenet_v3_small() -> nn.Module:
    """torchvision's MobileNetV3-small architecture; the job feeds 1x3x224x224."""
    return _build(MobileNetV3Small)
