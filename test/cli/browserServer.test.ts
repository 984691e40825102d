// The local server behind `attfc serve`: the page, the shared pixel module, TensorFlow.js bundles and
// the model's files; nothing else, and a clear error for a folder without a model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startBrowserServer } from '../../src/cli/browserServer.js';
import { AttfcError } from '../../src/errors.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'attfc-serve-'));
const modelDir = path.join(dir, 'model');
const modelJson = { modelTopology: { class_name: 'Model' }, weightsManifest: [{ paths: ['weights.bin'], weights: [] }], userDefinedMetadata: { inputSize: 32 } };
mkdirSync(modelDir);
writeFileSync(path.join(modelDir, 'model.json'), JSON.stringify(modelJson));
writeFileSync(path.join(modelDir, 'weights.bin'), Buffer.from([1, 2, 3, 4]));
writeFileSync(path.join(dir, 'secret.txt'), 'not served');

test('serves the page, faceCrop.js, tfjs bundles and the model; 404 elsewhere, 405 for writes', async () => {
  const server = await startBrowserServer({ modelDir, port: 0 });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const get = (p: string, init?: RequestInit) => fetch(new URL(p, server.url), init);
    const page = await get('');
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin');
    assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
    assert.equal(await page.text(), readFileSync('examples/browser/index.html', 'utf8'));
    const crop = await get('attfc/faceCrop.js');
    assert.equal(crop.status, 200);
    assert.match(await crop.text(), /export function squareCropResize/);
    for (const f of ['tf-core.min.js', 'tf-layers.min.js', 'tf-backend-webgl.min.js', 'tf-backend-wasm.min.js', 'tfjs-backend-wasm-simd.wasm']) {
      const r = await get(`tfjs/${f}`);
      assert.equal(r.status, 200, f);
      await r.arrayBuffer();
    }
    assert.equal((await get('tfjs/tfjs-backend-wasm-simd.wasm')).headers.get('content-type'), 'application/wasm');
    assert.deepEqual(await (await get('model/model.json')).json(), modelJson);
    assert.deepEqual([...new Uint8Array(await (await get('model/weights.bin')).arrayBuffer())], [1, 2, 3, 4]);
    for (const p of ['model/..%2Fsecret.txt', 'model/%2e%2e/secret.txt', '..%2Fsecret.txt', 'tfjs/package.json', 'src/index.ts', 'model/nope.bin', 'a/b/c', 'model/%E0%A4%A'])
      assert.equal((await get(p)).status, 404, p);
    assert.equal((await get('', { method: 'POST' })).status, 405);
    const head = await get('verifier.js', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(await head.text(), '');
  } finally {
    await server.close();
  }
});

test('a folder without a model is a one-line user error', async () => {
  await assert.rejects(
    startBrowserServer({ modelDir: dir, port: 0 }),
    (e: unknown) => e instanceof AttfcError && e.message === `${path.join(dir, 'model.json')}: cannot read the model (no such file); give the folder attfc train exported (npm start writes runs/demo/run/model)`,
  );
  const r = spawnSync(process.execPath, ['bin/attfc.js', 'serve', dir, '--port', '0'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `attfc: ${path.join(dir, 'model.json')}: cannot read the model (no such file); give the folder attfc train exported (npm start writes runs/demo/run/model)\n`);
});
