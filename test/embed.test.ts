// loadEmbedder(): verify() compares two faces with the threshold recorded in the model's metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setupEngine } from './helpers/engine.js';
import { fileSaveHandler, updateModelMetadata } from '../src/backbones/index.js';
import { loadEmbedder } from '../src/embed.js';
import { AttfcError } from '../src/errors.js';
import { makePairs, tinyModel, TINY_SIZE } from './eval/fixtures.js';

await setupEngine();
const dir = mkdtempSync(join(tmpdir(), 'attfc-embed-'));
const pairs = await makePairs(4);

test('verify() without a recorded threshold says how to get one', async () => {
  const model = join(dir, 'plain');
  await tinyModel().save(fileSaveHandler(model, { inputSize: TINY_SIZE }));
  const e = await loadEmbedder(model);
  assert.equal(e.verification, null);
  await assert.rejects(
    e.verify(pairs[0].a, pairs[0].b),
    (err: unknown) =>
      err instanceof AttfcError &&
      err.message === `${model}/model.json: the model has no verification threshold (userDefinedMetadata.verification); choose one with \`attfc eval --model ${model} --bin <pairs.bin>\` or train with --verify`,
  );
  e.dispose();
});

test('verify(): similarity of the two embeddings, same iff it reaches the threshold; images or embeddings', async () => {
  const model = join(dir, 'with-threshold');
  await tinyModel().save(fileSaveHandler(model, { inputSize: TINY_SIZE }));
  const probe = await loadEmbedder(model);
  const [a, b] = await probe.embed([pairs[1].a, pairs[1].b]);
  const s = probe.similarity(a, b);
  probe.dispose();
  assert.ok(s < 0.999999, 'two different images');

  // a threshold exactly at this pair's similarity: >= makes it "same"; the next double up makes it "different"
  for (const [threshold, same] of [[s, true], [s + 1e-9, false]] as const) {
    await updateModelMetadata(model, { verification: { threshold, set: 'hand-made', pairs: 1, accuracy: 1, chosenBy: 'test' } });
    const e = await loadEmbedder(model);
    assert.equal(e.verification?.threshold, threshold);
    const fromImages = await e.verify(pairs[1].a, pairs[1].b);
    assert.ok(Math.abs(fromImages.similarity - s) < 1e-12);
    assert.equal(fromImages.same, same);
    assert.deepEqual(await e.verify(a, b), { similarity: s, same });
    const mixed = await e.verify(a, pairs[1].b); // an embedding and an image
    assert.equal(mixed.same, same);
    const self = await e.verify(pairs[2].a, pairs[2].a);
    assert.ok(Math.abs(self.similarity - 1) < 1e-6 && self.same);
    await assert.rejects(e.verify(a, Float32Array.from([1, 0])), /verify: embeddings must have 8 values, got 8 and 2/);
    e.dispose();
  }
});
