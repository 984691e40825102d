// AttFC head on backend torch, where the DCC lives in libtorch memory and the chunked softmax runs as
// ATen products plus the addon's fused row pass: loss, dL/dq, masking and the hardest negative against
// the plain-loop reference (one chunk, several, a short last chunk, scales up to 300 where the JS path
// needs its online softmax), the same initial centres and checkpoint format as the JS container, state
// moving between backends, and no leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine, torchSkipReason } from '../helpers/engine.js';
import { DeviceClassContainer } from '../../src/heads/attfc/deviceDcc.js';
import { ARCFACE } from '../../src/heads/margin.js';
import { assertNoTensorLeak } from '../../src/engine/index.js';
import type { TorchBackend } from '../../src/engine/torch/index.js';
import { Rng } from '../../src/util/rng.js';
import { type Scenario, dccSnapshot, headLossAndGrad, maxAbs, maxAbsDiff, referenceAttFc, referenceFor, scenarioBatch, warmupStep, makeHead, DEVICE_SCENARIO } from './attfcFixtures.js';

const skip = torchSkipReason();
if (!skip) await setupEngine({ backend: 'torch', threads: 1 });

const base = DEVICE_SCENARIO;


/** Warm-up steps, then the head against the reference on one batch. */
function checkAgainstReference(sc: Scenario): void {
  const rng = new Rng(sc.seed);
  const head = makeHead(sc);
  try {
    assert.ok(head.queue instanceof DeviceClassContainer, 'the DCC lives in libtorch memory');
    for (let i = 0; i < sc.warmupSteps; i++) warmupStep(head, scenarioBatch(rng, sc), sc.sampleNum - 1);
    const b = scenarioBatch(rng, sc);
    const ref = referenceAttFc(referenceFor(head, b, sc));
    if (sc.masking !== false) assert.ok(ref.maskedCount > 0, 'the case exercises masking');
    const got = headLossAndGrad(head, b, sc.sampleNum - 1);
    const tag = JSON.stringify({ chunk: sc.chunkSlots, s: sc.margin.s, masking: sc.masking });
    assert.ok(Math.abs(got.loss - ref.loss) <= 1e-4 * Math.max(1, ref.loss), `${tag}: loss ${got.loss} vs ${ref.loss}`);
    const g = ref.grad.flat();
    assert.ok(maxAbs(g) > 1e-4, `${tag}: the case has a real gradient`);
    assert.ok(maxAbsDiff(got.grad, g) <= 5e-4 * maxAbs(g), `${tag}: dL/dq off by ${maxAbsDiff(got.grad, g)} of ${maxAbs(g)}`);
    const diag = head.diagnostics();
    assert.ok(Math.abs(diag.maskedFraction * sc.batch * sc.queueSize - ref.maskedCount) < 1e-6, `${tag}: masked pairs`);
    assert.ok(Math.abs(diag.hardestNegCos - ref.hardestNegCos) < 1e-5, `${tag}: hardest negative ${diag.hardestNegCos} vs ${ref.hardestNegCos}`);
  } finally {
    head.dispose();
  }
}

test('torch: loss, dL/dq, masking and hardest negative equal the reference (one chunk, several, a short last chunk)', { skip }, () => {
  checkAgainstReference(base);
  checkAgainstReference({ ...base, chunkSlots: 48 }); // 48, 48, 48, 16
  checkAgainstReference({ ...base, chunkSlots: 37, margin: ARCFACE });
  checkAgainstReference({ ...base, masking: false });
});

test('torch: scales far above the single-pass bound (each row shifted by its own maximum)', { skip }, () => {
  for (const s of [80, 150, 300]) checkAgainstReference({ ...base, chunkSlots: 48, margin: { ...base.margin, s } });
});

test('torch: the same initial centres, enqueue results and checkpoint arrays as the JS container', { skip }, async () => {
  const sc = { ...base, chunkSlots: 48 };
  const snapshots = [];
  for (const backend of ['cpu', 'torch']) {
    await tf.setBackend(backend);
    const head = makeHead(sc);
    const rng = new Rng(5);
    for (let i = 0; i < 3; i++) warmupStep(head, scenarioBatch(rng, sc), 2);
    snapshots.push(dccSnapshot(head));
    head.dispose();
  }
  await tf.setBackend('torch');
  const [cpu, torch] = snapshots;
  assert.deepEqual(torch.labels, cpu.labels);
  assert.equal(torch.pointer, cpu.pointer);
  assert.equal(torch.filled, cpu.filled);
  // the first slots were never written: bit-identical initial centres; the rest are GCCs computed on each backend
  const untouched = cpu.labels.findIndex((l) => l < 0);
  assert.ok(untouched > 0);
  assert.deepEqual(torch.vectors.slice(untouched), cpu.vectors.slice(untouched));
  assert.ok(maxAbsDiff(torch.vectors.flat(), cpu.vectors.flat()) < 1e-5);
});

