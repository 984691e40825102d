// npm run bench:data [-- <dataset>] [--json] [--consume IMG_PER_S] [--workers N] [--sizes 112,56]
//   [--batch 64] [--sample-num 3] [--images 2000] [--seconds 4]
// Decode + augment throughput of the training data pipeline with 1 and N worker threads, at 112x112
// and at a CPU training size. Without a dataset path, a small insightface .rec of face-like JPEGs is
// generated in a temp dir. With --consume R (training images/s of the trainer), shows whether the
// pipeline keeps up: the trainer needs R * K decoded images/s (each sample brings K-1 keys).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { DataPipeline } from '../src/data/pipeline.js';
import { InsightfaceRecWriter } from '../src/data/recordioWriter.js';
import { Rng } from '../src/util/rng.js';
import { machineInfo, table } from './lib/timing.js';
import { dataFlags, parseOrExit } from './lib/flags.js';

const flags = parseOrExit('bench:data', dataFlags, process.argv.slice(2));
const { json, consume, sizes, sampleNum, dataset: datasetArg } = flags;
const maxWorkers = flags.workers;
const batchSize = flags.batch;
const generatedImages = flags.images;
const minSeconds = flags.seconds;
const log = (s: string) => process.stderr.write(s + '\n');

/** A face-like 112x112 JPEG: skin-toned head, hair, eyes, brows, nose and mouth, jittered per image. */
function faceSvg(rng: Rng, identity: number): string {
  const id = new Rng(identity * 7919 + 1);
  const skin = `rgb(${150 + id.int(90)},${100 + id.int(80)},${70 + id.int(70)})`;
  const hair = `rgb(${id.int(90)},${id.int(70)},${id.int(50)})`;
  const bg = `rgb(${rng.int(256)},${rng.int(256)},${rng.int(256)})`;
  const dx = rng.uniform(-4, 4);
  const dy = rng.uniform(-4, 4);
  const eyeY = 50 + id.uniform(-3, 3) + dy;
  const eyeGap = 17 + id.uniform(-2, 3);
  const mouthW = 10 + id.uniform(0, 8);
  const open = rng.uniform(0, 5);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="112" height="112">
    <defs><linearGradient id="l" x1="0" x2="1"><stop offset="0" stop-color="#fff" stop-opacity="${rng.uniform(0, 0.4)}"/>
    <stop offset="1" stop-color="#000" stop-opacity="${rng.uniform(0, 0.4)}"/></linearGradient></defs>
    <rect width="112" height="112" fill="${bg}"/>
    <ellipse cx="${56 + dx}" cy="${40 + dy}" rx="${40 + id.uniform(0, 6)}" ry="34" fill="${hair}"/>
    <ellipse cx="${56 + dx}" cy="${62 + dy}" rx="${30 + id.uniform(0, 6)}" ry="${38 + id.uniform(0, 6)}" fill="${skin}"/>
    <rect x="${56 + dx - eyeGap - 8}" y="${eyeY - 9}" width="16" height="3" fill="${hair}"/>
    <rect x="${56 + dx + eyeGap - 8}" y="${eyeY - 9}" width="16" height="3" fill="${hair}"/>
    <ellipse cx="${56 + dx - eyeGap}" cy="${eyeY}" rx="6" ry="3" fill="#fff"/><circle cx="${56 + dx - eyeGap}" cy="${eyeY}" r="2.5" fill="#321"/>
    <ellipse cx="${56 + dx + eyeGap}" cy="${eyeY}" rx="6" ry="3" fill="#fff"/><circle cx="${56 + dx + eyeGap}" cy="${eyeY}" r="2.5" fill="#321"/>
    <path d="M${56 + dx} ${eyeY + 4} l-5 18 h10 z" fill="#000" fill-opacity="0.15"/>
    <ellipse cx="${56 + dx}" cy="${eyeY + 32}" rx="${mouthW}" ry="${2 + open}" fill="#823"/>
    <rect width="112" height="112" fill="url(#l)"/>
  </svg>`;
}

async function generateDataset(numImages: number): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attfc-bench-data-'));
  const writer = new InsightfaceRecWriter(dir, { width: 112, height: 112 });
  const rng = new Rng(2025);
  const perIdentity = 10;
  let bytes = 0;
  for (let i = 0; i < numImages; i++) {
    const jpeg = await sharp(Buffer.from(faceSvg(rng, Math.floor(i / perIdentity))))
      .blur(rng.uniform(0.3, 1.5))
      .jpeg({ quality: 90 })
      .toBuffer();
    bytes += jpeg.length;
    writer.add(Math.floor(i / perIdentity), jpeg, [rng.next()]);
  }
  writer.close();
  log(`bench:data: generated ${numImages} face-like 112x112 JPEGs (${(bytes / numImages / 1024).toFixed(1)} KiB each) in ${dir}`);
  return dir;
}

interface Result {
  size: number;
  workers: number;
  /** Decoded + augmented images per second, steady state (startup excluded). */
  imagesPerSecond: number;
  /** Training samples (queries) per second = imagesPerSecond / K. */
  samplesPerSecond: number;
  /** Worker CPU time per image (read + decode + resize + flip + normalise). */
  msPerImagePerWorker: number;
  /** Time from construction to the first batch (worker start-up). */
  startupMs: number;
  /** With --consume: decoded supply / trainer demand. */
  headroom?: number;
}

async function measure(dataset: string, size: number, workers: number): Promise<Result> {
  const t0 = performance.now();
  const pipeline = new DataPipeline({ dataset, batchSize, sampleNum, inputSize: size, seed: 1, workers, prefetch: workers + 1 });
  try {
    await pipeline.next();
    const startupMs = performance.now() - t0;
    const before = pipeline.stats();
    const start = performance.now();
    let batches = 0;
    while (batches < 3 || performance.now() - start < minSeconds * 1000) {
      await pipeline.next();
      batches++;
    }
    const seconds = (performance.now() - start) / 1000;
    const after = pipeline.stats();
    const images = after.images - before.images;
    const imagesPerSecond = images / seconds;
    const result: Result = {
      size,
      workers,
      imagesPerSecond,
      samplesPerSecond: imagesPerSecond / sampleNum,
      msPerImagePerWorker: (after.decodeMs - before.decodeMs) / images,
      startupMs,
    };
    if (consume !== undefined) result.headroom = imagesPerSecond / (consume * sampleNum);
    return result;
  } finally {
    await pipeline.close();
  }
}

const dataset = datasetArg ?? (await generateDataset(generatedImages));
const workerCounts = [...new Set([1, maxWorkers])];
const results: Result[] = [];
for (const size of sizes) {
  for (const workers of workerCounts) {
    log(`bench:data: ${size}x${size}, ${workers} worker(s) ...`);
    results.push(await measure(dataset, size, workers));
  }
}
if (datasetArg === undefined) fs.rmSync(dataset, { recursive: true, force: true });

if (json) {
  console.log(JSON.stringify({ machine: machineInfo(), dataset: datasetArg ?? 'generated', batchSize, sampleNum, consume, results }));
} else {
  console.log(`attfc data pipeline benchmark — ${JSON.stringify(machineInfo())}`);
  console.log(`dataset ${datasetArg ?? `generated (${generatedImages} images)`}, batch ${batchSize}, K ${sampleNum} (1 query + ${sampleNum - 1} keys per sample)`);
  const header = ['size', 'workers', 'images/s', 'samples/s', 'ms/image/worker', 'start-up ms'];
  if (consume !== undefined) header.push(`vs trainer ${consume} samples/s`);
  const rows = results.map((r) => {
    const row: (string | number)[] = [
      `${r.size}x${r.size}`,
      r.workers,
      r.imagesPerSecond.toFixed(0),
      r.samplesPerSecond.toFixed(0),
      r.msPerImagePerWorker.toFixed(2),
      r.startupMs.toFixed(0),
    ];
    if (r.headroom !== undefined) row.push(r.headroom >= 1 ? `keeps up (${r.headroom.toFixed(1)}x)` : `data-bound: ${(100 * (1 - r.headroom)).toFixed(0)}% waiting`);
    return row;
  });
  console.log(table(rows, header));
  console.log('images/s counts queries and keys; worker threads share the CPU with the trainer during real training.');
}
