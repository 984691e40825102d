// Backbones as one native graph on backend torch (native/graph_step.cc, src/engine/torch/graph.ts)
// against the cpu backend's op-by-op forward pass: training-mode embeddings, every trainable variable's
// gradient, the running statistics a training forward leaves, inference with folded batch norms, and
// dropout masks drawn as tf.dropout draws them. Also: the tape is freed whether or not a backward pass
// runs, a graph step leaves no tensor behind, bad programs are exceptions, and ATTFC_TORCH_GRAPH=0 keeps
// the op-by-op path. Small widths and inputs keep the cpu reference quick; the kernels are the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine, torchSkipReason } from '../../helpers/engine.js';
import { randomArray } from '../kernelCompare.js';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBackbone, loadEmbeddingModel, saveEmbeddingModel, type BackboneOptions } from '../../../src/backbones/index.js';
import { embedderFromLayersModel } from '../../../src/eval/embedder.js';
import { loadModelEmbedder } from '../../../src/eval/modelEmbedder.js';
import { nativeGraphActive } from '../../../src/engine/torch/graph.js';
import type { TorchBackend } from '../../../src/engine/torch/index.js';

const skip = torchSkipReason();
if (!skip) await setupEngine({ backend: 'torch', threads: 1 });

const B = 4;

/** Everything a training and an inference pass produce, as arrays, on the current backend. */
function passes(name: string, opts: BackboneOptions, calls = 1): Float32Array[] {
  const b = createBackbone(name, { seed: 7, ...opts });
  const size = b.options.inputSize;
  const out: Float32Array[] = [];
  const read = (t: tf.Tensor) => out.push(t.dataSync().slice() as Float32Array);
  try {
    tf.tidy(() => {
      for (let c = 0; c < calls; c++) {
        const x = tf.tensor4d(randomArray(B * size * size * 3, 20 + c), [B, size, size, 3]);
        const cot = tf.tensor2d(randomArray(B * b.options.embeddingSize, 30 + c), [B, b.options.embeddingSize]);
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(b.apply(x, true), cot)) as tf.Scalar, b.trainableVariables());
        read(value);
        b.trainableVariables().forEach((v) => read(grads[v.name]));
        read(b.apply(x, true)); // a training forward without a tape
      }
      for (const v of b.variables()) if (v.kind === 'buffer') read(v.variable);
      read(b.apply(tf.tensor4d(randomArray(B * size * size * 3, 40), [B, size, size, 3]), false));
    });
  } finally {
    b.dispose();
  }
  return out;
}

const norm = (a: Float32Array) => Math.sqrt(a.reduce((t, v) => t + v * v, 0));

/** Worst relative L2 error over the arrays that carry at least 1e-3 of the total norm (as in trainingStep.test.ts). */
function worst(torch: Float32Array[], cpu: Float32Array[]): number {
  const total = Math.sqrt(cpu.reduce((t, c) => t + norm(c) ** 2, 0));
  let w = 0;
  cpu.forEach((c, i) => {
    if (norm(c) < 1e-3 * total) return;
    const d = Math.sqrt(c.reduce((t, v, j) => t + (v - torch[i][j]) ** 2, 0));
    w = Math.max(w, d / norm(c));
  });
  return w;
}

const CASES: [string, string, BackboneOptions, number][] = [
  // grouped conv with 2 in and 2 out per group, depthwise and 1x1 convs channels-last, a 2x2 GDC
  ['mbf scale 1 x0.5 at 32', 'mbf', { inputSize: 32, widthMultiplier: 0.5, embeddingSize: 16, mbfScale: 1 }, 1],
  // dense 3x3 convs in NCHW, strided 1x1 shortcuts, flatten in NHWC order, dropout 0.3 over two calls
  ['r18 x0.125 at 24 with dropout', 'r18', { inputSize: 24, widthMultiplier: 0.125, embeddingSize: 16, dropout: 0.3 }, 2],
  // 1x1 final maps (H = W = 1: both memory layouts at once)
  ['mbf_large x0.25 at 16', 'mbf_large', { inputSize: 16, widthMultiplier: 0.25, embeddingSize: 8 }, 1],
];

for (const [label, name, opts, calls] of CASES) {
  test(`native graph, ${label}: gradients, running statistics, dropout and folded inference equal cpu`, { skip }, async () => {
    await tf.setBackend('cpu');
    const cpu = passes(name, opts, calls);
    await tf.setBackend('torch');
    assert.ok(nativeGraphActive());
    const torch = passes(name, opts, calls);
    assert.equal(torch.length, cpu.length);
    const e = worst(torch, cpu);
    assert.ok(e < 3e-3, `worst relative L2 error ${e}`);
  });
}

