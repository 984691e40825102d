// ONNX -> attfc: export -> import gives back identical weights and embeddings for every backbone;
// files laid out like insightface's PyTorch exports (folded norms, bare-number names, MatMul + Add,
// Shape arithmetic before Reshape, raw-pixel input with Sub/Mul) import to the same function as
// onnxruntime computes; anything else is one line naming the node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setupEngine } from '../helpers/engine.js';
import { attfcEmbed, cosineDistances, ortEmbed, randomImages, randomiseNorms } from '../helpers/onnx.js';
import { createBackbone, backboneWeights, loadBackboneFromModelDir, type Backbone, type BackboneOptions } from '../../src/backbones/index.js';
import { recalibrateUnfoldedNorms } from '../../src/backbones/unfoldedNorms.js';
import { backboneToOnnx } from '../../src/onnx/writer.js';
import { importedBackbone, readOnnxBackbone, writeImportedModel } from '../../src/onnx/importer.js';
import { DataType, decodeModel, onnx, type ModelProto, type NodeProto } from '../../src/onnx/proto.js';

await setupEngine();
const dir = mkdtempSync(path.join(os.tmpdir(), 'attfc-onnx-import-'));
let files = 0;
const save = (bytes: Uint8Array): string => {
  const f = path.join(dir, `m${files++}.onnx`);
  writeFileSync(f, bytes);
  return f;
};

/** The graph as a foreign exporter would leave it: no attfc metadata, initializers and nodes renamed to numbers. */
function anonymise(bytes: Uint8Array): ModelProto {
  const m = decodeModel(bytes, 'test');
  m.metadataProps = [];
  const names = new Map<string, string>();
  const rename = (n: string) => (n === 'input' || n === 'output' ? n : (names.get(n) ?? (names.set(n, String(500 + names.size)), names.get(n) as string)));
  for (const t of m.graph!.initializer!) t.name = rename(t.name as string);
  m.graph!.node!.forEach((n, i) => {
    n.name = `${n.opType}_${i}`;
    n.input = n.input!.map(rename);
    n.output = n.output!.map(rename);
  });
  return m;
}

const encode = (m: ModelProto) => onnx.ModelProto.encode(m).finish();

const CASES: [string, BackboneOptions][] = [
  ['r18', { inputSize: 48, widthMultiplier: 0.25, embeddingSize: 64 }],
  ['r34', { inputSize: 32, widthMultiplier: 0.125, embeddingSize: 16 }],
  ['r50', { inputSize: 32, widthMultiplier: 0.125, embeddingSize: 16 }],
  ['r100', { inputSize: 32, widthMultiplier: 0.125, embeddingSize: 16 }],
  ['r200', { inputSize: 32, widthMultiplier: 0.125, embeddingSize: 16 }],
  ['mbf', { inputSize: 48, widthMultiplier: 0.5, embeddingSize: 64 }],
  ['mbf', { inputSize: 32, mbfScale: 1, embeddingSize: 32 }],
  ['mbf_large', { inputSize: 32, widthMultiplier: 0.25, embeddingSize: 16 }],
];

for (const [name, options] of CASES) {
  test(`export -> import round trip of ${name} ${JSON.stringify(options)}: identical weights and embeddings`, () => {
    const b = createBackbone(name, { ...options, seed: 4 });
    let back: Backbone | null = null;
    try {
      randomiseNorms(b, 8);
      const imp = readOnnxBackbone(save(backboneToOnnx(b)));
      assert.equal(imp.backbone, name);
      assert.deepEqual({ ...imp.options }, { widthMultiplier: 1, ...options });
      assert.equal(imp.unfoldedBatchNorms, 0);
      const mine = backboneWeights(b);
      assert.deepEqual([...imp.weights.keys()].sort(), [...mine.keys()].sort());
      for (const [k, v] of mine) assert.deepEqual(imp.weights.get(k), v, k);
      back = importedBackbone(imp);
      const x = randomImages(2, options.inputSize as number, 1);
      assert.deepEqual(attfcEmbed(back, x, 2, options.inputSize as number), attfcEmbed(b, x, 2, options.inputSize as number));
    } finally {
      b.dispose();
      back?.dispose();
    }
  });
}

