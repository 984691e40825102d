// Loads the optional libtorch addon (native/build/attfc_torch.node, built by `npm run build:native`).
// Never throws: a missing or unloadable addon is a reason string, so `auto` can fall back to WASM.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Tensor dtypes the addon reads and writes. tfjs tensors use the first three. */
export type NativeDtype = 'float32' | 'int32' | 'bool' | 'float64' | 'int64' | 'uint8';

/** What the addon says about the libtorch it was built against. */
export interface TorchBuildInfo {
  version: string;
  cuda: boolean;
  cudaDevices: number;
  mkldnn: boolean;
  openmp: boolean;
  /** 'openblas', 'mkl', 'blis', 'reference' (netlib: slow), 'other' or 'unknown'. */
  blas: string;
  blasPath: string;
  blasDetail: string;
  config: string;
}

/** The Node-API surface of native/attfc_torch.cc. Handles are indices into the addon's tensor table. */
export interface TorchAddon {
  fromArray(values: ArrayBufferView, shape: number[], dtype: NativeDtype, device: string): number;
  toArray(handle: number): Float32Array | Int32Array | Uint8Array | Float64Array;
  free(handle: number): void;
  /** [dtype, ...shape] */
  meta(handle: number): [NativeDtype, ...number[]];
  op(name: string, overload: string): number;
  schema(id: number): string;
  /** Positional arguments converted by the operator's schema; tensors are handles. */
  call(id: number, args: unknown[]): unknown;
  memory(): { handles: number; bytes: number };
  info(): TorchBuildInfo;
  setThreads(n: number): number;
  getThreads(): number;
  /**
   * AttFC's fused DCC pass over a chunk's [B, c] cosines (masked slots at -inf), in place: z becomes
   * the shifted exponentials exp(s * (clamp(z) - m)) where -1 <= z <= 1 and 0 elsewhere; returns
   * [rowMax (raw max of z, float32 [B]), rowSum (sum of the terms, float64 [B])].
   */
  dccRows(z: number, scale: number): [number, number];
  /** PyTorch's SGD step in one pass over float32 CPU tensors: [w', v'] with v' = mu v + (g + wd w), w' = w - lr v'. */
  sgdStep(w: number, g: number, v: number, lr: number, momentum: number, weightDecay: number): [number, number];
  /** The caching CPU allocator (native/cpu_allocator.cc): free blocks kept for reuse, and its counters. */
  allocatorStats(): { cachedBytes: number; cachedBlocks: number; limitBytes: number; hits: number; misses: number; active: boolean };
  /** Gives every cached free block back to the system; returns how many. */
  emptyCache(): number;
  /** Parses a backbone program (src/backbones/nativeProgram.ts) into a native graph (native/graph_step.cc). */
  graphCreate(program: Int32Array): NativeGraph;
  /**
   * One forward pass of the graph over NHWC images `x`: [y, tape (mode 2) or null, new running mean and
   * variance of every batch norm (modes 1 and 2)]. Modes: 0 inference (folded batch norms), 1 training
   * without a tape, 2 training with a tape for graphBackward.
   */
  graphForward(graph: NativeGraph, x: number, params: number[], masks: (number | null)[], mode: 0 | 1 | 2): [number, number | null, number[]];
  /** The gradients of the parameters `wanted` (program indices) for the cotangent dy of the tape's output. */
  graphBackward(tape: number, dy: number, wanted: number[]): (number | null)[];
  /** New tensors k * m + q * (1 - m) for every pair (float32 CPU tensors of one shape each), in one call. */
  emaStep(ks: number[], qs: number[], momentum: number): number[];
  /** Wall time of the native graphs' work by kind, [ms, calls], since the last call; `on` starts or stops the timing. */
  graphProfile(on: boolean): Record<string, [number, number]>;

