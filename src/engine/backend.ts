// Backend choice: native TensorFlow (tfjs-node[-gpu]) when the user installed it, else libtorch through
// attfc's addon when it is built, else the WASM backend with SIMD and threads plus our kernel pack, else
// the pure-JS cpu backend.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerAllGradients } from './gradients.js';
import os from 'node:os';
import { registerThreadedWasm, terminateWasmThreads, threadedThreadsCount } from './threadedWasm.js';
import { registerKernelPack } from './kernels/index.js';
import { installWasmOomGuard } from './memory.js';
import { AttfcError } from '../errors.js';
import { registerTorchBackend, torchAvailable, type TorchDevice, type TorchEngineInfo } from './torch/index.js';

export type BackendName = 'auto' | 'tensorflow' | 'torch' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'tensorflow', 'torch', 'wasm', 'cpu'];
export const DEVICE_NAMES: readonly TorchDevice[] = ['cpu', 'cuda'];

export interface EngineOptions {
  /** 'auto' (default) picks tensorflow, then torch, then wasm, then cpu. Env: ATTFC_BACKEND. */
  backend?: BackendName;
  /** WASM threads or libtorch intra-op threads (default: all cores). Env: ATTFC_THREADS. 1 loads WASM's single-thread SIMD build. */
  threads?: number;
  /** Backend torch only: 'cuda' when libtorch has CUDA and sees a GPU, else 'cpu' (default). Env: ATTFC_DEVICE. */
  device?: TorchDevice;
  /** Backend torch on cuda: which GPU (a distributed rank's LOCAL_RANK); default the current one. */
  deviceIndex?: number;
  /** Register the fast/missing WASM gradient kernels (default true; false measures stock tfjs). */
  kernelPack?: boolean;
  /** Print the one-line engine banner to stderr (default true). */
  log?: boolean | ((line: string) => void);
}

export interface EngineInfo {
  backend: 'tensorflow' | 'torch' | 'wasm' | 'cpu';
  /** Native package in use when backend is 'tensorflow'. */
  nativePackage?: string;
  /** libtorch version, device, threads and BLAS when backend is 'torch'. */
  torch?: Omit<TorchEngineInfo, 'build'>;
  threads: number;
  simd: boolean;
  kernelPack: boolean;
  tfjsVersion: string;
}

let current: EngineInfo | null = null;
let pending: Promise<EngineInfo> | null = null;

export function engineInfo(): EngineInfo | null {
  return current;
}

export function describeEngine(i: EngineInfo): string {
  if (i.backend === 'tensorflow') return `backend tensorflow (${i.nativePackage}, native)`;
  if (i.backend === 'torch' && i.torch)
    return `backend torch (libtorch ${i.torch.libtorch}, ${i.torch.device}, ${i.threads} thread${i.threads === 1 ? '' : 's'}, BLAS ${i.torch.blas})`;
  if (i.backend === 'wasm')
    return `backend wasm (${i.simd ? 'SIMD' : 'no SIMD'}, ${i.threads} thread${i.threads === 1 ? '' : 's'}, kernel pack ${i.kernelPack ? 'on' : 'off'})`;
  return 'backend cpu (pure JavaScript, slow: install @tensorflow/tfjs-node or use --backend wasm)';
}

function envBackend(): BackendName | undefined {
  const v = process.env.ATTFC_BACKEND;
  if (!v) return undefined;
  if (!(BACKEND_NAMES as readonly string[]).includes(v))
    throw new AttfcError(`ATTFC_BACKEND=${v}: expected one of ${BACKEND_NAMES.join(', ')}`);
  return v as BackendName;
}

function envDevice(): TorchDevice | undefined {
  const v = process.env.ATTFC_DEVICE;
  if (!v) return undefined;
  if (!(DEVICE_NAMES as readonly string[]).includes(v)) throw new AttfcError(`ATTFC_DEVICE=${v}: expected one of ${DEVICE_NAMES.join(', ')}`);
  return v as TorchDevice;
}

function envThreads(): number | undefined {
  const v = process.env.ATTFC_THREADS;
  if (!v) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new AttfcError(`ATTFC_THREADS=${v}: expected a whole number >= 1`);
  return n;
}

async function tryNative(): Promise<string | null> {
  for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(name);
      if (tf.findBackend('tensorflow') || tf.engine().registryFactory['tensorflow']) return name;
    } catch {
      /* not installed, or its native binary is missing */
    }
  }
  return null;
}

