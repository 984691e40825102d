// npm run bench:align [-- --images 400] [--photo-repeats 5] [--rounds 2] [--json]
// Face detection + five landmarks + the ArcFace warp, in images/s on the WASM backend, for attfc's
// pipeline (BlazeFace over a window pyramid, two FaceMesh passes) against @vladmandic/human's own
// pipeline (its BlazeFace + FaceMesh on the same model files, default face settings but no caching of
// boxes between images, one window, one mesh pass; the five points then taken from its mesh and warped
// the same way), on the same decoded
// images in the same process, interleaved in chunks of 10 images so both see the same load. Also counts how
// many of the AT&T images each finds a face in (the detection rate). Decoding is not timed.
import { createServer } from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';
import { Command, InvalidArgumentError } from 'commander';
import { initEngine, describeEngine } from '../src/engine/index.js';
import { alignRgb } from '../src/face/align.js';
import { fivePointsFromMesh } from '../src/face/facemesh.js';
import { readRgbImage, type RgbImage } from '../src/face/image.js';
import { faceModelDir } from '../src/face/modelFiles.js';
import { loadFaceModels } from '../src/face/models.js';
import { detectFacesInPixels } from '../src/face/pipeline.js';
import { largestFace } from '../src/face/detect.js';
import { machineInfo, table } from './lib/timing.js';
import { parseOrExit } from './lib/flags.js';
import { attData } from '../test/helpers/onnx.js';
import { photosDir } from '../test/helpers/faces.js';

const whole = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number >= 1');
  return n;
};
const flags = parseOrExit(
  'bench:align',
  (argv) =>
    new Command('bench:align')
      .allowExcessArguments(false)
      .exitOverride()
      .option('--images <n>', 'AT&T images used (of 400)', whole, 400)
      .option('--photo-repeats <n>', 'times the two photos (astronaut, chelsea) are run per round', whole, 5)
      .option('--rounds <n>', 'rounds over all images (each interleaves the two pipelines)', whole, 2)
      .option('--json', 'print the results as JSON', false)
      .parse(argv, { from: 'user' })
      .opts<{ images: number; photoRepeats: number; rounds: number; json: boolean }>(),
  process.argv.slice(2),
);
const log = (s: string) => process.stderr.write(`${s}\n`);

const att = attData();
const photos = photosDir();
if (!att || !photos) {
  log('bench:align: needs the AT&T faces (../shared/data/att or $ATTFC_ATT_DATA) and ../shared/data/photos');
  process.exit(2);
}
const engine = await initEngine({ backend: 'wasm', log: false });
const root = path.join(att, 'att_faces_112');
const attFiles = readdirSync(root)
  .sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))
  .flatMap((d) => Array.from({ length: 10 }, (_, k) => path.join(root, d, `${k + 1}.jpg`)))
  .slice(0, flags.images);
const sets: { name: string; images: RgbImage[] }[] = [
  { name: `AT&T 112x112 (${attFiles.length} images)`, images: await Promise.all(attFiles.map((f) => readRgbImage(f))) },
  {
    name: `photos 512x512 + 451x300 (x${flags.photoRepeats})`,
    images: (await Promise.all(['astronaut.png', 'chelsea.png'].map((f) => readRgbImage(path.join(photos, f))))).flatMap((img) => Array(flags.photoRepeats).fill(img)),
  },
];

// attfc: the pipeline `attfc align` runs
const models = await loadFaceModels();
async function attfcAlign(img: RgbImage): Promise<boolean> {
  const face = largestFace(await detectFacesInPixels(models, img));
  if (face) alignRgb(img.data, img.width, img.height, face.landmarks5.flat(), 112);
  return face !== null;
}