  // ---- c10d process group (native/process_group.cc): one per process; see engine/torch/processGroup.ts ----
  pgInit(options: ProcessGroupInit): { rank: number; worldSize: number; backend: string };
  /** Sum/max/min over the ranks of the tensors packed into one message: new handles, or a work id when async. */
  pgAllreduce(handles: number[], op: ReduceOpName, async: boolean): number[] | number;
  /** A persistent float32 buffer of `numel` values for pgBucketAllreduce; returns its id. */
  pgBucket(numel: number, device: string): number;
  /** Sums the tensors over the ranks in bucket `bucket`'s buffer: views of it (valid until the bucket's next use), or a work id. */
  pgBucketAllreduce(bucket: number, handles: number[], async: boolean): number[] | number;
  /** Every rank's tensor concatenated along dim 0 in rank order (same shape on every rank), or a work id. */
  pgAllgather(handle: number, async: boolean): number;
  pgBroadcast(handle: number, root: number): number;
  pgBarrier(): void;
  /** The result of an async collective. */
  pgWait(work: number): number[] | number;
  pgStoreSet(key: string, value: string): void;
  /** The value, or null when the key did not appear within timeoutMs. */
  pgStoreGet(key: string, timeoutMs: number): string | null;
  pgDestroy(): void;
}

export type ReduceOpName = 'sum' | 'max' | 'min';

export interface ProcessGroupInit {
  rank: number;
  worldSize: number;
  /** The rendezvous store's address (MASTER_ADDR) and port (MASTER_PORT). */
  host: string;
  port: number;
  /** Rank 0 starts the store (else every rank connects to one already running, e.g. torchrun's agent's). */
  hostStore: boolean;
  /** Key prefix in the store (one per torchrun attempt). */
  prefix: string;
  /** Timeout of the rendezvous and of every collective. */
  timeoutMs: number;
  backend: 'gloo' | 'nccl';
  /** Gloo: bind to this address... */
  deviceHost?: string;
  /** ...or to these network interfaces (GLOO_SOCKET_IFNAME, comma-separated); default: this host name's address. */
  ifname?: string;
}

/** An opaque native graph (freed when garbage-collected). */
export type NativeGraph = { readonly __nativeGraph: unique symbol };

/** Where the addon is looked for: ATTFC_TORCH_ADDON, else native/build/ at the package root. */
export function addonPath(): string {
  if (process.env.ATTFC_TORCH_ADDON) return process.env.ATTFC_TORCH_ADDON;
  // src/engine/torch/ and dist/engine/torch/ both sit three levels below the package root
  return fileURLToPath(new URL('../../../native/build/attfc_torch.node', import.meta.url));
}

let loaded: { addon: TorchAddon | null; reason: string } | null = null;

/** The addon, or null with the reason it cannot be used. Loaded once per thread. */
export function loadTorchAddon(): { addon: TorchAddon | null; reason: string } {
  if (loaded) return loaded;
  const file = addonPath();
  if (!existsSync(file)) {
    loaded = { addon: null, reason: `the libtorch addon is not built (${file} is missing; run \`npm run build:native\`)` };
    return loaded;
  }
  // libtorch's OpenMP threads spin while they wait for work by default; between two kernels the JS
  // thread, the GC and the data workers then compete with spinning threads for the cores. Sleeping
  // waits made steps 10-25% faster on 2 cores (IResNet-18 and MobileFaceNet steps, the demo; BENCHMARKS.md).
  // libgomp reads the variable when it loads, so it is set before the addon (and libtorch) load.
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  // libtorch's c10d logs every connection failure to stderr through glog, which attfc reports itself
  // in one line; GLOG_minloglevel=0 (set before starting attfc) shows them again for debugging
  process.env.GLOG_minloglevel ??= '3';
  try {
    const addon = createRequire(import.meta.url)(file) as TorchAddon;
    loaded = { addon, reason: '' };
  } catch (e) {
    const msg = ((e as Error).message ?? String(e)).split('\n')[0];
    loaded = { addon: null, reason: `the libtorch addon ${file} does not load (${msg}); rebuild it with \`npm run build:native\`` };
  }
  return loaded;
}
