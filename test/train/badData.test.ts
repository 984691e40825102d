// Training that stops on bad data stops with a checkpoint of where it got to, so nothing trained so
// far is lost and a resume (after repairing the data, or with a higher --max-bad-share) continues.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { setupEngine } from '../helpers/engine.js';
import { tinyTrainConfig } from '../helpers/tinySynth.js';
import { InsightfaceRecWriter } from '../../src/data/recordioWriter.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { train } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';

await setupEngine();
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'attfc-baddata-'));

/** 24 identities of 4 noise images, and a 25th whose only image cannot be decoded. */
async function dataWithHopelessIdentity(): Promise<string> {
  const dir = path.join(tmp(), 'data');
  const w = new InsightfaceRecWriter(dir, { width: 32, height: 32 });
  const rng = new Rng(9);
  for (let id = 0; id < 24; id++)
    for (let k = 0; k < 4; k++) {
      const raw = Buffer.alloc(32 * 32 * 3);
      for (let i = 0; i < raw.length; i++) raw[i] = rng.int(256);
      w.add(id, await sharp(raw, { raw: { width: 32, height: 32, channels: 3 } }).jpeg().toBuffer());
    }
  w.add(24, Buffer.from('not a jpeg'));
  w.close();
  return dir;
}

test('stopping on bad data writes a checkpoint of the step it reached, pointing at the batch that failed', async () => {
  const out = tmp();
  let reached = 0;
  const h = train({ ...tinyTrainConfig(await dataWithHopelessIdentity(), out), steps: 40, checkpointEvery: 0, export: false }, { log: () => undefined });
  h.on('step', (m) => (reached = m.step));
  const e = (await h.done.then(
    () => null,
    (err: Error) => err,
  )) as Error | null;
  assert.ok(e && e.name === 'AttfcError', String(e));
  assert.match(e.message, /no other image of identity 24 could be decoded to replace it; stopped at step \d+ with checkpoint .*ckpt-\d+; resume with --resume /);
  const ckpt = path.join(out, 'checkpoints', `ckpt-${String(reached).padStart(9, '0')}`);
  assert.ok(existsSync(ckpt), `no checkpoint of step ${reached}`);
  assert.equal((loadCheckpoint(ckpt).json.pipeline as { step: number }).step, reached, 'the resume makes the failed batch again');
});
