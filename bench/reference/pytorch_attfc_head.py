"""PyTorch reference of one AttFC head step (head only, no backbone), to put bench:heads' AttFC numbers
next to a native engine measured on the same machine and day.

Same algorithm as attfc's head: unit queries q [B, D] (with gradient), GCCs from K-1 = 2 raw key
embeddings g per sample, c = normalize(sum_j a_j g_j) with a = softmax_j cos(q, g_j) (the query only
weighs the keys; it is not part of the centre), a DCC of S unit centres with labels, logits [q.gcc | q.DCC^T] with the DCC
slots of each sample's own label masked, ArcFace (s 64, m 0.5) on the positive column with the
margin passed straight through in the backward pass (as attfc's default), mean cross-entropy, backward to q, then the B GCCs are enqueued. The DCC is dense here (torch materialises
the B x S logits and mask, as the original implementation does).

Needs Debian's python3-torch (1.13) and, for a fast BLAS, libopenblas0-pthread:
  apt-get install python3-torch libopenblas0-pthread
  python3 bench/reference/pytorch_attfc_head.py --n 2059906 --threads 2
"""
import argparse
import math
import time

import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--n', type=int, default=2_059_906)
    p.add_argument('--ratio', type=float, default=0.3)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--dim', type=int, default=512)
    p.add_argument('--steps', type=int, default=3)
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    B, D = a.batch, a.dim
    S = int(a.ratio * a.n) // B * B
    s, m = 64.0, 0.5
    dcc = torch.nn.functional.normalize(torch.randn(S, D), dim=1)
    dcc_labels = torch.randint(0, a.n, (S,))
    ptr = 0
    times = []
    for step in range(a.steps + 1):
        labels = torch.randint(0, a.n, (B,))
        q = torch.nn.functional.normalize(torch.randn(B, D), dim=1).requires_grad_(True)
        keys = torch.randn(B, 2, D)  # raw key embeddings
        t0 = time.perf_counter()
        with torch.no_grad():
            att = torch.softmax(torch.einsum('bd,bkd->bk', q, torch.nn.functional.normalize(keys, dim=2)), dim=1)
            gcc = torch.nn.functional.normalize((att.unsqueeze(2) * keys).sum(1), dim=1)
        pos = (q * gcc).sum(1).clamp(-1, 1)
        with torch.no_grad():
            margin_shift = torch.cos(torch.acos(pos) + m) - pos
        pos_logit = pos + margin_shift
        neg = q @ dcc.t()  # [B, S]
        mask = labels.unsqueeze(1) == dcc_labels.unsqueeze(0)
        neg = neg.masked_fill(mask, -1e9).clamp(-1, 1)
        logits = torch.cat([pos_logit.unsqueeze(1), neg], 1) * s
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(B, dtype=torch.long))
        loss.backward()
        with torch.no_grad():
            idx = (torch.arange(B) + ptr) % S
            dcc[idx] = gcc
            dcc_labels[idx] = labels
            ptr = (ptr + B) % S
        dt = time.perf_counter() - t0
        if step > 0:
            times.append(dt)
        print(f'step {step}: {dt:.3f} s, loss {loss.item():.4g}', flush=True)
    times.sort()
    print(f'PyTorch {torch.__version__}, {a.threads} threads, N {a.n:,}, S {S:,}, B {B}: median head step {times[len(times) // 2]:.3f} s')


if __name__ == '__main__':
    main()
