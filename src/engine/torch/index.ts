// Backend 'torch': TensorFlow.js ops on libtorch through attfc's Node-API addon (optional; see
// native/). Registration, device and thread choice, and the facts the engine banner reports.
import * as tf from '@tensorflow/tfjs-core';
import { AttfcError } from '../../errors.js';
import { loadTorchAddon, type TorchBuildInfo } from './addon.js';
import { TorchBackend } from './backend.js';
import { registerTorchKernels } from './kernels/index.js';

export type TorchDevice = 'cpu' | 'cuda';

export interface TorchEngineInfo {
  libtorch: string;
  device: TorchDevice;
  threads: number;
  blas: string;
  build: TorchBuildInfo;
}

/** Whether the addon is built and loads here (and if not, why). */
export function torchAvailable(): { ok: boolean; reason: string } {
  const { addon, reason } = loadTorchAddon();
  return { ok: addon !== null, reason };
}

/**
 * Registers backend 'torch' with tfjs (not selected yet). `device` defaults to cuda when libtorch was
 * built with CUDA and sees a GPU, else cpu; asking for cuda without one is an error.
 */
export function registerTorchBackend(options: { threads: number; device?: TorchDevice; deviceIndex?: number }): TorchEngineInfo {
  const { addon, reason } = loadTorchAddon();
  if (!addon) throw new AttfcError(`backend torch: ${reason}`);
  const build = addon.info();
  const gpu = build.cuda && build.cudaDevices > 0;
  const device = options.device ?? (gpu ? 'cuda' : 'cpu');
  if (device === 'cuda' && !gpu)
    throw new AttfcError(
      build.cuda
        ? 'backend torch: --device cuda, but libtorch sees no CUDA device'
        : `backend torch: --device cuda, but libtorch ${build.version} was built without CUDA (rebuild with LIBTORCH=<a CUDA libtorch archive> npm run build:native)`,
    );
  // a distributed rank takes the GPU of its local rank (cuda:LOCAL_RANK), as torch.distributed scripts do
  const index = options.deviceIndex;
  if (device === 'cuda' && index !== undefined && index >= build.cudaDevices)
    throw new AttfcError(`backend torch: cuda:${index} was asked for (LOCAL_RANK ${index}) but libtorch sees ${build.cudaDevices} GPU${build.cudaDevices === 1 ? '' : 's'}: start at most that many ranks on this machine`);
  const where = device === 'cuda' && index !== undefined ? `cuda:${index}` : device;
  const threads = addon.setThreads(options.threads);
  if (!tf.engine().registryFactory['torch']) tf.registerBackend('torch', () => new TorchBackend(addon, where), 0);
  registerTorchKernels('torch');
  return { libtorch: build.version, device, threads, blas: build.blas, build };
}

export { TorchBackend } from './backend.js';
export { KernelNotImplementedError, TORCH_KERNELS } from './kernels/index.js';
