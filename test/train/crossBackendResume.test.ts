// A run started on WASM continues on backend torch from its checkpoint (and the other way round), through
// the CLI as a user runs it: the checkpoint format is the same on both (AttFC's DCC and the optimizer
// state included), so the first step after the resume gives the loss the uninterrupted run gave at that
// step, to float32 rounding across engines. Later steps drift apart as two engines' runs do from step 1
// (ArcFace's s = 64 amplifies rounding differences: the two uninterrupted runs differ by 0.3% at step 3),
// so they are only checked to continue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { torchSkipReason } from '../helpers/engine.js';
import { tinySynth } from '../helpers/tinySynth.js';

const skip = torchSkipReason();
const data = await tinySynth();
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const STEPS = 6;
const HALF = 3;

/** `attfc train` with the tiny AttFC recipe; one thread, one process (the same batch-norm grouping on both). */
function attfc(backend: string, args: string[]): string {
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'attfc.js'), '--backend', backend, '--threads', '1', 'train', ...args], {
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, ATTFC_BACKEND: '' },
  });
  assert.equal(r.status, 0, `attfc --backend ${backend} train ${args.join(' ')}\n${r.stderr}`);
  return r.stderr;
}

const recipe = (out: string, steps = STEPS) => [
  '--data', data, '--output', out, '--backbone', 'mbf', '--width', '0.25', '--input-size', '32', '--embedding-size', '32',
  '--batch-size', '8', '--queue-size', '16', '--lr', '0.05', '--seed', '3', '--workers', '1', '--log-every', '1',
  '--parallel', 'threads', '--steps', String(steps), '--checkpoint-every', String(HALF), '--no-export',
];

/** Loss per step from a run's metrics.jsonl. */
function losses(run: string): Map<number, number> {
  const lines = readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss?: number });
  return new Map(lines.filter((l) => l.loss !== undefined).map((l) => [l.step, l.loss!]));
}

for (const [first, second] of [['wasm', 'torch'], ['torch', 'wasm']] as const) {
  test(`a run started on ${first} resumes on ${second}: its first step there gives the uninterrupted ${first} run's loss`, { skip, timeout: 600_000 }, () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), `attfc-cross-${first}-`));
    const whole = path.join(tmp, 'whole');
    const split = path.join(tmp, 'split');
    attfc(first, recipe(whole));
    // the same run again, then continued on the other backend from its mid-run checkpoint (the resume
    // drops the metrics lines logged after that checkpoint and writes the rest anew)
    assert.match(attfc(first, recipe(split)), new RegExp(`attfc: backend ${first} `));
    const resumed = attfc(second, ['--resume', path.join(split, 'checkpoints', `ckpt-${String(HALF).padStart(9, '0')}`)]);
    assert.match(resumed, new RegExp(`attfc: backend ${second} `));
    assert.match(resumed, new RegExp(`resumed from .*ckpt-0+${HALF} at step ${HALF}`));
    const a = losses(whole);
    const b = losses(split);
    for (let step = 1; step <= HALF; step++) assert.equal(b.get(step), a.get(step), `step ${step} (before the resume, same engine)`);
    const [x, y] = [a.get(HALF + 1)!, b.get(HALF + 1)!];
    assert.ok(Math.abs(x - y) <= 1e-4 * Math.max(1, Math.abs(x)), `first step after the resume: uninterrupted ${first} ${x}, resumed on ${second} ${y}`);
    for (let step = HALF + 2; step <= STEPS; step++) assert.ok(Number.isFinite(b.get(step)!), `step ${step}: ${b.get(step)}`);
  });
}
