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
import math
import time

import torch
from torch import nn
import torch.nn.functional as F


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


def arcface_ce(emb, weight, labels, s=64.0, m=0.5):
    cos = F.linear(F.normalize(emb), F.normalize(weight)).clamp(-1 + 1e-7, 1 - 1e-7)
    target = cos.gather(1, labels[:, None])
    with_margin = torch.cos(torch.acos(target) + m)
    logits = cos.scatter(1, labels[:, None], with_margin) * s
    return F.cross_entropy(logits, labels)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--depth', type=int, default=18, choices=sorted(LAYERS))
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--size', type=int, default=112)
    p.add_argument('--classes', type=int, default=10000)
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--channels-last', action='store_true', help='run the network in channels-last memory')
    p.add_argument('--profile', action='store_true', help="print torch.autograd.profiler's table of one more step")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = IResNet(a.depth, a.size)
    weight = nn.Parameter(torch.randn(a.classes, 512) * 0.01)
    params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.SGD([*net.parameters(), weight], lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, a.size, a.size)
    if a.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    labels = torch.tensor([(i * 7919) % a.classes for i in range(a.batch)])

    def one_step():
        opt.zero_grad(set_to_none=True)
        loss = arcface_ce(net(x), weight, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        return loss

    times = []
    for step in range(a.steps + 1):
        t0 = time.perf_counter()
        loss = one_step()
        dt = time.perf_counter() - t0
        print(f'step {step}: {dt:.3f} s, loss {loss.item():.3f}' + (' (warm-up)' if step == 0 else ''))
        if step > 0:
            times.append(dt)
    if a.profile:
        with torch.autograd.profiler.profile() as prof:
            one_step()
        print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=25))
    times.sort()
    med = times[len(times) // 2]
    print(f'PyTorch {torch.__version__}, {a.threads} threads, IResNet-{a.depth} ({params:,} backbone params), '
          f'{a.size}x{a.size}, batch {a.batch}, {a.classes:,}-class ArcFace full FC{", channels-last" if a.channels_last else ""}: median step {med:.3f} s '
          f'= {a.batch / med:.2f} img/s')


if __name__ == '__main__':
    main()
