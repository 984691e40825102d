// Backend selection, the one-line banner, env overrides, and a clean exit with the threaded build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { torchSkipReason } from '../helpers/engine.js';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'initEngine.ts');
function run(env: Record<string, string>, args: string[] = []) {
  return spawnSync(process.execPath, ['--import', 'tsx', child, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ATTFC_BACKEND: '', ATTFC_THREADS: '', ATTFC_DEVICE: '', ...env },
  });
}
/** As if the libtorch addon were not built. */
const NO_TORCH = { ATTFC_TORCH_ADDON: '/nonexistent/attfc_torch.node' };

test('without the libtorch addon, auto picks threaded wasm with both cores, prints the banner once, and exits on its own', () => {
  const r = run(NO_TORCH);
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.backend, 'wasm');
  assert.equal(info.threads, 2);
  assert.equal(info.simd, true);
  assert.equal(info.kernelPack, true);
  assert.equal(info.sum, 6, 'a matmul on the threaded backend computes correctly');
  assert.equal(r.stderr.match(/attfc: backend wasm \(SIMD, 2 threads, kernel pack on\)/g)?.length, 1, r.stderr);
});

test('with the libtorch addon built, auto picks torch before wasm and says which libtorch, device, threads and BLAS', { skip: torchSkipReason() }, () => {
  const r = run({});
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.backend, 'torch');
  assert.equal(info.sum, 6);
  assert.equal(info.torch.device, 'cpu');
  assert.equal(r.stderr.match(/^attfc: backend torch \(libtorch \d+\.\d+\.\d+[^,]*, cpu, 2 threads, BLAS \w+\)$/gm)?.length, 1, r.stderr);
});

test('--backend torch where the addon is missing: one line saying how to build it', () => {
  const r = run(NO_TORCH, ['torch']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /^backend torch: the libtorch addon is not built \(.*nonexistent.*; run `npm run build:native`\)$/m);
});

test('--device cuda where libtorch has no CUDA: one line saying so', { skip: torchSkipReason() }, () => {
  const r = run({ ATTFC_DEVICE: 'cuda' }, ['torch']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /backend torch: --device cuda, but libtorch .* (was built without CUDA|sees no CUDA device)/);
});

test('ATTFC_BACKEND=cpu and ATTFC_THREADS=1 are honoured', () => {
  const cpu = JSON.parse(run({ ATTFC_BACKEND: 'cpu' }).stdout);
  assert.equal(cpu.backend, 'cpu');
  const one = JSON.parse(run({ ...NO_TORCH, ATTFC_THREADS: '1' }).stdout);
  assert.equal(one.backend, 'wasm');
  assert.equal(one.threads, 1);
});

test('explicit options win over the environment', () => {
  const r = JSON.parse(run({ ATTFC_BACKEND: 'cpu' }, ['wasm']).stdout);
  assert.equal(r.backend, 'wasm');
});

test('a bad ATTFC_BACKEND is a one-line error naming the allowed values', () => {
  const r = run({ ATTFC_BACKEND: 'gpu' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /ATTFC_BACKEND=gpu: expected one of auto, tensorflow, torch, wasm, cpu/);
});

test('--backend tensorflow without tfjs-node installed says how to get it', () => {
  const r = run({}, ['tensorflow']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /npm install @tensorflow\/tfjs-node/);
});
