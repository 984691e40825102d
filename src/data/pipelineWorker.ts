// Worker thread of DataPipeline: opens the dataset by path, decodes + augments whole batches and sends
// the float tensors back as transferred buffers. Undecodable images are replaced by another image of
// the same identity and reported, so the main thread can warn and enforce maxBadShare.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { AttfcError } from '../errors.js';
import { openDataset, type FaceDataset } from './dataset.js';
import { decodeToRgb } from './decode.js';
import { flipDecision, writeNormalised } from './augment.js';

/** Fixed for the worker's life. */
export interface WorkerConfig {
  datasetPath: string;
  inputSize: number;
  seed: number;
  flip: boolean;
}

/**
 * One batch (or some rows of one) to make. Slots number the images of the whole batch: query i is slot
 * querySlot + i, key k is slot keySlot + k (for a whole batch 0 and queries.length).
 */
export interface WorkerJob {
  type: 'job';
  id: number;
  step: number;
  queries: Int32Array;
  keys: Int32Array;
  querySlot: number;
  keySlot: number;
}

/** An image that could not be used, and the image of the same identity used instead. */
export interface BadImage {
  slot: number;
  index: number;
  replacement: number;
  reason: string;
}

/** Finish: close the dataset's files and let the thread exit (pending jobs are dropped). */
export interface WorkerClose {
  type: 'close';
}

export type WorkerRequest = WorkerJob | WorkerClose;

export type WorkerReply =
  | {
      id: number;
      ok: true;
      images: Float32Array;
      keys: Float32Array;
      queryIndices: Int32Array;
      keyIndices: Int32Array;
      keyQuality?: Float32Array;
      decodeMs: number;
      bad: BadImage[];
    }
  | { id: number; ok: false; message: string; userError: boolean };

async function decodeIndex(dataset: FaceDataset, index: number, size: number, bytes?: Buffer): Promise<Uint8Array> {
  const where = dataset.describe(index);
  return decodeToRgb(bytes ?? (await dataset.readImage(index)), size, where);
}

/**
 * Decodes `index` (from `bytes` when they were read already), or the next decodable image of the same
 * identity (cyclically after it in the identity's list). Only user-data problems (AttfcError from
 * reading or decoding) are skipped.
 */
async function decodeOrSubstitute(
  dataset: FaceDataset,
  index: number,
  size: number,
  bytes?: Buffer,
): Promise<{ rgb: Uint8Array; used: number; reason?: string }> {
  let reason: string;
  try {
    return { rgb: await decodeIndex(dataset, index, size, bytes), used: index };
  } catch (e) {
    if (!(e instanceof AttfcError)) throw e;
    reason = e.message;
  }
  const label = dataset.label(index);
  const pool = dataset.identityImages(label);
  const start = pool.indexOf(index);
  for (let step = 1; step < pool.length; step++) {
    const candidate = pool[(start + step) % pool.length];
    if (candidate === index) continue;
    try {
      return { rgb: await decodeIndex(dataset, candidate, size), used: candidate, reason };
    } catch (e) {
      if (!(e instanceof AttfcError)) throw e;
    }
  }
  throw new AttfcError(`${reason}; no other image of identity ${label} could be decoded to replace it`);
}

/**
 * Reads a batch's images in one call, in slot order (queries, then keys), asking for them sample by
 * sample (a query, then its keys) so a rendering source meets each identity's images together.
 */
async function readBatch(read: (indices: number[]) => Promise<Buffer[]>, queries: Int32Array, keys: Int32Array): Promise<Buffer[]> {
  const perSample = queries.length > 0 ? keys.length / queries.length : 0;
  const slots: number[] = [];
  for (let i = 0; i < queries.length; i++) {
    slots.push(i);
    for (let j = 0; j < perSample; j++) slots.push(queries.length + i * perSample + j);
  }
  const indexOf = (slot: number) => (slot < queries.length ? queries[slot]! : keys[slot - queries.length]!);
  const images = await read(slots.map(indexOf));
  const out = new Array<Buffer>(slots.length);
  slots.forEach((slot, n) => (out[slot] = images[n]!));
  return out;
}

async function makeBatch(dataset: FaceDataset, config: WorkerConfig, job: WorkerJob): Promise<WorkerReply> {
  const t0 = performance.now();
  const size = config.inputSize;
  const pixels = size * size * 3;
  const numQueries = job.queries.length;
  const images = new Float32Array(numQueries * pixels);
  const keys = new Float32Array(job.keys.length * pixels);
  const queryIndices = Int32Array.from(job.queries);
  const keyIndices = Int32Array.from(job.keys);
  const bad: BadImage[] = [];
  const slots = numQueries + job.keys.length;
  const encoded = dataset.readImages ? await readBatch(dataset.readImages.bind(dataset), queryIndices, keyIndices) : undefined;
  for (let slot = 0; slot < slots; slot++) {
    const isQuery = slot < numQueries;
    const indices = isQuery ? queryIndices : keyIndices;
    const at = isQuery ? slot : slot - numQueries;
    const { rgb, used, reason } = await decodeOrSubstitute(dataset, indices[at], size, encoded?.[slot]);
    if (reason !== undefined) bad.push({ slot, index: indices[at], replacement: used, reason });
    indices[at] = used;
    const flip = config.flip && flipDecision(config.seed, job.step, isQuery ? job.querySlot + at : job.keySlot + at);
    writeNormalised(rgb, size, isQuery ? images : keys, at * pixels, flip);
  }
  let keyQuality: Float32Array | undefined;
  if (keyIndices.length > 0) {
    const quality = Float32Array.from(keyIndices, (i) => dataset.quality(i) ?? NaN);
    if (quality.some((q) => !Number.isNaN(q))) keyQuality = quality;
  }
  return { id: job.id, ok: true, images, keys, queryIndices, keyIndices, keyQuality, decodeMs: performance.now() - t0, bad };
}

function transferList(reply: WorkerReply): ArrayBuffer[] {
  if (!reply.ok) return [];
  const arrays = [reply.images, reply.keys, reply.queryIndices, reply.keyIndices, reply.keyQuality];
  return arrays.filter((a) => a !== undefined).map((a) => a.buffer as ArrayBuffer);
}

function serve(): void {
  const port = parentPort;
  if (port === null) throw new Error('pipelineWorker must run in a worker thread');
  const config = workerData as WorkerConfig;
  let dataset: FaceDataset | undefined;
  let openError: unknown;
  try {
    dataset = openDataset(config.datasetPath);
  } catch (e) {
    openError = e;
  }
  // Jobs are served one at a time in arrival order; the main thread keeps several in flight.
  let queue = Promise.resolve();
  let closing = false;
  port.on('message', (request: WorkerRequest) => {
    if (request.type === 'close') {
      closing = true;
      queue = queue.then(() => {
        dataset?.close();
        port.close();
      });
      return;
    }
    queue = queue.then(async () => {
      if (closing) return;
      let reply: WorkerReply;
      try {
        if (dataset === undefined) throw openError;
        reply = await makeBatch(dataset, config, request);
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        reply = { id: request.id, ok: false, message, userError: e instanceof AttfcError };
      }
      port.postMessage(reply, transferList(reply));
    });
  });
}

serve();