test('import, export and re-estimation leave no tensors behind', () => {
  const before = tf.memory().numTensors;
  const b = createBackbone('mbf', { inputSize: 32, mbfScale: 1, embeddingSize: 16 });
  const back = importedBackbone(readOnnxBackbone(save(backboneToOnnx(b, { foldBatchNorm: true }))));
  recalibrateUnfoldedNorms(back, randomImages(4, 32, 1), 4);
  b.dispose();
  back.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('IResNet and MobileFaceNet are recognised from structure alone: bare-number names, no metadata', () => {
  for (const [name, options] of [CASES[0], CASES[6]]) {
    const b = createBackbone(name, { ...options, seed: 4 });
    try {
      const imp = readOnnxBackbone(save(encode(anonymise(backboneToOnnx(b)))));
      assert.equal(imp.backbone, name);
      assert.deepEqual({ ...imp.options }, { widthMultiplier: 1, ...options });
      for (const [k, v] of backboneWeights(b)) assert.deepEqual(imp.weights.get(k), v, k);
    } finally {
      b.dispose();
    }
  }
});

for (const name of ['r18', 'mbf'] as const) {
  test(`${name} with batch norms folded into conv biases (as PyTorch exports) imports to what onnxruntime computes`, async () => {
    const size = 48;
    const b = createBackbone(name, { inputSize: size, widthMultiplier: 0.25, embeddingSize: 32, seed: 6 });
    let back: Backbone | null = null;
    try {
      randomiseNorms(b, 3);
      const bytes = encode(anonymise(backboneToOnnx(b, { foldBatchNorm: true })));
      const imp = readOnnxBackbone(save(bytes));
      // without metadata: attfc's width x0.25 MobileFaceNet is not insightface's scale 0.5 (its grouped conv differs)
      assert.deepEqual({ ...imp.options }, { inputSize: size, embeddingSize: 32, widthMultiplier: 0.25 });
      assert.ok(imp.unfoldedBatchNorms > 10, `${imp.unfoldedBatchNorms} unfolded`);
      back = importedBackbone(imp);
      // an unfolded norm is gamma 1, beta = bias, mean 0, var 1 - eps
      const w = backboneWeights(back);
      const bn = name === 'r18' ? 'bn1' : 'layers.0.layers.1';
      assert.ok(w.get(`${bn}.weight`)!.every((v) => v === 1) && w.get(`${bn}.running_mean`)!.every((v) => v === 0));
      assert.ok(w.get(`${bn}.running_var`)!.every((v) => v === Math.fround(1 - 1e-5)));
      const x = randomImages(3, size, 2);
      const session = await ort.InferenceSession.create(bytes);
      const d = cosineDistances(attfcEmbed(back, x, 3, size), await ortEmbed(session, x, 3, size), 3);
      await session.release();
      assert.ok(Math.max(...d) < 1e-4, `cosine distances ${d}`);
      // trainable again: the unfolded norms are parameters of the rebuilt backbone
      assert.ok(back.trainableVariables().length === b.trainableVariables().length);
    } finally {
      b.dispose();
      back?.dispose();
    }
  });
}

test("other exporters' spellings: MatMul + Add, Shape/Gather/Unsqueeze/Concat before Reshape, raw pixels with Sub/Mul", async () => {
  const size = 32;
  const b = createBackbone('r18', { inputSize: size, widthMultiplier: 0.125, embeddingSize: 16, seed: 2 });
  let back: Backbone | null = null;
  try {
    randomiseNorms(b, 5);
    const m = anonymise(backboneToOnnx(b, { foldBatchNorm: true }));
    const g = m.graph!;
    const nodes = g.node!;
    const init = g.initializer!;
    const i64 = (name: string, v: number[], dims = [v.length]) => ({ name, dims, dataType: DataType.INT64, int64Data: v });
    const f32 = (name: string, v: number[]) => ({ name, dims: [], dataType: DataType.FLOAT, floatData: v });
    // Flatten -> x.view(x.size(0), -1)
    const fi = nodes.findIndex((n) => n.opType === 'Flatten');
    const flat = nodes[fi];
    const src = flat.input![0];
    init.push(i64('idx0', [0], []), i64('ax0', [0]), i64('minus1', [-1]));
    nodes.splice(
      fi,
      1,
      { opType: 'Shape', name: 'Shape_a', input: [src], output: ['shp'] },
      { opType: 'Gather', name: 'Gather_a', input: ['shp', 'idx0'], output: ['n'], attribute: [{ name: 'axis', type: 2, i: 0 }] },
      { opType: 'Unsqueeze', name: 'Unsqueeze_a', input: ['n', 'ax0'], output: ['n1'] },
      { opType: 'Concat', name: 'Concat_a', input: ['n1', 'minus1'], output: ['target'], attribute: [{ name: 'axis', type: 2, i: 0 }] },
      { opType: 'Reshape', name: 'Reshape_a', input: [src, 'target'], output: flat.output },
    );
    // Gemm(transB) -> MatMul + Add
    const gi = nodes.findIndex((n) => n.opType === 'Gemm');
    const gemm = nodes[gi];
    const wt = init.find((t) => t.name === gemm.input![1])!;
    const [outF, inF] = wt.dims!.map(Number);
    const wv = new Float32Array(new Uint8Array(wt.rawData!).buffer);
    const kio = new Float32Array(wv.length);
    for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) kio[i * outF + o] = wv[o * inF + i];
    init.push({ name: 'fc_kio', dims: [inF, outF], dataType: DataType.FLOAT, rawData: new Uint8Array(kio.buffer) });
    nodes.splice(
      gi,
      1,
      { opType: 'MatMul', name: 'MatMul_a', input: [gemm.input![0], 'fc_kio'], output: ['mm'] },
      { opType: 'Add', name: 'Add_bias', input: ['mm', gemm.input![2]], output: gemm.output },
    );
    // raw pixels in, normalised inside: (x - 127.5) * (1/127.5)
    init.push(f32('mean', [127.5]), f32('inv_std', [1 / 127.5]));
    nodes.forEach((n) => (n.input = n.input!.map((t) => (t === 'input' ? 'scaled' : t))));
    nodes.unshift({ opType: 'Sub', name: 'Sub_0', input: ['input', 'mean'], output: ['centred'] }, { opType: 'Mul', name: 'Mul_0', input: ['centred', 'inv_std'], output: ['scaled'] });
    const bytes = encode(m);
    const imp = readOnnxBackbone(save(bytes));
    assert.equal(imp.backbone, 'r18');
    assert.ok(Math.abs(imp.inputScale - 1) < 1e-6, `input scale ${imp.inputScale}`);
    back = importedBackbone(imp);
    const x = randomImages(2, size, 9);
    const raw = x.map((v) => v * 127.5 + 127.5);
    const session = await ort.InferenceSession.create(bytes);
    const d = cosineDistances(attfcEmbed(back, x, 2, size), await ortEmbed(session, raw, 2, size), 2);
    await session.release();
    assert.ok(Math.max(...d) < 1e-4, `cosine distances ${d}`);
  } finally {
    b.dispose();
    back?.dispose();
  }
});

test('an in-graph input scaling that does not centre at 127.5 is refused (it cannot be folded exactly)', () => {
  const b = createBackbone('mbf', { inputSize: 32, widthMultiplier: 0.25, embeddingSize: 16 });
  try {
    const m = anonymise(backboneToOnnx(b));
    m.graph!.initializer!.push({ name: 'mean', dims: [], dataType: DataType.FLOAT, floatData: [120] });
    m.graph!.node!.forEach((n) => (n.input = n.input!.map((t) => (t === 'input' ? 'centred' : t))));
    m.graph!.node!.unshift({ opType: 'Sub', name: 'Sub_0', input: ['input', 'mean'], output: ['centred'] });
    const f = save(encode(m));
    assert.throws(() => readOnnxBackbone(f), (e: Error) => e.name === 'AttfcError' && /scales its input as x\*1 \+ -120, which does not centre raw pixels at 127\.5/.test(e.message) && !e.message.includes('\n'));
  } finally {
    b.dispose();
  }
});

test('anything else: one line naming the first node that does not fit', () => {
  const b = createBackbone('mbf', { inputSize: 32, widthMultiplier: 0.25, embeddingSize: 16 });
  try {
    const base = () => anonymise(backboneToOnnx(b));
    const fails = (m: ModelProto | Uint8Array, pattern: RegExp) => {
      const f = save(m instanceof Uint8Array ? m : encode(m));
      assert.throws(() => readOnnxBackbone(f), (e: Error) => {
        assert.equal(e.name, 'AttfcError');
        assert.ok(!e.message.includes('\n'), 'one line');
        assert.match(e.message, pattern);
        return true;
      });
    };
    // an operator attfc does not read
    const relu = base();
    const p = relu.graph!.node!.findIndex((n) => n.opType === 'PRelu');
    relu.graph!.node![p] = { ...relu.graph!.node![p], opType: 'Relu', input: [relu.graph!.node![p].input![0]] } as NodeProto;
    fails(relu, new RegExp(`node ${p} "PRelu_${p}" \\(Relu\\): operator Relu is not supported`));
    // a supported operator where the architecture has something else: a PReLU dropped (Identity)
    const noPrelu = base();
    const q = noPrelu.graph!.node!.findIndex((n) => n.opType === 'PRelu');
    noPrelu.graph!.node![q] = { ...noPrelu.graph!.node![q], opType: 'Identity', input: [noPrelu.graph!.node![q].input![0]] } as NodeProto;
    fails(noPrelu, new RegExp(`node ${q + 1} "Conv_${q + 1}" \\(Conv\\) does not fit MobileFaceNet blocks \\(1,4,6,2\\), scale 0\\.5 at layers\\.0\\.layers\\.2: expected a PReLU over 32 channels`));
    // a plain CNN: not a face-recognition backbone attfc knows
    const tiny = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        node: [
          { opType: 'Conv', name: 'c', input: ['input', 'w'], output: ['y'], attribute: [{ name: 'kernel_shape', type: 7, ints: [3, 3] }, { name: 'pads', type: 7, ints: [1, 1, 1, 1] }] },
          { opType: 'Flatten', name: 'f', input: ['y'], output: ['z'] },
          { opType: 'Gemm', name: 'fc', input: ['z', 'k'], output: ['output'], attribute: [{ name: 'transB', type: 2, i: 1 }] },
        ],
        initializer: [
          { name: 'w', dims: [4, 3, 3, 3], dataType: 1, rawData: new Uint8Array(4 * 27 * 4) },
          { name: 'k', dims: [8, 4 * 16 * 16], dataType: 1, rawData: new Uint8Array(8 * 1024 * 4) },
        ],
        input: [{ name: 'input', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 3 }, { dimValue: 16 }, { dimValue: 16 }] } } } }],
        output: [{ name: 'output', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 8 }] } } } }],
      },
    });
    fails(tiny, /an IResNet-like graph \(3x3 stride-1 stem\) with \[\] residual blocks per stage; attfc knows r18 \[2,2,2,2\]/);
    fails(Uint8Array.from([1, 2, 3, 4, 5, 250, 251]), /not an ONNX model/);
    assert.throws(() => readOnnxBackbone(path.join(dir, 'missing.onnx')), /missing\.onnx: cannot read \(ENOENT\)/);
  } finally {
    b.dispose();
  }
});

