// Run folders as a careless user meets them: a second run into the same folder, two trainers at once,
// a resume after kill -9, a resume of a finished run, SIGTERM. Nothing already written may be lost or
// overwritten without an explicit flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setupEngine } from '../helpers/engine.js';
import { tinySynth, tinyTrainConfig } from '../helpers/tinySynth.js';
import { train } from '../../src/train/trainer.js';
import type { TrainConfigInput } from '../../src/train/config.js';

await setupEngine();
const data = await tinySynth();
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'attfc-runfolder-'));
const quiet = { log: () => undefined };
const base = (output: string): TrainConfigInput => ({ ...tinyTrainConfig(data, output), export: false });
const checkpointsOf = (out: string) => readdirSync(path.join(out, 'checkpoints')).sort();
const metricSteps = (out: string) =>
  readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.loss !== undefined).map((l) => l.step);

/** Every file under dir with its size and mtime. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = path.join(d, n);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = `${s.size}@${s.mtimeMs}`;
    }
  };
  walk(dir);
  return out;
}

test('a second fresh run into a folder holding a run is refused without touching it; overwrite replaces that run', async () => {
  const out = tmp();
  await train({ ...base(out), steps: 1 }, quiet).done;
  const before = snapshot(out);
  await assert.rejects(
    train({ ...base(out), steps: 2, lr: 0.01 }, quiet).done,
    (e: Error) =>
      e.name === 'AttfcError' &&
      /already holds a run \(checkpoints up to ckpt-000000001\); pass --resume .* to continue it, pass --overwrite to replace it, or choose another --output/.test(e.message),
  );
  assert.deepEqual(snapshot(out), before, 'the first run is untouched');
  const r = await train({ ...base(out), steps: 2, lr: 0.01 }, { ...quiet, overwrite: true }).done;
  assert.equal(r.steps, 2);
  assert.deepEqual(checkpointsOf(out), ['ckpt-000000002'], "the old run's checkpoints are gone, the new run's kept");
  assert.equal(JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')).lr, 0.01);
  // overwrite replaces a run's own files only
  const other = tmp();
  writeFileSync(path.join(other, 'notes.txt'), 'mine');
  await assert.rejects(train({ ...base(other), steps: 1 }, { ...quiet, overwrite: true }).done, /holds files that are not part of a run \(notes\.txt\)/);
  assert.equal(readFileSync(path.join(other, 'notes.txt'), 'utf8'), 'mine');
});

test('two trainers on one run folder: the second is refused while the first runs; a lock left by a killed process is reclaimed', async () => {
  const out = tmp();
  const first = train({ ...base(out), steps: 6, checkpointEvery: 1 }, quiet);
  let second: Promise<unknown> | null = null;
  first.on('step', (m) => {
    if (m.step === 2 && !second) {
      second = train(null, { ...quiet, resume: out }).done.then(
        () => 'finished',
        (e: Error) => e,
      );
      first.stop();
    }
  });
  await first.done;
  const refused = (await second) as unknown as Error;
  assert.ok(refused instanceof Error, `the second trainer ${String(refused)}`);
  assert.match(refused.message, /this run folder is in use by another attfc process \(pid \d+, since .*\)/);
  assert.ok(!existsSync(path.join(out, '.lock')), 'the lock is released when the run ends');
  // a killed trainer's lock: its pid no longer exists
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  writeFileSync(path.join(out, '.lock'), JSON.stringify({ pid: dead, host: os.hostname(), startTime: null, startedAt: 'then', command: 'attfc train' }));
  const r = await train(null, { ...quiet, resume: out }).done;
  assert.equal(r.steps, 6);
  assert.ok(!existsSync(path.join(out, '.lock')));
});

test('after a kill, a resume drops the metrics lines logged after its checkpoint', async () => {
  const out = tmp();
  await train({ ...base(out), steps: 4, checkpointEvery: 2 }, quiet).done;
  // as if killed after step 4 was logged but before its checkpoint was written
  rmSync(path.join(out, 'checkpoints', 'ckpt-000000004'), { recursive: true });
  const r = await train(null, { ...quiet, resume: out }).done;
  assert.equal(r.stepsThisRun, 2);
  assert.deepEqual(metricSteps(out), [1, 2, 3, 4]);
});

test('resuming a finished run says so, trains nothing and writes nothing', async () => {
  const out = tmp();
  await train({ ...base(out), steps: 2 }, quiet).done;
  const before = snapshot(out);
  const lines: string[] = [];
  const again = await train(null, { resume: out, log: (l) => lines.push(l) }).done;
  assert.equal(again.alreadyFinished, true);
  assert.equal(again.stepsThisRun, 0);
  assert.ok(lines.some((l) => /ckpt-000000002 is the end of a finished run \(step 2 of 2\); nothing to train, nothing written/.test(l)), lines.join('\n'));
  assert.deepEqual(snapshot(out), before, 'nothing written');
});

test('SIGTERM (timeout, docker stop, SLURM) is handled like Ctrl-C: checkpoint, exit code 143', async () => {
  const { runTrainingCli } = await import('../../src/cli/trainRunner.js');
  const out = tmp();
  const running = runTrainingCli({ ...base(out), steps: 40 } as never);
  const metrics = path.join(out, 'metrics.jsonl');
  while (!(existsSync(metrics) && readFileSync(metrics, 'utf8').split('\n').length > 3)) await new Promise((r) => setTimeout(r, 50));
  process.emit('SIGTERM', 'SIGTERM');
  const code = await running;
  assert.equal(code, 143);
  const steps = metricSteps(out);
  assert.ok(steps.length < 40, `stopped after ${steps.length} steps`);
  assert.deepEqual(checkpointsOf(out), [`ckpt-${String(steps[steps.length - 1]).padStart(9, '0')}`]);
});
