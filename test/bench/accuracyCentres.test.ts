// The class-centre analysis of bench:accuracy on a tiny synthetic set: with f_k = f_q and single-key
// attention the GCC is the single-image centre, so both measures must agree exactly; counts add up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setupEngine } from '../helpers/engine.js';
import { tinySynth } from '../helpers/tinySynth.js';
import { createBackbone } from '../../src/backbones/index.js';
import { analyseCentres } from '../../bench/lib/accuracyCentres.js';

await setupEngine({ backend: 'cpu' });
const data = await tinySynth('bench-centres', 8, 3, 16);
const opts = { inputSize: 16, widthMultiplier: 0.25, embeddingSize: 16 };
const fq = createBackbone('mbf', { ...opts, seed: 1 });
const fk = createBackbone('mbf', { ...opts, seed: 2 });

test('single-key GCC equals the single-image centre; f_k = f_q makes both true centres equal', async () => {
  fk.copyFrom(fq);
  const r = await analyseCentres({ dataset: data, fq, fk, inputSize: 16, keysPerSample: 1, attention: 'single', temperature: 1, identities: 5, draws: 3, seed: 4 });
  assert.equal(r.identities, 5);
  assert.equal(r.draws, 15);
  assert.ok(Math.abs(r.gccTccCosine - r.singleImageTccCosine) < 1e-6);
  assert.ok(Math.abs(r.gccTccCosine - r.gccTccCosineFk) < 1e-6);
  assert.equal(r.gccNearestTccAccuracy, r.singleNearestTccAccuracy);
  assert.equal(r.lowQualityKeys + r.highQualityKeys, 15);
  assert.ok(r.gccTccCosine > -1 && r.gccTccCosine <= 1);
});

test('softmax attention over 2 keys: weights average to 1/2 overall; same seed, same numbers', async () => {
  const fk2 = createBackbone('mbf', { ...opts, seed: 2 });
  const run = () => analyseCentres({ dataset: data, fq, fk: fk2, inputSize: 16, keysPerSample: 2, attention: 'softmax', temperature: 1, identities: 8, draws: 2, seed: 9 });
  const a = await run();
  const b = await run();
  assert.deepEqual(a, b);
  assert.equal(a.lowQualityKeys + a.highQualityKeys, 32);
  const all = a.lowQualityKeys * (Number.isNaN(a.attentionLowQuality) ? 0 : a.attentionLowQuality) + a.highQualityKeys * a.attentionHighQuality;
  assert.ok(Math.abs(all / 32 - 0.5) < 1e-6, `mean weight ${all / 32}`);
  fk2.dispose();
});
