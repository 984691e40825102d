"""What the PyTorch training-step references share (pytorch_iresnet_step.py, pytorch_mobilefacenet_step.py):
the head (a 10k-class ArcFace full FC, s 64, m 0.5), the step (forward, loss, backward, clipping of the
backbone's gradients to norm 5, momentum SGD with weight decay), its command-line options, and the timing
of the steps with an optional torch.autograd.profiler table of one more step."""
import time

import torch
from torch import nn
import torch.nn.functional as F


def arcface_ce(emb, weight, labels, s=64.0, m=0.5):
    cos = F.linear(F.normalize(emb), F.normalize(weight)).clamp(-1 + 1e-7, 1 - 1e-7)
    target = cos.gather(1, labels[:, None])
    logits = cos.scatter(1, labels[:, None], torch.cos(torch.acos(target) + m)) * s
    return F.cross_entropy(logits, labels)


def add_step_arguments(p, batch):
    p.add_argument('--batch', type=int, default=batch)
    p.add_argument('--size', type=int, default=112)
    p.add_argument('--classes', type=int, default=10000)
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--channels-last', action='store_true', help='run the network in channels-last memory')
    p.add_argument('--profile', action='store_true', help="print torch.autograd.profiler's table of one more step")


def time_steps(net, a):
    """Times a.steps steps after a warm-up one; returns (median seconds, sorted times, backbone parameters)."""
    torch.set_num_threads(a.threads)
    weight = nn.Parameter(torch.randn(a.classes, 512) * 0.01)
    params = sum(q.numel() for q in net.parameters())
    opt = torch.optim.SGD([*net.parameters(), weight], lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, a.size, a.size)
    if a.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    labels = torch.tensor([(i * 7919) % a.classes for i in range(a.batch)])

    def step():
        opt.zero_grad(set_to_none=True)
        loss = arcface_ce(net(x), weight, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        return loss

    times = []
    for i in range(a.steps + 1):
        t0 = time.perf_counter()
        loss = step()
        dt = time.perf_counter() - t0
        print(f'step {i}: {dt:.3f} s, loss {loss.item():.3f}' + (' (warm-up)' if i == 0 else ''), flush=True)
        if i > 0:
            times.append(dt)
    if a.profile:
        with torch.autograd.profiler.profile() as prof:
            step()
        print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=25))
    times.sort()
    return times[len(times) // 2], times, params