/**
 * The backend initEngine would pick with these options, without initialising it (the trainer plans
 * WASM's data-parallel replicas before the engine starts).
 */
export async function chooseBackend(options: EngineOptions = {}): Promise<EngineInfo['backend']> {
  if (current) return current.backend;
  const wanted = options.backend ?? envBackend() ?? 'auto';
  if (wanted !== 'auto') return wanted;
  if (await tryNative()) return 'tensorflow';
  return torchAvailable().ok ? 'torch' : 'wasm';
}

/**
 * Selects and initialises the compute backend once per process; later calls return the same info.
 * Explicit options win over ATTFC_BACKEND / ATTFC_THREADS, which win over the defaults.
 */
export function initEngine(options: EngineOptions = {}): Promise<EngineInfo> {
  if (current) return Promise.resolve(current);
  if (!pending) pending = doInit(options).finally(() => (pending = null));
  return pending;
}

async function doInit(options: EngineOptions): Promise<EngineInfo> {
  const wanted = options.backend ?? envBackend() ?? 'auto';
  const threads = Math.max(1, options.threads ?? envThreads() ?? os.cpus().length);
  await registerAllGradients();
  const pack = options.kernelPack ?? true;
  const device = options.device ?? envDevice();
  const notes: string[] = [];
  let info: EngineInfo | null = null;
  if (device && wanted !== 'torch' && wanted !== 'auto') throw new AttfcError(`--device ${device} applies to backend torch only (the backend is ${wanted})`);

  if (wanted === 'auto' || wanted === 'tensorflow') {
    const native = await tryNative();
    if (native) {
      await tf.setBackend('tensorflow');
      info = { backend: 'tensorflow', nativePackage: native, threads: os.cpus().length, simd: true, kernelPack: false, tfjsVersion: tf.version_core };
    } else if (wanted === 'tensorflow') {
      throw new AttfcError('backend tensorflow: neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node can be loaded; run `npm install @tensorflow/tfjs-node` or use --backend wasm');
    }
  }
  if (!info && (wanted === 'auto' || wanted === 'torch')) {
    const available = torchAvailable();
    if (available.ok) {
      const t = registerTorchBackend({ threads, device, ...(options.deviceIndex !== undefined ? { deviceIndex: options.deviceIndex } : {}) });
      if (!(await tf.setBackend('torch'))) throw new Error('tf.setBackend(torch) returned false');
      const { build, ...torch } = t;
      info = { backend: 'torch', torch, threads: t.threads, simd: true, kernelPack: false, tfjsVersion: tf.version_core };
      if (build.blas === 'reference')
        notes.push('warning: libtorch calls the reference BLAS (matrix products ~7 GFLOPS); install OpenBLAS: apt-get install -y libopenblas0-pthread');
    } else if (wanted === 'torch') {
      throw new AttfcError(`backend torch: ${available.reason}`);
    } else if (device) {
      throw new AttfcError(`--device ${device} needs backend torch, and ${available.reason}`);
    }
  }
  if (!info && (wanted === 'auto' || wanted === 'wasm')) {
    try {
      let used = 1;
      if (threads > 1) used = await registerThreadedWasm(threads);
      if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend(wasm) returned false');
      await tf.ready();
      if (threads > 1) used = threadedThreadsCount();
      installWasmOomGuard();
      if (pack) registerKernelPack();
      const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean;
      info = { backend: 'wasm', threads: used, simd, kernelPack: pack, tfjsVersion: tf.version_core };
    } catch (e) {
      if (wanted === 'wasm') throw e;
    }
  }
  if (!info) {
    await tf.setBackend('cpu');
    info = { backend: 'cpu', threads: 1, simd: false, kernelPack: false, tfjsVersion: tf.version_core };
  }
  current = info;
  const log = options.log ?? true;
  if (log) {
    for (const line of [`attfc: ${describeEngine(info)}`, ...notes.map((n) => `attfc: ${n}`)]) {
      if (typeof log === 'function') log(line);
      else process.stderr.write(line + '\n');
    }
  }
  return info;
}

/** Releases the backend's worker threads so the process can exit. Safe to call more than once. */
export function shutdownEngine(): void {
  terminateWasmThreads();
}
