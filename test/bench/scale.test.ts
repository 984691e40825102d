// bench:scale end to end at a small identity count: the same script, children and comparison as the
// 2,059,906-identity run, so exact resume from its mid-run checkpoint is checked on every test run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

test('bench:scale --json: trains on synth:..., resumes from the mid-run checkpoint in a new process and takes exactly the same losses', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'attfc-bench-scale-'));
  const args = ['--identities', '1000', '--steps', '4', '--resume-steps', '2', '--batch', '8', '--width', '0.25', '--embedding-size', '32', '--verify-pairs', '20', '--output', out, '--json'];
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/scale.ts', ...args], { encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  assert.equal(j.status, 'ok', String(j.refusal));
  assert.deepEqual([j.identities, j.steps, j.resumeFrom, j.resumeSteps, j.dccSlots, j.backend], [1000, 4, 2, 2, 296, process.env.ATTFC_BACKEND ?? 'wasm']);
  assert.equal(j.resumeExact, true, JSON.stringify(j.resumeLosses));
  assert.deepEqual((j.resumeLosses as { step: number }[]).map((p) => p.step), [3, 4]);
  for (const key of ['stepSeconds', 'rssBytes', 'checkpointBytes', 'checkpointWriteSeconds']) assert.ok((j[key] as number) > 0, `${key} = ${j[key]}`);
  const split = j.stepSplit as Record<string, number>;
  assert.ok(split.backbone > 0 && split.classEncoder > 0 && split.head > 0, JSON.stringify(split));
});
