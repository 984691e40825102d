// Training from existing weights (initFrom): an ONNX file laid out like insightface's PyTorch exports or
// an attfc model folder fixes the architecture, starts f_q and AttFC's f_k, is recorded in the config, and
// a resume continues exactly without it; `--export onnx` writes a file onnxruntime runs like attfc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setupEngine } from '../helpers/engine.js';
import { tinySynth, tinyTrainConfig } from '../helpers/tinySynth.js';
import { assertNewestCheckpointsMatch } from '../helpers/checkpoints.js';
import { cosineDistances, ortEmbed, randomImages, randomiseNorms } from '../helpers/onnx.js';
import { createBackbone, saveEmbeddingModel } from '../../src/backbones/index.js';
import { loadEmbedder } from '../../src/cli/commands/eval.js';
import { embedBatch } from '../../src/eval/embedder.js';
import { backboneToOnnx } from '../../src/onnx/writer.js';
import { decodeModel, onnx } from '../../src/onnx/proto.js';
import { readOnnxBackbone } from '../../src/onnx/importer.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { withInitArchitecture } from '../../src/train/initFrom.js';
import { train } from '../../src/train/trainer.js';

await setupEngine();
const data = await tinySynth();
const dir = mkdtempSync(path.join(os.tmpdir(), 'attfc-initfrom-'));
const quiet = { log: () => undefined };
const SIZE = 32;

// A MobileFaceNet (insightface scale 1) as a PyTorch export leaves it: norms folded, no attfc metadata.
const source = createBackbone('mbf', { inputSize: SIZE, mbfScale: 1, embeddingSize: 32, seed: 9 });
randomiseNorms(source, 9);
const folded = decodeModel(backboneToOnnx(source, { foldBatchNorm: true }), 'test');
folded.metadataProps = [];
const onnxFile = path.join(dir, 'mbf_s1.onnx');
writeFileSync(onnxFile, onnx.ModelProto.encode(folded).finish());
const modelDir = path.join(dir, 'attfc-model');
await saveEmbeddingModel(source, modelDir, {});
source.dispose();

const base = (output: string) => {
  const { backbone: _b, widthMultiplier: _w, inputSize: _i, embeddingSize: _e, ...rest } = tinyTrainConfig(data, output);
  return { ...rest, initFrom: onnxFile };
};

test('initFrom fills in the architecture keys and refuses different ones in one line', () => {
  const filled = withInitArchitecture({ data, initFrom: onnxFile, lr: 0.01 });
  assert.deepEqual(
    { backbone: filled.backbone, inputSize: filled.inputSize, widthMultiplier: filled.widthMultiplier, embeddingSize: filled.embeddingSize, mbfScale: filled.mbfScale },
    { backbone: 'mbf', inputSize: 32, widthMultiplier: 1, embeddingSize: 32, mbfScale: 1 },
  );
  assert.deepEqual(withInitArchitecture({ initFrom: modelDir, inputSize: 32 }).mbfScale, 1);
  assert.throws(
    () => withInitArchitecture({ initFrom: onnxFile, backbone: 'r50' }),
    /^AttfcError: initFrom .*mbf_s1\.onnx \(MobileFaceNet blocks \(1,4,6,2\), scale 1\) has backbone = "mbf", but backbone = "r50" was given; leave backbone out or match it$/,
  );
  assert.throws(() => withInitArchitecture({ initFrom: modelDir, inputSize: 112 }), /has inputSize = 32, but inputSize = 112 was given/);
  assert.throws(() => withInitArchitecture({ initFrom: path.join(dir, 'nothing') }), /initFrom .*nothing: cannot read \(ENOENT\)/);
});

