// The browser page with face alignment on, in a real headless Chromium, on real photos (the astronaut,
// AT&T faces, the cat) with a real recogniser (faceplugin's MobileFaceNet, imported): the page must find
// the faces Node finds (boxes and landmarks within 1 px, on WebGL and on WASM), show them and the
// aligned crops, embed like Node (cosine >= 0.999) and give Node's verdicts; the cat gets "no face".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attData, attDataMissing, facepluginFeatureModel } from '../helpers/onnx.js';
import { cosine, photosDir, photosMissing } from '../helpers/faces.js';
import { chromiumMissing, openServedPage } from '../helpers/browser.js';
import { readOnnxBackbone, writeImportedModel } from '../../src/onnx/importer.js';
import { updateModelMetadata } from '../../src/backbones/index.js';
import { loadEmbedder } from '../../src/embed.js';
import { detectFaces } from '../../src/face/detect.js';
import { bestSimilarityThreshold, thresholdRecord } from '../../src/eval/threshold.js';
import { initEngine, shutdownEngine } from '../../src/engine/index.js';

const skip = chromiumMissing() ?? attDataMissing() ?? photosMissing();

interface PageFace {
  name: string;
  detections: { box: number[]; landmarks5: number[][] }[];
  crop: number[];
  embedding: number[];
}

