"""PyTorch reference of a MobileFaceNet training step: the network insightface's arcface_torch defines
(backbones/mobilefacenet.py: conv-BN-PReLU blocks, inverted bottlenecks with 3x3 depthwise convs, the
GDC head), with attfc's two generalisations: `--width` scales every channel count as attfc's
widthMultiplier does (rounded, at least 8; 1 keeps the reference) and the GDC kernel is the final
feature-map side (7 at 112x112), so the demo's model (MobileFaceNet x0.5 at 32x32) can be measured too.

One step (step_common.py) = forward, a 10k-class ArcFace full-FC head (s 64, m 0.5), backward, gradient
clipping of the backbone (norm 5) and momentum SGD: the same work as attfc's bench step (bench/lib/step.ts).
`--profile` also prints torch.autograd.profiler's per-operator table of one step.

Needs Debian's python3-torch (1.13) and libopenblas0-pthread:
  /usr/bin/python3 bench/reference/pytorch_mobilefacenet_step.py --size 112 --batch 32 --threads 2
"""
import argparse

import torch
from torch import nn

from step_common import add_step_arguments, time_steps


def width(c, m):
    return c if m == 1 else max(8, int(c * m + 0.5))


def gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def conv_bn(cin, cout, k, stride, pad, groups=1, act=True):
    mods = [nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        mods.append(nn.PReLU(cout))
    return nn.Sequential(*mods)


class Bottleneck(nn.Module):
    """1x1 expand + PReLU, 3x3 depthwise (stride) + PReLU, 1x1 linear projection; a skip when residual."""

    def __init__(self, cin, cout, hidden, stride, residual):
        super().__init__()
        self.residual = residual
        self.body = nn.Sequential(conv_bn(cin, hidden, 1, 1, 0), conv_bn(hidden, hidden, 3, stride, 1, groups=hidden),
                                  conv_bn(hidden, cout, 1, 1, 0, act=False))

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileFaceNet(nn.Module):
    def __init__(self, size=112, dim=512, scale=2, m=1.0, blocks=(1, 4, 6, 2)):
        super().__init__()
        c1, c2 = width(64 * scale, m), width(128 * scale, m)
        h128, h256, h512, sep = width(128, m), width(256, m), width(512, m), width(512, m)
        mods = [conv_bn(3, c1, 3, 2, 1)]
        side = (size - 1) // 2 + 1
        assert blocks[0] == 1
        mods.append(conv_bn(c1, c1, 3, 1, 1, groups=gcd(c1, width(64, m))))

        def stage(cin, cout, hidden_down, hidden, n):
            nonlocal side
            out = [Bottleneck(cin, cout, hidden_down, 2, False)]
            side = (side - 1) // 2 + 1
            out += [Bottleneck(cout, cout, hidden, 1, True) for _ in range(n)]
            return out

        mods += stage(c1, c1, h128, h128, blocks[1])
        mods += stage(c1, c2, h256, h256, blocks[2])
        mods += stage(c2, c2, h512, h256, blocks[3])
        mods.append(conv_bn(c2, sep, 1, 1, 0))
        mods.append(conv_bn(sep, sep, side, 1, 0, groups=sep, act=False))
        self.body = nn.Sequential(*mods)
        self.fc = nn.Linear(sep, dim, bias=False)
        self.features = nn.BatchNorm1d(dim)
        for mod in self.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(mod.weight, mode='fan_out', nonlinearity='relu')

    def forward(self, x):
        return self.features(self.fc(torch.flatten(self.body(x), 1)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--scale', type=int, default=2, help="insightface's scale (mbf: 2)")
    p.add_argument('--width', type=float, default=1.0, help="attfc's width multiplier")
    add_step_arguments(p, batch=32)
    a = p.parse_args()
    torch.manual_seed(0)
    med, times, params = time_steps(MobileFaceNet(a.size, 512, a.scale, a.width), a)
    print(f'PyTorch {torch.__version__}, {a.threads} threads, MobileFaceNet scale {a.scale} x{a.width:g} '
          f'({params:,} backbone params), {a.size}x{a.size}, batch {a.batch}, {a.classes:,}-class ArcFace full FC'
          f'{", channels-last" if a.channels_last else ""}: median step {med:.3f} s = {a.batch / med:.2f} img/s '
          f'(range {times[0]:.3f}-{times[-1]:.3f})')


if __name__ == '__main__':
    main()
