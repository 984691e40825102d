// AttFC head on the wasm backend (XNNPACK matmuls, resident chunk tensors with packed operands):
// loss and dL/dq against the plain-loop reference, single/multi chunk, resident/streamed, no leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import { ARCFACE } from '../../src/heads/margin.js';
import { assertNoTensorLeak } from '../../src/engine/index.js';
import { Rng } from '../../src/util/rng.js';
import { type Scenario, headLossAndGrad, maxAbs, maxAbsDiff, referenceAttFc, referenceFor, scenarioBatch, warmupStep, makeHead, DEVICE_SCENARIO } from './attfcFixtures.js';

const engine = await setupEngine();

const base = DEVICE_SCENARIO;


test(`wasm backend in use (${engine.backend})`, () => {
  assert.equal(tf.getBackend(), 'wasm');
});

test('wasm: loss and dL/dq equal the plain-loop reference: single chunk, and multi-chunk packed, resident, streamed, mixed', () => {
  const modes: Partial<Scenario>[] = [
    {},
    { chunkSlots: 48 },
    { chunkSlots: 48, deviceBudgetBytes: 0 },
    { chunkSlots: 37, deviceBudgetBytes: 4 * 37 * 32 * 4, margin: ARCFACE }, // 4 resident, 1 streamed
    { chunkSlots: 37, deviceBudgetBytes: (160 + 2 * 37) * 32 * 4 }, // 2 packed, 3 resident
  ];
  for (const mode of modes) {
    const sc = { ...base, ...mode };
    const rng = new Rng(sc.seed);
    const head = makeHead(sc);
    for (let i = 0; i < sc.warmupSteps; i++) warmupStep(head, scenarioBatch(rng, sc), 2);
    const b = scenarioBatch(rng, sc);
    const ref = referenceAttFc(referenceFor(head, b, sc));
    assert.ok(ref.maskedCount > 0);
    for (let rep = 0; rep < 2; rep++) {
      // twice: the second pass runs on the resident chunk tensors (and cached packed copies)
      const got = headLossAndGrad(head, b, 2);
      const tag = `${JSON.stringify(mode)} pass ${rep}`;
      assert.ok(Math.abs(got.loss - ref.loss) <= 1e-4 * Math.max(1, ref.loss), `${tag}: loss ${got.loss} vs ${ref.loss}`);
      const g = ref.grad.flat();
      assert.ok(maxAbsDiff(got.grad, g) <= 5e-4 * maxAbs(g), `${tag}: dL/dq off by ${maxAbsDiff(got.grad, g)} of ${maxAbs(g)}`);
    }
    head.dispose();
  }
});

test('wasm: no tensor leak per step', async () => {
  for (const mode of [{ chunkSlots: 48, deviceBudgetBytes: 0 }, {}, { chunkSlots: 32 }, { chunkSlots: 32, deviceBudgetBytes: 160 * 32 * 4 }] as Partial<Scenario>[]) {
    const sc = { ...base, ...mode };
    const head = makeHead(sc);
    const rng = new Rng(2);
    const step = () => {
      const b = scenarioBatch(rng, sc);
      headLossAndGrad(head, b, 2);
      head.afterStep([], { lr: 0.1, momentum: 0.9, weightDecay: 0 });
    };
    if (mode.chunkSlots === 32) {
      assert.equal(head.chunkPlacements()[0], mode.deviceBudgetBytes ? 'resident' : 'packed');
      // resident chunks come and go as the write pointer passes: count them out
      const counted = () => tf.memory().numTensors - head.residentChunks();
      step();
      const start = counted();
      for (let i = 0; i < 12; i++) {
        step();
        assert.equal(counted(), start, `step ${i}`);
      }
      assert.ok(head.residentChunks() >= 4);
    } else {
      await assertNoTensorLeak(step, 4, 1, `attfc step ${JSON.stringify(mode)}`);
    }
    head.dispose();
  }
});