test('the browser page finds, aligns and verifies faces in photos like Node (headless Chromium, WebGL and WASM)', { skip, timeout: 600_000 }, async (t) => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'attfc-browser-align-'));
  const faces = path.join(attData() as string, 'att_faces_112');
  const photos = photosDir() as string;
  const files = [path.join(photos, 'astronaut.png'), path.join(faces, 's1', '1.jpg'), path.join(faces, 's1', '2.jpg'), path.join(faces, 's2', '1.jpg')];
  const chelsea = path.join(photos, 'chelsea.png');

  // The real model, with a threshold chosen in Node on aligned AT&T faces (4 identities x 2 images).
  const modelDir = path.join(work, 'mbf');
  await initEngine({ log: false });
  await writeImportedModel(readOnnxBackbone(facepluginFeatureModel()), modelDir);
  let embedder = await loadEmbedder(modelDir);
  const calib = [5, 6, 7, 8].flatMap((s) => [1, 2].map((k) => path.join(faces, `s${s}`, `${k}.jpg`)));
  const ce = await embedder.embed(calib, { align: true });
  const sims: number[] = [];
  const same: boolean[] = [];
  for (let i = 0; i < ce.length; i++)
    for (let j = i + 1; j < ce.length; j++) {
      sims.push(embedder.similarity(ce[i], ce[j]));
      same.push(Math.floor(i / 2) === Math.floor(j / 2));
    }
  const best = bestSimilarityThreshold(Float64Array.from(sims), same);
  embedder.dispose();
  await updateModelMetadata(modelDir, { verification: thresholdRecord({ name: 'att-4x2-aligned (test)', pairs: sims.length, threshold: { similarity: best.threshold, accuracy: best.accuracy } }, { chosenBy: 'browserAlign.test.ts' }) });

  embedder = await loadEmbedder(modelDir);
  const nodeFaces = await Promise.all(files.map((f) => detectFaces(f)));
  const nodeEmbeddings: Float32Array[] = [];
  for (const f of files) nodeEmbeddings.push((await embedder.embedFace(f))!.embedding);
  const pairs: [number, number][] = [[1, 2], [1, 3], [0, 1]];
  const nodeVerdicts = await Promise.all(pairs.map(([i, j]) => embedder.verify(nodeEmbeddings[i], nodeEmbeddings[j])));
  assert.deepEqual(nodeVerdicts.map((v) => v.same), [true, false, false], 'Node: the same AT&T person, two people, the astronaut and a man');
  embedder.dispose();
  shutdownEngine();

  const served = await openServedPage(modelDir, { width: 900, height: 1200 });
  const { url, page, pageErrors } = served;
  try {
    const readFace = async (slot: 'a' | 'b') =>
      (await page.evaluate(`(() => { const f = window.attfcVerifier.faces.${slot}; return f && { name: f.name, detections: f.detections, crop: f.crop, embedding: f.embedding }; })()`)) as PageFace | null;

    const runs = [''];
    for (let r = 0; r < runs.length; r++) {
      await page.goto(url + runs[r]);
      await page.waitForFunction(() => (window as unknown as { attfcVerifier?: { ready?: boolean } }).attfcVerifier?.ready, null, { timeout: 120_000 });
      const backend = /^Backend: (\w+)/.exec((await page.textContent('#backend')) ?? '')?.[1] ?? '?';
      if (r === 0 && backend !== 'wasm') runs.push('?backend=wasm');
      assert.equal(await page.textContent('#face-models'), 'Face models loaded.');
      let worstPoint = 0;
      let worstCosine = 1;
      for (const [p, [i, j]] of pairs.entries()) {
        await page.setInputFiles('#file-a', files[i]);
        await page.setInputFiles('#file-b', files[j]);
        const names = [path.basename(files[i]), path.basename(files[j])];
        await page.waitForFunction(
          ([a, b]) => {
            const v = (window as unknown as { attfcVerifier: { result: { a: string; b: string } | null } }).attfcVerifier;
            return v.result !== null && v.result.a === a && v.result.b === b;
          },
          names,
          { timeout: 120_000 },
        );
        for (const [slot, k] of [['a', i], ['b', j]] as const) {
          const face = (await readFace(slot)) as PageFace;
          assert.equal(face.detections.length, nodeFaces[k].length, `${backend}: ${face.name}: as many faces as Node finds`);
          face.detections.forEach((d, n) => {
            const node = nodeFaces[k][n];
            const gaps = [...d.box.map((v, q) => Math.abs(v - node.box[q])), ...d.landmarks5.flatMap((pt, q) => [Math.abs(pt[0] - node.landmarks5[q][0]), Math.abs(pt[1] - node.landmarks5[q][1])])];
            worstPoint = Math.max(worstPoint, ...gaps);
            assert.ok(Math.max(...gaps) <= 1, `${backend}: ${face.name}: box and landmarks within 1 px of Node's (largest gap ${Math.max(...gaps)})`);
          });
          assert.equal(face.crop.length, 112 * 112 * 3);
          const c = cosine(face.embedding, nodeEmbeddings[k]);
          worstCosine = Math.min(worstCosine, c);
          assert.ok(c >= 0.999, `${backend}: ${face.name}: cosine(page, Node) = ${c}`);
          const photo = await page.$eval(`#photo-${slot}`, (el) => [(el as HTMLCanvasElement).width, (el as HTMLCanvasElement).height]);
          assert.ok(photo[0] > 1 && photo[1] > 1, `${backend}: the photo is drawn with its boxes`);
        }
        const shown = (await page.textContent('#result')) ?? '';
        assert.match(shown, new RegExp(`^Cosine similarity -?\\d\\.\\d{5}: ${nodeVerdicts[p].same ? 'same person' : 'different people'} \\(threshold`), `${backend}: pair ${names}`);
      }
      t.diagnostic(`${backend}: largest box/landmark gap to Node ${worstPoint.toExponential(2)} px; lowest cosine(page, Node) ${worstCosine.toFixed(6)}; verdicts as in Node`);
      const shotDir = path.join(os.tmpdir(), 'attfc-test-artifacts');
      mkdirSync(shotDir, { recursive: true });
      await page.screenshot({ path: path.join(shotDir, `browser-align-${backend}.png`), fullPage: true });

      // the cat: no face, said so, no verdict
      await page.setInputFiles('#file-b', chelsea);
      await page.waitForFunction(() => document.querySelector('#info-b')?.classList.contains('error'), null, { timeout: 120_000 });
      assert.match((await page.textContent('#info-b')) ?? '', /^chelsea\.png: cannot use this image \(no face found in 451x300\)$/);
      assert.equal(await page.textContent('#result'), 'Choose two faces.');
    }
    assert.deepEqual(pageErrors, []);
  } finally {
    await served.close();
    rmSync(work, { recursive: true, force: true });
  }
});
