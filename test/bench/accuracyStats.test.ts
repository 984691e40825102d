// bench:accuracy numerics: seed summaries, true class centres, attention split by key quality, and the
// protocol's invariants (Partial FC as many centres as the DCC; one recipe for every head).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttentionByQuality, cosineRows, meanOfKey, summarise, trueClassCentre, unitVector } from '../../bench/lib/accuracyStats.js';
import { FULL_PROTOCOL, QUICK_PROTOCOL, dccSize, headVariants, runConfig } from '../../bench/lib/accuracyProtocol.js';

test('summarise: mean, population std and range; NaN entries skipped; empty gives NaN', () => {
  const s = summarise([0.7, 0.8, NaN, 0.9]);
  assert.equal(s.n, 3);
  assert.ok(Math.abs(s.mean - 0.8) < 1e-12);
  assert.ok(Math.abs(s.std - Math.sqrt(0.02 / 3)) < 1e-12);
  assert.deepEqual([s.min, s.max], [0.7, 0.9]);
  assert.ok(Number.isNaN(summarise([]).mean));
  assert.equal(summarise([0.5]).std, 0);
});

test('trueClassCentre is the normalised mean of normalised rows, so row norms do not weigh in', () => {
  // rows: (10, 0), (0, 1), (5, 5) -> unit (1,0), (0,1), (.707,.707)
  const e = Float32Array.from([10, 0, 0, 1, 5, 5]);
  const c = trueClassCentre(e, [0, 1], 2);
  assert.ok(Math.abs(c[0] - Math.SQRT1_2) < 1e-6 && Math.abs(c[1] - Math.SQRT1_2) < 1e-6);
  assert.ok(Math.abs(cosineRows(c, 0, e, 2, 2) - 1) < 1e-6);
  assert.ok(Math.abs(cosineRows(e, 0, e, 1, 2)) < 1e-12);
  assert.deepEqual(Array.from(unitVector(new Float32Array(3), 0, 3)), [0, 0, 0]);
});

test('AttentionByQuality averages weights below / at-or-above the threshold and skips unknown quality', () => {
  const a = new AttentionByQuality(0.5);
  a.add([0.2, 0.8], [0.3, 0.9]);
  a.add([0.6, 0.4], [0.5, NaN]);
  const r = a.result();
  assert.equal(r.lowKeys, 1);
  assert.equal(r.highKeys, 2);
  assert.ok(Math.abs(r.low - 0.2) < 1e-12);
  assert.ok(Math.abs(r.high - 0.7) < 1e-12);
  assert.throws(() => a.add([1], [0.1, 0.2]), /1 weights for 2 qualities/);
  assert.ok(Number.isNaN(new AttentionByQuality().result().low));
});

test('meanOfKey ignores records without the key and NaN values', () => {
  assert.equal(meanOfKey([{ a: 1 }, { a: 3 }, { b: 9 }, { a: NaN }], 'a'), 2);
});

test('protocol: Partial FC uses as many centres as the DCC; every variant shares data, backbone and recipe', () => {
  for (const p of [FULL_PROTOCOL, QUICK_PROTOCOL]) {
    const S = dccSize(p);
    assert.ok(S > 0 && S % p.batchSize === 0, `DCC ${S} must be a positive multiple of the batch`);
    const vs = headVariants(p);
    assert.deepEqual(vs.map((v) => v.variant), ['fc', 'pfc', 'dcq', 'attfc-mean', 'attfc', 'attfc-nomask']);
    const pfc = runConfig(p, vs[1], 0, 'd', 'o', 1);
    assert.equal(Math.round((pfc.sampleRate ?? 0) * p.identities), S);
    const shared = (c: ReturnType<typeof runConfig>) =>
      JSON.stringify([c.data, c.backbone, c.inputSize, c.widthMultiplier, c.batchSize, c.steps, c.lr, c.warmupSteps, c.marginS, c.marginM2, c.seed]);
    const configs = vs.map((v) => runConfig(p, v, 5, 'd', 'o', 1));
    for (const c of configs) assert.equal(shared(c), shared(configs[0]));
    const byName = Object.fromEntries(vs.map((v, i) => [v.variant, configs[i]]));
    assert.equal(byName.dcq.sampleNum, 2);
    assert.equal(byName['attfc-mean'].attention, 'mean');
    assert.equal(byName['attfc-nomask'].masking, false);
    for (const k of ['dcq', 'attfc-mean', 'attfc', 'attfc-nomask']) assert.equal(byName[k].queueSize, S);
  }
  assert.equal(FULL_PROTOCOL.identities % 4, 0, 'whole synthetic families, so none straddles the held-out boundary');
});
