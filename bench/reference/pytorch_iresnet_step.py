"""PyTorch reference of bench:engine's and bench:steps' IResNet rows: one IResNet training step (default
IResNet-18 at 112x112, batch 8) with a 10k-class ArcFace full-FC head, gradient clipping (backbone,
norm 5) and momentum SGD, so that attfc's number can be put next to a native engine measured on the same
machine and day.

The network is insightface's IResNet (BN-conv-BN-PReLU-conv-BN basic blocks, stages of 2/2/2/2 blocks
for depth 18 and 3/4/14/3 for depth 50 at 64/128/256/512 channels, stride-2 first block per stage,
BN-dropout-FC-BN embedding to 512): the same 24,025,600 (IResNet-18) and 43,590,848 (IResNet-50)
parameters as attfc's `r18` and `r50` backbones.

Needs Debian's python3-torch (1.13) and libopenblas0-pthread:
  apt-get install python3-torch libopenblas0-pthread
  /usr/bin/python3 bench/reference/pytorch_iresnet_step.py --threads 2 [--depth 50 --batch 32]
"""
import argparse

import torch
from torch import nn

from step_common import add_step_arguments, time_steps


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-5))

    def forward(self, x):
        y = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return y + (self.down(x) if self.down is not None else x)


LAYERS = {18: (2, 2, 2, 2), 50: (3, 4, 14, 3)}


class IResNet(nn.Module):
    def __init__(self, depth=18, size=112, dim=512):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64, eps=1e-5), nn.PReLU(64))
        blocks, cin = [], 64
        for cout, n in zip((64, 128, 256, 512), LAYERS[depth]):
            blocks += [Block(cin, cout, 2)] + [Block(cout, cout, 1) for _ in range(n - 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        side = size // 16
        self.bn = nn.BatchNorm2d(512, eps=1e-5)
        self.drop = nn.Dropout(0.0)
        self.fc = nn.Linear(512 * side * side, dim)
        self.features = nn.BatchNorm1d(dim, eps=1e-5)

    def forward(self, x):
        x = self.bn(self.blocks(self.stem(x)))
        return self.features(self.fc(self.drop(torch.flatten(x, 1))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--depth', type=int, default=18, choices=sorted(LAYERS))
    add_step_arguments(p, batch=8)
    a = p.parse_args()
    torch.manual_seed(0)
    med, _, params = time_steps(IResNet(a.depth, a.size), a)
    print(f'PyTorch {torch.__version__}, {a.threads} threads, IResNet-{a.depth} ({params:,} backbone params), '
          f'{a.size}x{a.size}, batch {a.batch}, {a.classes:,}-class ArcFace full FC{", channels-last" if a.channels_last else ""}: median step {med:.3f} s '
          f'= {a.batch / med:.2f} img/s')


if __name__ == '__main__':
    main()
