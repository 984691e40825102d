// WASM heap accounting and the out-of-memory guard.
//
// tfjs-backend-wasm never checks malloc(): when the 32-bit heap (at most 4 GiB) is exhausted, malloc
// returns 0 and the tensor is registered at address 0, silently overwriting other tensors and the
// runtime's static data. The guard turns that into a clear error.
import * as tf from '@tensorflow/tfjs-core';

/** Thrown when a tensor cannot be placed on the WASM heap. */
export class WasmHeapExhaustedError extends Error {
  constructor(
    readonly shape: number[],
    readonly dtype: string,
    readonly requestedBytes: number,
    readonly heapBytes: number,
  ) {
    super(
      `WASM heap exhausted allocating [${shape.join(',')}] ${dtype} (${formatBytes(requestedBytes)}; heap ${formatBytes(heapBytes)} of at most 4 GiB): ` +
        `reduce --batch-size or the input size, use a smaller backbone, or keep large tables outside the heap (--head pfc/attfc)`,
    );
    this.name = 'WasmHeapExhaustedError';
  }
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

interface WasmData { id: number; memoryOffset: number | null }
interface WasmBackendInternals {
  wasm: { HEAPU8: Uint8Array; tfjs: { disposeData(id: number): void }; _free(p: number): void };
  dataIdMap: { get(id: object): WasmData | undefined; delete(id: object): void };
  move(dataId: object, values: unknown, shape: number[], dtype: string, refCount: number): void;
  __attfcGuard?: boolean;
}

function wasmBackend(): WasmBackendInternals | null {
  if (tf.getBackend() !== 'wasm') return null;
  return tf.backend() as unknown as WasmBackendInternals;
}

/** Wraps BackendWasm.move so that a failed allocation throws instead of corrupting memory. Idempotent. */
export function installWasmOomGuard(): boolean {
  const b = wasmBackend();
  if (!b) return false;
  if (b.__attfcGuard) return true;
  const orig = b.move.bind(b);
  b.move = function (dataId, values, shape, dtype, refCount) {
    orig(dataId, values, shape, dtype, refCount);
    const d = b.dataIdMap.get(dataId);
    const size = shape.reduce((p, q) => p * q, 1);
    if (d && d.memoryOffset === 0 && size > 0) {
      b.wasm.tfjs.disposeData(d.id);
      b.dataIdMap.delete(dataId);
      const bytesPer = dtype === 'int32' || dtype === 'float32' ? 4 : 1;
      throw new WasmHeapExhaustedError(shape, dtype, size * bytesPer, b.wasm.HEAPU8.length);
    }
  };
  b.__attfcGuard = true;
  return true;
}

/**
 * Current size of the WASM heap in bytes. The heap only grows, so this is also its high-water mark.
 * Returns 0 on other backends.
 */
export function wasmHeapBytes(): number {
  const b = wasmBackend();
  return b ? b.wasm.HEAPU8.length : 0;
}

/** The largest heap a wasm32 instance can reach (emscripten's getHeapMax). */
export const WASM_HEAP_MAX_BYTES = 4294901760;

/** Memory figures for logs and benchmarks. */
export function memorySnapshot(): { heapBytes: number; rssBytes: number; numTensors: number; tensorBytes: number } {
  const m = tf.memory();
  return { heapBytes: wasmHeapBytes(), rssBytes: process.memoryUsage.rss(), numTensors: m.numTensors, tensorBytes: m.numBytes };
}
