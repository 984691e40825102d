// The attfc command as a user runs it: help, one-line errors with a non-zero exit, --print-config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TrainConfigSchema } from '../../src/train/config.js';

const attfc = (...args: string[]) => spawnSync(process.execPath, ['bin/attfc.js', ...args], { encoding: 'utf8', timeout: 60_000 });

test('attfc --help lists the commands and exits promptly', () => {
  const t0 = Date.now();
  const r = attfc('--help');
  assert.equal(r.status, 0);
  for (const c of ['train', 'demo', 'synth', 'eval', 'embed', 'data', 'import', 'export']) assert.match(r.stdout, new RegExp(`\\n  ${c}\\b`));
  assert.ok(Date.now() - t0 < 30_000);
});

test('attfc train --help documents every config key', () => {
  const r = attfc('train', '--help');
  assert.equal(r.status, 0);
  const flag = (k: string) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()).replace('width-multiplier', 'width');
  for (const key of Object.keys(TrainConfigSchema.shape)) {
    const f = key === 'masking' ? '--no-masking' : key === 'export' ? '--no-export' : flag(key);
    assert.ok(r.stdout.includes(f), `${key} has ${f} in --help`);
  }
});

test('a bad flag value is one line naming the key, the value and what is allowed; exit 1', () => {
  const r = attfc('train', '--data', 'x', '--batch-size', 'abc');
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim(), 'attfc: train: batchSize = "abc": expected a number');
  const h = attfc('train', '--data', 'x', '--head', 'arc');
  assert.equal(h.status, 1);
  assert.match(h.stderr, /argument 'arc' is invalid\. Allowed choices are attfc, fc, pfc/);
});

test('--print-config shows defaults <- config file <- flags', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'attfc-cli-'));
  const cfg = path.join(dir, 'c.yaml');
  writeFileSync(cfg, 'data: /data/ms1m\nbatchSize: 32\nhead: pfc\n');
  const r = attfc('train', '--config', cfg, '--batch-size', '48', '--print-config');
  assert.equal(r.status, 0, r.stderr);
  const c = JSON.parse(r.stdout);
  assert.equal(c.data, '/data/ms1m');
  assert.equal(c.head, 'pfc');
  assert.equal(c.batchSize, 48);
  assert.equal(c.lr, 0.1);
});

test('missing data is a clear error; a missing dataset path names the file', () => {
  const r = attfc('train');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^attfc: train: no training data: pass --data <path>/);
  const m = attfc('train', '--data', '/nonexistent/attfc-data', '--steps', '1');
  assert.equal(m.status, 1);
  assert.match(m.stderr, /\/nonexistent\/attfc-data/);
  assert.doesNotMatch(m.stderr, /\n\s+at /, 'no stack trace');
});

test('Ctrl-C during training stops after the current step, writes a checkpoint and exits 130', async () => {
  const { spawn } = await import('node:child_process');
  const { tinySynth } = await import('../helpers/tinySynth.js');
  const data = await tinySynth();
  const out = mkdtempSync(path.join(os.tmpdir(), 'attfc-sigint-'));
  const child = spawn(
    process.execPath,
    ['bin/attfc.js', 'train', '--data', data, '--output', out, '--backbone', 'mbf', '--width', '0.25', '--input-size', '32',
      '--embedding-size', '32', '--batch-size', '8', '--queue-size', '16', '--steps', '10000', '--log-every', '1', '--no-export'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  let signalledAt = -1;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
    const seen = [...stderr.matchAll(/step (\d+)\/10000/g)].map((m) => Number(m[1]));
    if (signalledAt < 0 && seen.length && seen[seen.length - 1] >= 3) {
      signalledAt = seen[seen.length - 1];
      child.kill('SIGINT');
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 130, stderr);
  const m = /interrupted at step (\d+)/.exec(stderr);
  assert.ok(m, stderr);
  // stops within a couple of steps of the signal, not when the prefetched batches run out
  assert.ok(Number(m[1]) <= signalledAt + 2, `signalled after step ${signalledAt}, stopped at ${m[1]}`);
  assert.match(stderr, new RegExp(`checkpoint: .*ckpt-0*${m[1]}`));
});

test('attfc train --resume refuses a flag that would change the training, in one line naming it', async () => {
  const { train } = await import('../../src/train/trainer.js');
  const { tinySynth, tinyTrainConfig } = await import('../helpers/tinySynth.js');
  const out = mkdtempSync(path.join(os.tmpdir(), 'attfc-resume-cli-'));
  await train({ ...tinyTrainConfig(await tinySynth(), out), steps: 1, export: false }, { log: () => undefined }).done;
  const r = attfc('train', '--resume', out, '--batch-size', '16');
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /batchSize cannot change \(saved 8, given 16\); a resumed run may change only data, output, parallel/);
});