test('train --init-from an ONNX file: f_q and f_k start from it, the config records it, a resume is exact without it', async () => {
  const out = path.join(dir, 'run');
  const logs: string[] = [];
  await train({ ...base(out), steps: 4, checkpointEvery: 2, lr: 0.001, export: 'onnx' }, { log: (l) => logs.push(l) }).done;
  const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.equal(config.initFrom, onnxFile);
  assert.deepEqual([config.backbone, config.mbfScale, config.inputSize, config.embeddingSize, config.widthMultiplier], ['mbf', 1, 32, 32, 1]);
  assert.ok(logs.some((l) => l.startsWith(`attfc: initialised f_q from ${onnxFile} (MobileFaceNet blocks (1,4,6,2), scale 1, sha256 `)), logs.join('\n'));
  assert.ok(logs.some((l) => /re-estimated the statistics of \d+ batch norms the file had folded into biases, on 96 training images/.test(l)));

  // f_k is f_q's EMA: after 2 steps its convolutions are still the imported ones (not a fresh init)
  const imported = readOnnxBackbone(onnxFile).weights;
  const ck = loadCheckpoint(path.join(out, 'checkpoints', 'ckpt-000000002'));
  for (const key of ['layers.0.layers.0.weight', 'conv_sep.layers.0.weight', 'features.layers.2.weight']) {
    const want = imported.get(key) as Float32Array;
    for (const net of ['fq', 'fk']) {
      const got = ck.arrays[`${net}/${key}`] as Float32Array;
      const worst = got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0);
      assert.ok(worst < 0.01 * Math.max(...want.map(Math.abs)), `${net}/${key} moved by ${worst}`);
    }
  }

  // the exported model.onnx runs in onnxruntime with the model folder's embeddings
  const x = randomImages(3, SIZE, 4);
  const folder = await loadEmbedder(path.join(out, 'model'));
  const expected = (await embedBatch(folder.embedder, x, 3)).orig;
  folder.dispose();
  const session = await ort.InferenceSession.create(path.join(out, 'model', 'model.onnx'));
  const got = await ortEmbed(session, x, 3, SIZE);
  await session.release();
  assert.ok(Math.max(...cosineDistances(got, expected, 3)) < 1e-4);

  // resume from step 2 of a copy, with the ONNX file gone: the weights come from the checkpoint
  const copy = path.join(dir, 'run-copy');
  cpSync(out, copy, { recursive: true });
  rmSync(path.join(copy, 'checkpoints', 'ckpt-000000004'), { recursive: true });
  const moved = `${onnxFile}.away`;
  cpSync(onnxFile, moved);
  rmSync(onnxFile);
  try {
    const r = await train(null, { ...quiet, resume: path.join(copy, 'checkpoints', 'ckpt-000000002') }).done;
    assert.equal(r.steps, 4);
  } finally {
    cpSync(moved, onnxFile);
  }
  assertNewestCheckpointsMatch(out, copy);
});

test('train --init-from an attfc model folder starts from its weights', async () => {
  const out = path.join(dir, 'from-folder');
  const { initFrom: _i, ...rest } = base(out);
  const logs: string[] = [];
  await train({ ...rest, initFrom: modelDir, steps: 1, lr: 1e-6, export: false }, { log: (l) => logs.push(l) }).done;
  assert.ok(logs.includes(`attfc: initialised f_q from the model folder ${modelDir}`));
  assert.ok(!logs.some((l) => l.includes('re-estimated')), 'a model folder from attfc has real batch-norm statistics');
  const ck = loadCheckpoint(path.join(out, 'checkpoints', 'ckpt-000000001'));
  const want = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8')).weightsManifest[0].weights[0];
  assert.equal(want.name, 'layers.0.layers.0/kernel');
  const bin = readFileSync(path.join(modelDir, 'weights.bin'));
  const weights = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
  const got = ck.arrays['fk/layers.0.layers.0.weight'] as Float32Array;
  got.forEach((v, i) => assert.ok(Math.abs(v - weights[i]) < 1e-5 * Math.max(1, Math.abs(weights[i]))));
});

test('the CLI: --print-config shows what --init-from fixes; a conflicting flag is one line, exit 1', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, ['bin/attfc.js', 'train', '--data', data, '--init-from', onnxFile, ...args], { encoding: 'utf8', timeout: 120_000 });
  const ok = run('--print-config');
  assert.equal(ok.status, 0, ok.stderr);
  const c = JSON.parse(ok.stdout);
  assert.deepEqual([c.backbone, c.mbfScale, c.inputSize, c.embeddingSize, c.initFrom], ['mbf', 1, 32, 32, onnxFile]);
  const bad = run('--embedding-size', '512', '--print-config');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr.trim(), /^attfc: initFrom .* has embeddingSize = 32, but embeddingSize = 512 was given; leave embeddingSize out or match it$/);
});
