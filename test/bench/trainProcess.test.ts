// The benchmark child-process runner: results in job order whatever the concurrency, and a failing
// child is reported with its label and stderr.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runChildren } from '../../bench/lib/trainProcess.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'attfc-bench-children-'));
const script = path.join(dir, 'child.mjs');
writeFileSync(
  script,
  `const [n, delay] = process.argv.slice(2).map(Number);
   setTimeout(() => {
     if (n < 0) { console.error('boom from child ' + n); process.exit(3); }
     console.log('noise line');
     console.log(JSON.stringify({ n, env: process.env.BENCH_TEST_ENV ?? null }));
   }, delay);`,
);

test('runChildren returns each child’s last JSON line in job order, with its environment', async () => {
  const started: number[] = [];
  const r = await runChildren(
    script,
    [
      { label: 'a', args: ['1', '300'], env: { BENCH_TEST_ENV: 'x' } },
      { label: 'b', args: ['2', '0'] },
      { label: 'c', args: ['3', '0'] },
    ],
    { concurrency: 2, onStart: (_, i) => started.push(i) },
  );
  assert.deepEqual(r, [{ n: 1, env: 'x' }, { n: 2, env: null }, { n: 3, env: null }]);
  assert.deepEqual(started.sort(), [0, 1, 2]);
});

test('runChildren rejects with the label, exit code and stderr of a failing child', async () => {
  await assert.rejects(runChildren(script, [{ label: 'bad job', args: ['-1', '0'] }]), /bad job: child exited with code 3[\s\S]*boom from child -1/);
});
