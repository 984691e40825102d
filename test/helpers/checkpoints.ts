// Exact-resume checks: the newest checkpoints of two runs hold the same arrays (relative 1e-4).
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadCheckpoint, listCheckpoints } from '../../src/train/checkpoint.js';

export function assertNewestCheckpointsMatch(runA: string, runB: string): void {
  const ca = loadCheckpoint(listCheckpoints(path.join(runA, 'checkpoints')).pop()!);
  const cb = loadCheckpoint(listCheckpoints(path.join(runB, 'checkpoints')).pop()!);
  assert.equal(ca.step, cb.step);
  let worst = 0;
  for (const [k, va] of Object.entries(ca.arrays)) {
    const vb = cb.arrays[k];
    assert.ok(vb && vb.length === va.length, `checkpoint entry ${k}`);
    for (let i = 0; i < va.length; i++) worst = Math.max(worst, Math.abs(va[i] - vb[i]) / Math.max(1, Math.abs(va[i])));
  }
  assert.ok(worst < 1e-4, `largest relative difference ${worst}`);
}
