// User mistakes through the real command line: each ends with exit 1 and one line naming the file,
// flag or value and what was expected; never a stack trace (exit 70). The commands run concurrently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { setupEngine } from '../helpers/engine.js';
import { tinySynth, tinyTrainConfig } from '../helpers/tinySynth.js';
import { train } from '../../src/train/trainer.js';

await setupEngine();
const data = await tinySynth();
const other = await tinySynth('more-images', 24, 5);
const dir = mkdtempSync(path.join(os.tmpdir(), 'attfc-usererr-'));
const run = path.join(dir, 'run');
await train({ ...tinyTrainConfig(data, run), steps: 1 }, { log: () => undefined }).done; // with its exported model
const broken = path.join(dir, 'broken');
await train({ ...tinyTrainConfig(data, broken), steps: 1, export: false }, { log: () => undefined }).done;
rmSync(path.join(broken, 'checkpoints', 'ckpt-000000001', 'tensors.bin'));
const file = path.join(dir, 'a-file.txt');
writeFileSync(file, 'not a folder');
const missing = path.join(dir, 'no', 'such', 'folder');
const face = path.join(dir, 'face.png');
await sharp(Buffer.alloc(32 * 32 * 3, 128), { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(face);

function attfc(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['bin/attfc.js', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ATTFC_THREADS: '1', ...env } });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => (stderr += s));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

const tinyTrain = ['train', '--data', data, '--backbone', 'mbf', '--width', '0.25', '--input-size', '32', '--batch-size', '8', '--queue-size', '16', '--steps', '1', '--workers', '1'];
const cases: [string, string[], RegExp, Record<string, string>?][] = [
  ['--output naming a file', [...tinyTrain, '--output', file], /^attfc: --output .*a-file\.txt: is a file; expected a folder for the run/],
  ['--resume naming a file', ['train', '--resume', file], /^attfc: --resume .*a-file\.txt: is a file; expected a run folder or a checkpoint folder/],
  ['--resume with --data of another set', ['train', '--resume', run, '--data', other], /^attfc: --resume .*: the checkpoint was trained on .* \(96 images, 24 identities\); .* differs \(120 images, not 96; train\.idx\); pass --allow-data-change/],
  ['a checkpoint without tensors.bin', ['train', '--resume', broken], /^attfc: .*ckpt-000000001\/tensors\.bin: missing \(the checkpoint is incomplete\)/],
  ['--threads 0', ['--threads', '0', ...tinyTrain, '--output', path.join(dir, 't0')], /--threads 0: expected a whole number >= 1$/],
  ['ATTFC_THREADS=0', [...tinyTrain, '--output', path.join(dir, 't1')], /^attfc: ATTFC_THREADS=0: expected a whole number >= 1$/, { ATTFC_THREADS: '0' }],
  ['--batch-size 7.5', [...tinyTrain, '--batch-size', '7.5', '--output', path.join(dir, 'b')], /^attfc: train: batchSize = 7\.5: expected a whole number$/],
  ['eval --plot into a missing folder', ['eval', '--model', path.join(run, 'model'), '--bin', path.join(data, 'synth_val.bin'), '--plot', path.join(missing, 'roc.png')], /^attfc: --plot .*no\/such\/folder\/roc\.png: the folder .* does not exist/],
  ['embed --out into a missing folder', ['embed', '--model', path.join(run, 'model'), '--out', path.join(missing, 'e.npy'), face], /^attfc: --out .*no\/such\/folder\/e\.npy: the folder .* does not exist/],
];

test('user mistakes on the command line: exit 1, one line naming the flag or file, no stack trace', async () => {
  const results = await Promise.all(cases.map(([, args, , env]) => attfc(args, env)));
  const failures: string[] = [];
  cases.forEach(([name, , expected], i) => {
    const { code, stderr } = results[i];
    const lines = stderr.trim().split('\n').filter((l) => !/^attfc: (backend |estimated WASM heap)/.test(l));
    const ok = (code === 1 || code === 2) && lines.length === 1 && expected.test(lines[0]) && !/\n\s+at /.test(stderr);
    if (!ok) failures.push(`${name}: exit ${code}: ${stderr.trim().split('\n').slice(0, 3).join(' | ').slice(0, 300)}`);
  });
  assert.deepEqual(failures, []);
});
