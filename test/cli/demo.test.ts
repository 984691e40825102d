// `attfc demo` end to end, at the tiny size of its hidden --tiny flag: synthetic data, AttFC training,
// verification, export, report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

test('attfc demo runs end to end (tiny): fresh data, training, verification, export, the report', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'attfc-demo-'));
  const r = spawnSync(process.execPath, ['bin/attfc.js', 'demo', '--tiny', '--out', out], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /attfc demo: train AttFC on SYNTHETIC faces \(60 identities x 3 images, 32x32\)/);
  assert.match(r.stdout, /attfc demo report \(SYNTHETIC data\)/);
  // freshly rendered: the report says so (synthesize's own cached flag, not how long rendering took)
  assert.match(r.stdout, /data {9}.* \(made in \d+s\)/);
  assert.match(r.stdout, /training {5}3 steps of 16 in /);
  assert.match(r.stdout, /verification synth_val: accuracy \d+\.\d\d% \+- \d+\.\d\d over 10 folds, VAL@FAR=1e-3 \d\.\d{3} \(40 held-out pairs\)/);
  // what training added: the same protocol on the untrained network, and the budget it took
  assert.match(r.stdout, /untrained {4}the same pairs and protocol on the network before training: accuracy \d+\.\d\d% \+- \d+\.\d\d/);
  assert.match(r.stdout, /budget {7}3 steps x 16 = 48 samples \(\d+\.\d epochs\) in \d+s of training on /);
  const modelDir = path.join(out, 'run', 'model');
  assert.ok(existsSync(path.join(modelDir, 'model.json')));
  assert.equal(JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8')).userDefinedMetadata.steps, 3);
});
