// Starting worker threads whose code is TypeScript when running from source. Node 20 does not apply
// `--import` loaders given in a Worker's execArgv, so the worker registers tsx itself before loading
// its entry: both hooks, as `node --import tsx` installs them (the engine require()s a CommonJS-only
// module through the CommonJS hook); from compiled JavaScript the .js entry is loaded directly.
import { Worker } from 'node:worker_threads';

/** `entry` is the worker module's URL without extension, e.g. new URL('./renderWorker', import.meta.url). */
export function spawnWorker(entry: URL, fromTypeScript: boolean, workerData: unknown): Worker {
  if (!fromTypeScript) return new Worker(new URL(`${entry.href}.js`), { workerData });
  const esmApi = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const cjsApi = JSON.stringify(import.meta.resolve('tsx/cjs/api'));
  const bootstrap =
    `Promise.all([import(${esmApi}), import(${cjsApi})])` +
    `.then(([esm, cjs]) => { esm.register(); cjs.register(); return import(${JSON.stringify(`${entry.href}.ts`)}); });`;
  return new Worker(bootstrap, { workerData, eval: true });
}
