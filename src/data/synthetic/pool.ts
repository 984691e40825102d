// Renders image lists on a pool of worker threads (or on the calling thread), returning results in
// input order with a bounded number of jobs in flight.
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../../util/worker.js';
import { ATLAS_TILES, renderBatch, type ImageKey, type RenderedImage } from './render.js';
import type { ResolvedRenderOptions } from './options.js';
import type { RenderJob, RenderReply, RenderWorkerConfig } from './renderWorker.js';

/**
 * Images per job sent to a worker (two 16-image atlases). A multiple of ATLAS_TILES, so that the i-th
 * image of a render call lands in tile i mod 16 whatever the job split (see trainImageTile).
 */
const JOB_SIZE = 2 * ATLAS_TILES;
/** Jobs in flight per thread: one rasterising on sharp's pool while another runs JS pixel work. */
const IN_FLIGHT_PER_THREAD = 2;

interface Waiter {
  resolve: (images: RenderedImage[]) => void;
  reject: (e: Error) => void;
}

function spawnRenderWorker(config: RenderWorkerConfig): Worker {
  return spawnWorker(new URL('./renderWorker', import.meta.url), import.meta.url.endsWith('.ts'), config);
}

class RenderThread {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, Waiter>();
  private failure: Error | null = null;

  constructor(config: RenderWorkerConfig) {
    this.worker = spawnRenderWorker(config);
    this.worker.on('message', (reply: RenderReply) => this.settle(reply));
    this.worker.on('error', (e) => this.fail(new Error(`synthetic render worker failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e })));
    this.worker.on('exit', (code) => this.fail(new Error(`synthetic render worker exited (code ${code})`)));
  }

  get load(): number {
    return this.waiting.size;
  }

  run(job: RenderJob): Promise<RenderedImage[]> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.set(job.jobId, { resolve, reject });
      this.worker.postMessage(job);
    });
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }

  private settle(reply: RenderReply): void {
    const waiter = this.waiting.get(reply.jobId);
    if (!waiter) return;
    this.waiting.delete(reply.jobId);
    if (!reply.ok) {
      waiter.reject(new Error(`synthetic render worker: ${reply.message}`));
      return;
    }
    const data = Buffer.from(reply.data);
    const images: RenderedImage[] = [];
    let offset = 0;
    reply.lengths.forEach((n, i) => {
      images.push({ jpeg: data.subarray(offset, offset + n), quality: reply.qualities[i] });
      offset += n;
    });
    waiter.resolve(images);
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }
}

/** Renders images of one seed/options on `threads` worker threads (0 = the calling thread). */
export class RenderPool {
  private readonly threads: RenderThread[];
  private nextJobId = 0;

  constructor(
    private readonly seed: number,
    private readonly options: ResolvedRenderOptions,
    threads: number,
  ) {
    this.threads = Array.from({ length: Math.max(0, threads) }, () => new RenderThread({ seed, options }));
  }

  /** Number of worker threads (0 = rendering on the calling thread). */
  get size(): number {
    return this.threads.length;
  }

  /** Renders `keys`, yielding the results of consecutive chunks in input order. */
  async *render(keys: readonly ImageKey[]): AsyncGenerator<RenderedImage[]> {
    const jobs: ImageKey[][] = [];
    for (let i = 0; i < keys.length; i += JOB_SIZE) jobs.push(keys.slice(i, i + JOB_SIZE));
    const limit = IN_FLIGHT_PER_THREAD * Math.max(1, this.threads.length);
    const started: Promise<RenderedImage[]>[] = [];
    const start = (j: number) => {
      const p = this.runJob(jobs[j]);
      // a job that fails while an earlier one is awaited must not be reported as unhandled
      p.catch(() => undefined);
      started.push(p);
    };
    for (let j = 0; j < Math.min(limit, jobs.length); j++) start(j);
    for (let j = 0; j < jobs.length; j++) {
      const images = await started[j];
      delete started[j];
      if (started.length < jobs.length) start(started.length);
      yield images;
    }
  }

  /** Stops the worker threads. */
  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.terminate()));
  }

  private runJob(keys: ImageKey[]): Promise<RenderedImage[]> {
    if (this.threads.length === 0) return renderBatch(this.seed, keys, this.options);
    const thread = this.threads.reduce((best, t) => (t.load < best.load ? t : best));
    return thread.run({ jobId: this.nextJobId++, keys });
  }
}
