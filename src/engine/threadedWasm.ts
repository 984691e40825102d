// Loads tfjs-backend-wasm's multithreaded SIMD build in Node.
//
// The stock init() refuses threads in Node (the WASM_HAS_MULTITHREAD_SUPPORT flag is false there) and,
// if forced, hands Emscripten a blob: URL for the pthread worker, which Node's Worker rejects. We write
// the worker source to a real file, point Emscripten at it, and register a BackendWasm built on the
// threaded module.
import * as tf from '@tensorflow/tfjs-core';
import { BackendWasm, setThreadsCount, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);

interface ThreadedModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  PThread: { terminateAllThreads(): void };
  tfjs?: unknown;
}

let loaded: ThreadedModule | null = null;

/** The directory holding the wasm builds shipped in the npm package. */
export function wasmOutDir(): string {
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js'));
}

/** Writes the pthread worker script to a real file once per content (Node's Worker cannot load blob: URLs). */
function workerFile(dir: string): string {
  const { wasmWorkerContents } = require(path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents: string;
  };
  // Same escaping as the stock init(): the source holds literal "\n" sequences inside strings.
  const contents = wasmWorkerContents.replace(/\n/g, '\\n');
  const target = path.join(os.tmpdir(), `attfc-tfjs-wasm-4.22.0-${process.getuid?.() ?? 0}.worker.js`);
  if (!existsSync(target) || readFileSync(target, 'utf8') !== contents) {
    mkdirSync(path.dirname(target), { recursive: true });
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, contents);
    // rename is atomic, so concurrent processes never read a half-written worker
    require('node:fs').renameSync(tmp, target);
  }
  return target;
}

/**
 * Registers the threaded wasm backend under the name 'wasm' and returns the thread count in use.
 * The C++ side caps threads at logical_cores/2 (it assumes hyper-threading), so os.cpus() is
 * doubled while the module instantiates; `threads` is then honoured up to that doubled count.
 */
export async function registerThreadedWasm(threads: number): Promise<number> {
  const dir = wasmOutDir();
  const mainJs = path.join(dir, 'tfjs-backend-wasm-threaded-simd.js');
  const factory = require(mainJs) as (cfg: Record<string, unknown>) => Promise<ThreadedModule>;
  const worker = workerFile(dir);
  const origCpus = os.cpus;
  os.cpus = () => {
    const c = origCpus.call(os);
    return c.concat(c);
  };
  let mod: ThreadedModule;
  try {
    mod = await factory({
      locateFile: (p: string, prefix: string) =>
        p.endsWith('.worker.js')
          ? worker
          : p.endsWith('.wasm')
            ? path.join(dir, 'tfjs-backend-wasm-threaded-simd.wasm')
            : prefix + p,
      mainScriptUrlOrBlob: mainJs,
    });
  } finally {
    os.cpus = origCpus;
  }
  mod.tfjs = {
    init: mod.cwrap('init', null, []),
    initWithThreadsCount: mod.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: mod.cwrap('get_threads_count', 'number', []),
    registerTensor: mod.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: mod.cwrap('dispose_data', null, ['number']),
    dispose: mod.cwrap('dispose', null, []),
  };
  loaded = mod;
  setThreadsCount(threads);
  tf.removeBackend('wasm');
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  tf.registerBackend('wasm', () => new BackendWasm(mod as any), 3);
  return threads;
}

export function threadedThreadsCount(): number {
  return getThreadsCount();
}

/** Stops the pthread pool; without it the pooled workers keep Node alive forever. */
export function terminateWasmThreads(): void {
  if (loaded) {
    try {
      loaded.PThread.terminateAllThreads();
    } catch {
      /* already gone */
    }
    loaded = null;
  }
}
