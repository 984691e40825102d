// Worker thread of RenderPool: renders jobs of images with renderBatch and sends the JPEGs back packed
// into one transferable buffer.
import { parentPort, workerData } from 'node:worker_threads';
import { renderBatch, type ImageKey } from './render.js';
import type { ResolvedRenderOptions } from './options.js';

export interface RenderWorkerConfig {
  seed: number;
  options: ResolvedRenderOptions;
}

export interface RenderJob {
  jobId: number;
  keys: ImageKey[];
}

export type RenderReply =
  | { jobId: number; ok: true; data: ArrayBuffer; lengths: number[]; qualities: number[] }
  | { jobId: number; ok: false; message: string };

const port = parentPort;
if (port === null) throw new Error('renderWorker must run in a worker thread');
const config = workerData as RenderWorkerConfig;

port.on('message', (job: RenderJob) => {
  renderBatch(config.seed, job.keys, config.options).then(
    (images) => {
      const lengths = images.map((im) => im.jpeg.length);
      const packed = new Uint8Array(lengths.reduce((a, b) => a + b, 0));
      let offset = 0;
      for (const im of images) {
        packed.set(im.jpeg, offset);
        offset += im.jpeg.length;
      }
      const reply: RenderReply = { jobId: job.jobId, ok: true, data: packed.buffer, lengths, qualities: images.map((im) => im.quality) };
      port.postMessage(reply, [packed.buffer]);
    },
    (e: unknown) => {
      const reply: RenderReply = { jobId: job.jobId, ok: false, message: e instanceof Error ? (e.stack ?? e.message) : String(e) };
      port.postMessage(reply);
    },
  );
});
