// Exact resume beyond the weights: the dropout masks continue where they stopped, and a resume on
// other data is refused unless asked for (a changed data set is not a continuation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setupEngine } from '../helpers/engine.js';
import { tinySynth, tinyTrainConfig } from '../helpers/tinySynth.js';
import { assertNewestCheckpointsMatch } from '../helpers/checkpoints.js';
import { train } from '../../src/train/trainer.js';
import type { TrainConfigInput } from '../../src/train/config.js';

await setupEngine();
const data = await tinySynth();
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'attfc-exact-'));
const quiet = { log: () => undefined };

test('resume is exact with dropout (IResNet-18, dropout 0.3): the masks continue, they do not restart', async () => {
  const n = 2;
  const cfg = (out: string): TrainConfigInput => ({
    ...tinyTrainConfig(data, out),
    backbone: 'r18',
    widthMultiplier: 0.125,
    dropout: 0.3,
    head: 'fc',
    steps: 2 * n,
    checkpointEvery: n,
    export: false,
  });
  const a = tmp();
  const b = tmp();
  await train(cfg(a), quiet).done;
  const h = train(cfg(b), quiet);
  h.on('step', (m) => m.step === n && h.stop());
  await h.done;
  await train(null, { ...quiet, resume: b }).done;
  assertNewestCheckpointsMatch(a, b);
});

test('a resume on another data set is refused, naming both; --allow-data-change continues on it', async () => {
  const out = tmp();
  await train({ ...tinyTrainConfig(data, out), steps: 1, export: false }, quiet).done;
  // the same number of images and identities, other pictures
  const other = await tinySynth('other-seed', 24, 4, 32, { seed: 8 });
  await assert.rejects(
    train({ data: other }, { ...quiet, resume: out }).done,
    (e: Error) =>
      e.name === 'AttfcError' &&
      /the checkpoint was trained on .*attfc-test-synth-tiny-24x4-32 \(96 images, 24 identities\); .*other-seed.* differs \(train\.idx\); pass --allow-data-change to continue on it anyway/.test(e.message) &&
      !e.message.includes('\n'),
  );
  const lines: string[] = [];
  const more = await tinySynth('more-images', 24, 5); // 120 images: the sampler cannot resume its position
  const out2 = tmp();
  await train({ ...tinyTrainConfig(data, out2), steps: 3, checkpointEvery: 1, export: false }, quiet).done;
  const r3 = await train({ data: more }, { resume: path.join(out2, 'checkpoints', 'ckpt-000000001'), allowDataChange: true, log: (l) => lines.push(l) }).done;
  assert.equal(r3.steps, 3);
  assert.ok(lines.some((l) => /continuing on other data .*120 images/.test(l)), lines.join('\n'));
});
