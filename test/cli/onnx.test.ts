// `attfc import` and `attfc export` as a user runs them: ONNX -> model folder -> ONNX that onnxruntime
// runs with the folder's embeddings; user mistakes are one line and exit 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setupEngine } from '../helpers/engine.js';
import { cosineDistances, ortEmbed, randomImages, randomiseNorms } from '../helpers/onnx.js';
import { createBackbone } from '../../src/backbones/index.js';
import { loadEmbedder } from '../../src/cli/commands/eval.js';
import { embedBatch } from '../../src/eval/embedder.js';
import { backboneToOnnx } from '../../src/onnx/writer.js';

await setupEngine();
const dir = mkdtempSync(path.join(os.tmpdir(), 'attfc-cli-onnx-'));
const attfc = (...args: string[]) => spawnSync(process.execPath, ['bin/attfc.js', ...args], { encoding: 'utf8', timeout: 180_000 });
const SIZE = 48;

test('attfc import -> attfc export: onnxruntime runs the export like the imported folder', async () => {
  const b = createBackbone('r18', { inputSize: SIZE, widthMultiplier: 0.25, embeddingSize: 32, seed: 3 });
  randomiseNorms(b, 1);
  const src = path.join(dir, 'r18.onnx');
  writeFileSync(src, backboneToOnnx(b, { foldBatchNorm: true }));
  b.dispose();
  const folder = path.join(dir, 'r18-model');
  const imp = attfc('import', src, '--out', folder);
  assert.equal(imp.status, 0, imp.stderr);
  assert.match(imp.stdout, /architecture: IResNet-18 x0\.25; 48x48 input, 32-d embedding/);
  assert.match(imp.stdout, /batch norms unfolded from biases: 21/);
  const out = path.join(dir, 'back.onnx');
  const exp = attfc('export', folder, '--onnx', out);
  assert.equal(exp.status, 0, exp.stderr);
  assert.match(exp.stdout, new RegExp(`^wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: r18, input \\[batch, 3, 48, 48\\]`));
  const x = randomImages(2, SIZE, 6);
  const model = await loadEmbedder(folder);
  const expected = (await embedBatch(model.embedder, x, 2)).orig;
  model.dispose();
  const session = await ort.InferenceSession.create(out);
  const got = await ortEmbed(session, x, 2, SIZE);
  await session.release();
  assert.ok(Math.max(...cosineDistances(got, expected, 2)) < 1e-4);
});

test('user mistakes are one line naming the file, exit 1', () => {
  const junk = path.join(dir, 'junk.onnx');
  writeFileSync(junk, 'not a model at all');
  const cases: [string[], RegExp][] = [
    [['import', junk, '--out', path.join(dir, 'x')], /^attfc: .*junk\.onnx: not an ONNX model/],
    [['import', path.join(dir, 'none.onnx'), '--out', path.join(dir, 'x')], /^attfc: .*none\.onnx: cannot read \(ENOENT\)$/],
    [['export', path.join(dir, 'no-model'), '--onnx', path.join(dir, 'y.onnx')], /^attfc: .*no-model\/model\.json: cannot read the model/],
    [['export', dir, '--onnx', path.join(dir, 'y.txt')], /^attfc: export: --onnx .*y\.txt: expected a file name ending in \.onnx$/],
  ];
  for (const [args, pattern] of cases) {
    const r = attfc(...args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('attfc: backend '));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], pattern);
  }
});
