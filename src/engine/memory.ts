// WASM heap accounting and the out-of-memory guard.
//
// tfjs-backend-wasm never checks malloc(): when the 32-bit heap (at most 4 GiB) is exhausted, malloc
// returns 0, and the backend registers the tensor at address 0 and copies an upload's values there,
// silently overwriting other tensors and the runtime's static data. The guard wraps the module's
// malloc itself, so a failed allocation throws before anything is written.
import * as tf from '@tensorflow/tfjs-core';

/** Thrown when a tensor (or another allocation) cannot be placed on the WASM heap. */
export class WasmHeapExhaustedError extends Error {
  constructor(
    readonly shape: number[] | null,
    readonly dtype: string | null,
    readonly requestedBytes: number,
    readonly heapBytes: number,
  ) {
    const what = shape ? `[${shape.join(',')}] ${dtype} (${formatBytes(requestedBytes)}` : `${formatBytes(requestedBytes)} (`;
    super(
      `WASM heap exhausted allocating ${what}; heap ${formatBytes(heapBytes)} of at most 4 GiB): ` +
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

interface WasmModule {
  HEAPU8: Uint8Array;
  _malloc(bytes: number): number;
}
interface WasmBackendInternals {
  wasm: WasmModule;
  move(dataId: object, values: unknown, shape: number[], dtype: string, refCount: number): void;
  __attfcGuard?: boolean;
}

function wasmBackend(): WasmBackendInternals | null {
  if (tf.getBackend() !== 'wasm') return null;
  return tf.backend() as unknown as WasmBackendInternals;
}

/**
 * Makes every allocation through the module's malloc throw WasmHeapExhaustedError instead of returning
 * 0 (tensor uploads, kernel outputs, anything else the JS side allocates), and names the tensor's shape
 * in the error when the allocation was a tensor's. Idempotent.
 */
export function installWasmOomGuard(): boolean {
  const b = wasmBackend();
  if (!b) return false;
  if (b.__attfcGuard) return true;
  const wasm = b.wasm;
  // emscripten's lazy stub replaces Module._malloc with the raw export on its first call: the setter
  // takes that replacement as the function to wrap instead of letting it remove the guard.
  let raw = wasm._malloc;
  const guarded = (bytes: number): number => {
    const p = raw(bytes);
    if (p === 0 && bytes > 0) throw new WasmHeapExhaustedError(null, null, bytes, wasm.HEAPU8.length);
    return p;
  };
  Object.defineProperty(wasm, '_malloc', {
    configurable: true,
    get: () => guarded,
    set: (f: (bytes: number) => number) => {
      raw = f;
    },
  });
  const move = b.move.bind(b);
  b.move = function (dataId, values, shape, dtype, refCount) {
    try {
      move(dataId, values, shape, dtype, refCount);
    } catch (e) {
      if (e instanceof WasmHeapExhaustedError && e.shape === null) throw new WasmHeapExhaustedError(shape, dtype, e.requestedBytes, e.heapBytes);
      throw e;
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