test('an import written as a model folder loads back with the same weights and records its source', async () => {
  const b = createBackbone('mbf', { inputSize: 32, mbfScale: 1, embeddingSize: 16, seed: 1 });
  try {
    randomiseNorms(b, 2);
    const f = save(encode(anonymise(backboneToOnnx(b, { foldBatchNorm: true }))));
    const imp = readOnnxBackbone(f);
    const out = path.join(dir, 'imported');
    await writeImportedModel(imp, out);
    await writeImportedModel(imp, out); // a folder holding only a previous model is replaced
    const { backbone, metadata } = await loadBackboneFromModelDir(out);
    try {
      for (const [k, v] of imp.weights) {
        const got = backboneWeights(backbone).get(k)!;
        const worst = got.reduce((m, x, i) => Math.max(m, Math.abs(x - v[i])), 0);
        assert.ok(worst <= 1e-7 * Math.max(1, ...v.map(Math.abs)), `${k}: ${worst}`);
      }
      assert.equal(metadata.backbone, 'mbf');
      assert.equal(metadata.mbfScale, 1);
      assert.equal(metadata.sourceSha256, imp.source.sha256);
      assert.equal(metadata.sourceFile, path.resolve(f));
      assert.equal(metadata.normalization, '(x/255-0.5)/0.5');
      assert.match(String(metadata.architecture), /MobileFaceNet blocks \(1,4,6,2\), scale 1/);
    } finally {
      backbone.dispose();
    }
    writeFileSync(path.join(out, 'notes.txt'), 'mine');
    await assert.rejects(writeImportedModel(imp, out), /holds other files \(notes\.txt\); give a new or empty folder/);
  } finally {
    b.dispose();
  }
});