// human: its node-wasm build loads models with fetch, so a loopback server hands it the same files
const server = createServer((req, res) => {
  const name = path.basename(new URL(req.url ?? '/', 'http://x').pathname);
  try {
    res.end(readFileSync(path.join(faceModelDir(), name)));
  } catch {
    res.statusCode = 404;
    res.end();
  }
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as { port: number }).port;
const humanPackage = JSON.parse(readFileSync(path.join(faceModelDir(), '..', 'package.json'), 'utf8')) as { version: string };
const { Human } = createRequire(import.meta.url)(path.join(faceModelDir(), '..', 'dist', 'human.node-wasm.js')) as {
  Human: new (config: object) => { load(): Promise<void>; detect(input: tf.Tensor): Promise<{ face: { mesh: number[][] }[] }> };
};
const off = { enabled: false };
const human = new Human({
  backend: 'wasm',
  modelBasePath: `http://127.0.0.1:${port}/`,
  debug: false,
  // still photos, not video: no reuse of the previous image's boxes (its default tracks faces across frames)
  cacheSensitivity: 0,
  face: { enabled: true, detector: { rotation: false, skipFrames: 0, skipTime: 0 }, mesh: { enabled: true }, iris: off, description: off, emotion: off, antispoof: off, liveness: off, attention: off },
  body: off,
  hand: off,
  object: off,
  gesture: off,
  segmentation: off,
  filter: off,
});
await human.load();
async function humanAlign(img: RgbImage): Promise<boolean> {
  const input = tf.tensor4d(Int32Array.from(img.data), [1, img.height, img.width, 3], 'int32');
  const r = await human.detect(input);
  input.dispose();
  const face = r.face[0];
  if (face) alignRgb(img.data, img.width, img.height, fivePointsFromMesh(face.mesh.flatMap((p) => [p[0], p[1]])), 112);
  return face !== undefined;
}

const pipelines = [
  { name: 'attfc', run: attfcAlign },
  { name: `@vladmandic/human ${humanPackage.version}`, run: humanAlign },
];
for (const p of pipelines) await p.run(sets[1].images[0]); // warm-up: kernels compiled, weights uploaded

const info = machineInfo();
log(`bench:align: ${describeEngine(engine)}; ${JSON.stringify(info)}`);
const rows: (string | number)[][] = [];
const results: Record<string, unknown>[] = [];
// Interleaved in chunks of CHUNK images, the order flipping every chunk: this machine's load changes
// from minute to minute, and a ratio means something only if both pipelines ran through the same load.
const CHUNK = 10;
for (let round = 1; round <= flags.rounds; round++) {
  for (const set of sets) {
    const seconds = pipelines.map(() => 0);
    const found = pipelines.map(() => 0);
    for (let start = 0, chunk = 0; start < set.images.length; start += CHUNK, chunk++) {
      const images = set.images.slice(start, start + CHUNK);
      const order = chunk % 2 === 0 ? [0, 1] : [1, 0];
      for (const k of order) {
        const t0 = performance.now();
        for (const img of images) if (await pipelines[k].run(img)) found[k]++;
        seconds[k] += (performance.now() - t0) / 1000;
      }
    }
    const rates = seconds.map((sec) => set.images.length / sec);
    pipelines.forEach((p, k) => {
      rows.push([round, set.name, p.name, found[k], rates[k].toFixed(2), (1000 / rates[k]).toFixed(0)]);
      results.push({ round, set: set.name, pipeline: p.name, images: set.images.length, withFace: found[k], imagesPerSecond: rates[k] });
      log(`round ${round}, ${set.name}, ${p.name}: ${found[k]}/${set.images.length} with a face, ${rates[k].toFixed(2)} images/s`);
    });
    rows.push([round, set.name, 'attfc / human', '', (rates[0] / rates[1]).toFixed(2), '']);
  }
}
server.close();
const loadAfter = Number((await import('node:os')).loadavg()[0].toFixed(2));
if (flags.json) process.stdout.write(`${JSON.stringify({ machine: { ...info, loadAverage1mAfter: loadAfter }, engine: describeEngine(engine), results })}\n`);
else {
  process.stdout.write(`${table(rows, ['round', 'images', 'pipeline', 'with a face', 'images/s', 'ms/image'])}\n`);
  process.stdout.write(`machine: ${info.cpu}, ${info.cores} cores, load average ${info.loadAverage1m} before, ${loadAfter} after; commit ${info.commit}; ${describeEngine(engine)}\n`);
}
process.exit(0);