test('torch: a DCC state saved on cpu restores on torch (and back) to the same loss', { skip }, async () => {
  const sc = { ...base, chunkSlots: 48 };
  await tf.setBackend('cpu');
  const source = makeHead(sc);
  const rng = new Rng(9);
  for (let i = 0; i < 6; i++) warmupStep(source, scenarioBatch(rng, sc), 2);
  const b = scenarioBatch(rng, sc);
  const state = source.getState();
  const saved = { arrays: Object.fromEntries(Object.entries(state.arrays).map(([k, v]) => [k, v.slice()])), json: state.json };
  const onCpu = headLossAndGrad(source, b, 2);
  source.dispose();

  await tf.setBackend('torch');
  const moved = makeHead({ ...sc, seed: 999 });
  moved.setState(saved);
  const onTorch = headLossAndGrad(moved, b, 2);
  assert.ok(Math.abs(onTorch.loss - onCpu.loss) < 1e-4 * Math.max(1, onCpu.loss), `${onTorch.loss} vs ${onCpu.loss}`);
  assert.ok(maxAbsDiff(onTorch.grad, onCpu.grad) <= 5e-4 * maxAbs(onCpu.grad));
  // and back: torch's state (downloaded in blocks) restores a JS container
  const back = moved.getState();
  await tf.setBackend('cpu');
  const again = makeHead({ ...sc, seed: 7 });
  again.setState(back);
  assert.deepEqual(dccSnapshot(again), dccSnapshot(moved));
  again.dispose();
  await tf.setBackend('torch');
  moved.dispose();
});

test('torch: no tensors left behind per step, in tfjs or in the addon', { skip }, async () => {
  await tf.setBackend('torch');
  const b = tf.backend() as TorchBackend;
  const sc = { ...base, chunkSlots: 48 };
  const head = makeHead(sc);
  const rng = new Rng(2);
  const step = () => {
    headLossAndGrad(head, scenarioBatch(rng, sc), 2);
    head.afterStep([], { lr: 0.1, momentum: 0.9, weightDecay: 0 });
  };
  await assertNoTensorLeak(step, 4, 1, 'attfc step on torch');
  step();
  const handles = b.native.memory().handles;
  for (let i = 0; i < 4; i++) step();
  assert.equal(b.native.memory().handles, handles);
  head.dispose();
});

test('torch: the row pass composed of ATen ops (the CUDA path) equals the addon\'s fused CPU pass', { skip }, async () => {
  await tf.setBackend('torch');
  const b = tf.backend() as TorchBackend;
  const { rowPass } = await import('../../src/heads/attfc/deviceSoftmax.js');
  const rng = new Rng(4);
  const B = 5;
  const c = 33;
  const z = new Float32Array(B * c).map(() => 3 * rng.next() - 1.5); // some clamped at +-1
  for (let j = 0; j < c; j++) z[3 * c + j] = -Infinity; // a row with every slot masked
  z[7] = -Infinity;
  const run = (composed: boolean) =>
    b.scoped((sc) => {
      const h = sc.tmp(b.upload(z.slice(), [B, c], 'float32'));
      const r = rowPass(b, sc, h, 64, composed);
      return { w: b.native.toArray(r.weights), max: b.native.toArray(r.rowMax), sum: b.native.toArray(r.rowSum) };
    });
  const fused = run(false);
  const composed = run(true);
  assert.deepEqual(Array.from(composed.max), Array.from(fused.max));
  assert.ok(maxAbsDiff(composed.sum, fused.sum) <= 1e-5 * maxAbs(fused.sum));
  assert.ok(maxAbsDiff(composed.w, fused.w) <= 1e-6);
  assert.equal(fused.max[3], -Infinity);
  assert.ok(fused.sum[3] > 0, 'masked slots still count as e^{-s} terms');
});
