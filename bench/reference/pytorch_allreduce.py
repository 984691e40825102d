# PyTorch's own Gloo allreduce, the reference for attfc's (bench:distributed): one rank of a 2-rank
# torch.distributed group on loopback (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from the environment),
# summing float32 tensors of the sizes given in place, a persistent tensor per size, as DDP's buckets
# are. Rank 0 prints one JSON line: per size the median milliseconds of `iters` allreduces, each
# started after a barrier.
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist


def main() -> None:
    sizes = [int(s) for s in sys.argv[1].split(',')]
    iters = int(sys.argv[2])
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method='env://')
    out = []
    for n in sizes:
        x = torch.ones(n, dtype=torch.float32)
        for _ in range(2):  # warm-up: first touches of the buffers
            dist.all_reduce(x)
        times = []
        for _ in range(iters):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(x)
            times.append((time.perf_counter() - t0) * 1000)
        out.append({'floats': n, 'ms': statistics.median(times), 'all': times})
    dist.barrier()
    dist.destroy_process_group()
    if int(os.environ['RANK']) == 0:
        print(json.dumps({'torch': torch.__version__, 'sizes': out}))


if __name__ == '__main__':
    main()