test('a graph step leaves no tensor behind, and a tape without a backward pass is freed with its tensor', { skip }, async () => {
  await tf.setBackend('torch');
  const b = tf.backend() as TorchBackend;
  const net = createBackbone('mbf', { inputSize: 16, widthMultiplier: 0.25, embeddingSize: 8, seed: 1 });
  const x = tf.tensor4d(randomArray(2 * 16 * 16 * 3, 5), [2, 16, 16, 3]);
  const count = () => ({ tensors: tf.memory().numTensors, handles: b.native.memory().handles });
  const step = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(net.apply(x, true)) as tf.Scalar, net.trainableVariables());
      tf.dispose([value, ...Object.values(grads)]);
      net.apply(x, false);
      // under a tape, but the gradient asked for does not go through the backbone: its tape is never used
      tf.grad((s: tf.Tensor) => tf.add(tf.mul(s, 2), tf.sum(net.apply(x, true))))(tf.scalar(1));
    });
  step();
  const before = count();
  for (let i = 0; i < 3; i++) step();
  assert.deepEqual(count(), before);
  tf.dispose(x);
  net.dispose();
});

test('malformed programs and a second backward pass are exceptions, not crashes', { skip }, async () => {
  await tf.setBackend('torch');
  const b = tf.backend() as TorchBackend;
  assert.throws(() => b.native.graphCreate(Int32Array.from([99, 16, 3])), /not a version 1 program/);
  assert.throws(() => b.native.graphCreate(Int32Array.from([1, 16, 3, 1, 0, 3])), /ends inside conv/);
  assert.throws(() => b.native.graphCreate(Int32Array.from([1, 16, 3, 42])), /unknown op code 42/);
  assert.throws(() => b.native.graphCreate(Int32Array.from([1, 16, 3, 6])), /residual marker outside a residual/);
  // conv 3 -> 4 (3x3, stride 2, pad 1), then a batch norm
  const g = b.native.graphCreate(Int32Array.from([1, 8, 3, 1, 0, 3, 4, 3, 2, 1, 1, 2, 1, 2, 3, 4, 0]));
  const t = (values: number[], shape: number[]) => b.native.fromArray(Float32Array.from(values), shape, 'float32', 'cpu');
  const params = [t(randomArray(3 * 3 * 3 * 4, 1) as unknown as number[], [3, 3, 3, 4]), t([1, 1, 1, 1], [4]), t([0, 0, 0, 0], [4]), t([0, 0, 0, 0], [4]), t([1, 1, 1, 1], [4])];
  const x = t(Array.from(randomArray(2 * 8 * 8 * 3, 2)), [2, 8, 8, 3]);
  const wrong = t(Array.from(randomArray(2 * 6 * 6 * 3, 2)), [2, 6, 6, 3]);
  assert.throws(() => b.native.graphForward(g, wrong, params, [], 2), /expected float32 CPU images \[N, 8, 8, 3\]/);
  assert.throws(() => b.native.graphForward(g, x, params.slice(0, 3), [], 2), /uses 5 parameters, 3 given/);
  const [y, tape, stats] = b.native.graphForward(g, x, params, [], 2);
  assert.deepEqual(b.native.meta(y), ['float32', 2, 4, 4, 4]);
  assert.equal(stats.length, 2);
  const grads = b.native.graphBackward(tape as number, y, [0, 1, 2]);
  assert.throws(() => b.native.graphBackward(tape as number, y, [0, 1, 2]), /used already/);
  assert.throws(() => b.native.graphBackward(y, y, [0]), /not a graph tape/);
  b.aten.free(y, tape, ...stats, ...(grads as number[]), ...params, x, wrong);
});

test('ATTFC_TORCH_GRAPH=0 runs the op-by-op path on torch, with the same results', { skip }, async () => {
  await tf.setBackend('torch');
  const opts = { inputSize: 16, widthMultiplier: 0.25, embeddingSize: 8 };
  const graph = passes('mbf', opts);
  process.env.ATTFC_TORCH_GRAPH = '0';
  try {
    assert.equal(nativeGraphActive(), false);
    const ops = passes('mbf', opts);
    assert.ok(worst(graph, ops) < 3e-3);
  } finally {
    delete process.env.ATTFC_TORCH_GRAPH;
  }
});

test('a saved attfc model embeds through the native graph on torch (attfc eval, attfc embed, loadEmbedder), as its layers model does', { skip }, async () => {
  await tf.setBackend('torch');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'attfc-graph-'));
  const x = tf.tensor4d(randomArray(3 * 16 * 16 * 3, 8), [3, 16, 16, 3]);
  try {
    const b = createBackbone('mbf', { inputSize: 16, widthMultiplier: 0.25, embeddingSize: 8, seed: 3 });
    // running statistics away from their initial values
    for (let i = 0; i < 3; i++) tf.tidy(() => b.apply(x, true));
    await saveEmbeddingModel(b, dir, {});
    b.dispose();
    const loaded = await loadModelEmbedder(dir);
    assert.equal(loaded.runs, 'native graph');
    const { model } = await loadEmbeddingModel(dir);
    const [graph, layers] = tf.tidy(() => [loaded.embedder.embed(x), embedderFromLayersModel(model, 16).embed(x)].map((t) => t.dataSync().slice() as Float32Array));
    assert.ok(worst([graph], [layers]) < 1e-4, `relative L2 error ${worst([graph], [layers])}`);
    loaded.dispose();
    model.dispose();
    process.env.ATTFC_TORCH_GRAPH = '0';
    const plain = await loadModelEmbedder(dir);
    assert.equal(plain.runs, 'layers model');
    plain.dispose();
  } finally {
    delete process.env.ATTFC_TORCH_GRAPH;
    x.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
