// attfc -> ONNX: onnxruntime runs the exported file and gives attfc's embeddings (random and face-like
// inputs, dynamic batch), for IResNet-18 and MobileFaceNet at 112x112, with and without folded norms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { setupEngine } from '../helpers/engine.js';
import { attfcEmbed, cosineDistances, ortEmbed, randomImages, randomiseNorms } from '../helpers/onnx.js';
import { createBackbone } from '../../src/backbones/index.js';
import { backboneToOnnx, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from '../../src/onnx/writer.js';
import { decodeModel } from '../../src/onnx/proto.js';
import { renderFace } from './faces.js';

await setupEngine();

const SIZE = 112;

for (const name of ['r18', 'mbf'] as const) {
  test(`${name} exported to ONNX: onnxruntime embeddings equal attfc's (cosine distance < 1e-4)`, async () => {
    const b = createBackbone(name, { inputSize: SIZE, seed: 5 });
    try {
      randomiseNorms(b, 11);
      const faces = await renderFace(2, SIZE);
      const inputs = [
        { label: 'random', x: randomImages(2, SIZE, 3), n: 2 },
        { label: 'face-like', x: faces, n: 2 },
      ];
      const expected = inputs.map((i) => attfcEmbed(b, i.x, i.n, SIZE));
      for (const fold of [false, true]) {
        const bytes = backboneToOnnx(b, { foldBatchNorm: fold });
        const model = decodeModel(bytes, 'export');
        assert.equal(Number(model.opsetImport?.[0].version), 13);
        const g = model.graph!;
        assert.deepEqual([g.input![0].name, g.output![0].name], [ONNX_INPUT_NAME, ONNX_OUTPUT_NAME]);
        assert.equal(g.input![0].type!.tensorType!.shape!.dim![0].dimParam, 'batch', 'dynamic batch');
        assert.deepEqual(g.output![0].type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue)), ['batch', 512]);
        const ops = new Set(g.node!.map((n) => n.opType));
        assert.equal(ops.has('BatchNormalization'), true); // IResNet's pre-activation norms and the BN1d never fold
        if (name === 'mbf') assert.equal(g.node!.filter((n) => n.opType === 'BatchNormalization').length > 1, !fold);
        const session = await ort.InferenceSession.create(bytes);
        try {
          for (let k = 0; k < inputs.length; k++) {
            const got = await ortEmbed(session, inputs[k].x, inputs[k].n, SIZE);
            const d = cosineDistances(got, expected[k], inputs[k].n);
            assert.ok(Math.max(...d) < 1e-4, `${inputs[k].label}${fold ? ' (folded)' : ''}: cosine distances ${d}`);
          }
          // the batch dimension is dynamic: one image alone gives the same row
          const one = await ortEmbed(session, faces.subarray(0, SIZE * SIZE * 3), 1, SIZE);
          assert.ok(cosineDistances(one, expected[1].subarray(0, 512), 1)[0] < 1e-4);
        } finally {
          await session.release();
        }
      }
    } finally {
      b.dispose();
    }
  });
}
