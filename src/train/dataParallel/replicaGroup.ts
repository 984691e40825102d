// Rank 0's side of data-parallel training: it keeps the head, the optimizer, the data pipeline and the
// checkpoints, and splits only the backbone work (f_q forward and backward, and f_k's key forward) with
// R-1 replica workers. One step:
//   postStep            copy the workers' rows of the batch to shared memory, wake them
//   gatherKeyEmbeddings (AttFC) f_k of every rank's key images, in batch order
//   joinEmbeddings      inside the tape: the full [B, D] embeddings; a hook sends each worker the
//                       gradient of its rows as soon as back-propagation reaches them, so every rank
//                       runs its backbone backward at the same time
//   addRemoteGradients  rank 0's gradients plus the workers'
//   broadcastParameters after the update, f_q's new values to every worker
// Each rank's batch norm uses its own rows' statistics, as in multi-GPU insightface training.
import * as tf from '@tensorflow/tfjs-core';
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../../util/worker.js';
import { heapView } from '../../engine/heapView.js';
import type { Backbone, BackboneOptions } from '../../backbones/index.js';
import {
  allocateShared,
  Command,
  Control,
  Phase,
  readRandomState,
  replicaRandomState,
  ReplicaFailed,
  splitRows,
  writeRandomState,
  type RankRandomState,
  type RowRange,
  type SharedBuffers,
} from './shared.js';
import { floatCount, writeVariables } from './variables.js';
import type { ReplicaWorkerData } from './replicaWorker.js';
import type { GradientExchange, StepReport } from './exchange.js';

export interface ReplicaGroupOptions {
  replicas: number;
  batchSize: number;
  keysPerSample: number;
  backbone: string;
  backboneOptions: BackboneOptions;
  fq: Backbone;
  /** AttFC's class encoder f_k and its EMA momentum, or null. */
  fk: Backbone | null;
  emaMomentum: number | null;
  /** Dropout states of ranks 1.. from a checkpoint; a rank without one starts its own stream. */
  randomStates?: RankRandomState[];
}

export class ReplicaGroup implements GradientExchange {
  readonly rows: RowRange[];
  private readonly control: Control;
  private readonly shared: {
    queries: Float32Array;
    keys: Float32Array;
    embeddings: Float32Array;
    keyEmbeddings: Float32Array;
    embeddingGrads: Float32Array;
    gradients: Float32Array;
    parameters: Float32Array;
  };
  private steps = 0;
  private closed = false;
  private readonly hook: (e: tf.Tensor2D) => tf.Tensor2D;

  private constructor(
    private readonly o: ReplicaGroupOptions,
    private readonly buffers: SharedBuffers,
    private readonly workers: Worker[],
    private readonly exited: Set<Worker>,
  ) {
    this.rows = splitRows(o.batchSize, o.replicas);
    this.control = new Control(buffers);
    this.shared = {
      queries: new Float32Array(buffers.queries),
      keys: new Float32Array(buffers.keys),
      embeddings: new Float32Array(buffers.embeddings),
      keyEmbeddings: new Float32Array(buffers.keyEmbeddings),
      embeddingGrads: new Float32Array(buffers.embeddingGrads),
      gradients: new Float32Array(buffers.gradients),
      parameters: new Float32Array(buffers.parameters),
    };
    // Identity forward; backward sends the workers their rows' gradient before rank 0's own backbone backward.
    this.hook = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
      value: tf.clone(args[0] as tf.Tensor),
      gradFunc: (dy: tf.Tensor) => {
        this.shared.embeddingGrads.set(dy.dataSync() as Float32Array);
        this.control.post(Command.EmbeddingGradsReady);
        return tf.clone(dy);
      },
    })) as unknown as (e: tf.Tensor2D) => tf.Tensor2D;
  }

  /** Spawns the workers and waits until each has built its backbone; then sends them rank 0's weights. */
  static async start(o: ReplicaGroupOptions): Promise<ReplicaGroup> {
    const size = o.backboneOptions.inputSize ?? 112;
    const fqAll = floatCount(o.fq.variables().map((v) => v.variable));
    const buffers = allocateShared({
      replicas: o.replicas,
      batchSize: o.batchSize,
      imageFloats: size * size * 3,
      keysPerSample: o.keysPerSample,
      embeddingSize: o.fq.options.embeddingSize,
      trainableFloats: floatCount(o.fq.trainableVariables()),
      parameterFloats: fqAll * (o.fk ? 2 : 1),
    });
    const rows = splitRows(o.batchSize, o.replicas);
    const seed = o.fq.options.seed;
    for (let rank = 1; rank < o.replicas; rank++) {
      const saved = o.randomStates?.[rank - 1];
      writeRandomState(buffers, rank, 'fq', saved?.fq ?? replicaRandomState(seed, rank, 'fq'));
      writeRandomState(buffers, rank, 'fk', saved?.fk ?? replicaRandomState(seed, rank, 'fk'));
    }
    const workers: Worker[] = [];
    const failures: string[] = [];
    const exited = new Set<Worker>();
    for (let rank = 1; rank < o.replicas; rank++) {
      const data: ReplicaWorkerData = { rank, buffers, rows, backbone: o.backbone, backboneOptions: o.backboneOptions, emaMomentum: o.emaMomentum };
      const w = spawnWorker(new URL('./replicaWorker', import.meta.url), import.meta.url.endsWith('.ts'), data);
      w.on('error', (e) => failures.push(`replica ${rank}: ${e.message}`));
      w.on('exit', (code) => {
        exited.add(w);
        if (code !== 0) failures.push(`replica ${rank} exited with code ${code}`);
      });
      workers.push(w);
    }
    const group = new ReplicaGroup(o, buffers, workers, exited);
    // Asynchronous wait: the workers' 'error' events (e.g. a module that failed to load) need the event loop.
    const ready = () => workers.every((_, i) => group.control.phaseCount(i + 1, Phase.Ready) >= 1);
    while (!ready()) {
      try {
        group.control.throwIfFailed();
        if (failures.length) throw new ReplicaFailed(failures[0]);
      } catch (e) {
        await group.close();
        throw e;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    group.fullSync();
    return group;
  }

  /** Rows rank 0 computes itself: [0, localRows). */
  get localRows(): number {
    return this.rows[0][1];
  }

  /** Hands the workers their rows of this step's query (and key) images. */
  postStep(queries: Float32Array, keys: Float32Array | null): void {
    const px = this.buffers.layout.imageFloats;
    const k = this.o.keysPerSample;
    const from = this.localRows;
    this.shared.queries.set(queries.subarray(from * px, this.o.batchSize * px), from * px);
    if (keys && k > 0) this.shared.keys.set(keys.subarray(from * k * px, this.o.batchSize * k * px), from * k * px);
    this.steps++;
    this.control.post(Command.Step);
  }

  private waitAll(phase: Phase): void {
    for (let r = 1; r < this.o.replicas; r++) this.control.waitPhase(r, phase, this.steps);
  }

  /** rank 0's key embeddings [localRows*k, D] followed by the workers' (disposes `local`). */
  gatherKeyEmbeddings(local: tf.Tensor2D): tf.Tensor2D {
    this.waitAll(Phase.Keys);
    const D = local.shape[1];
    const k = this.o.keysPerSample;
    const remote = this.shared.keyEmbeddings.slice(this.localRows * k * D, this.o.batchSize * k * D);
    const all = tf.tidy(() => tf.concat([local, tf.tensor2d(remote, [remote.length / D, D])]));
    local.dispose();
    return all;
  }

  /** Inside the gradient tape: the full batch's embeddings, rank 0's rows first. */
  joinEmbeddings(local: tf.Tensor2D): tf.Tensor2D {
    this.waitAll(Phase.Embeddings);
    const D = local.shape[1];
    const remote = this.shared.embeddings.slice(this.localRows * D, this.o.batchSize * D);
    return this.hook(tf.concat([local, tf.tensor2d(remote, [remote.length / D, D])]));
  }

  /** Rank 0's backbone gradients plus every worker's; the head's are whole already (rank 0's head saw every row). */
  reduceGradients(backbone: tf.Tensor[], head: tf.Tensor[]): { backbone: tf.Tensor[]; head: tf.Tensor[] } {
    return { backbone: this.addRemoteGradients(backbone), head };
  }

  /** Rank 0 computed the whole batch's loss: nothing to add. */
  reduceStep(report: StepReport): StepReport {
    return report;
  }

  /** Rank 0's backbone gradients plus every worker's, as new tensors (the caller disposes both sets). */
  private addRemoteGradients(local: tf.Tensor[]): tf.Tensor[] {
    this.waitAll(Phase.Gradients);
    const per = this.buffers.layout.trainableFloats;
    let offset = 0;
    return local.map((g) => {
      const sum = heapView(g).slice();
      for (let r = 0; r < this.o.replicas - 1; r++) {
        const theirs = this.shared.gradients.subarray(r * per + offset, r * per + offset + g.size);
        for (let i = 0; i < sum.length; i++) sum[i] += theirs[i];
      }
      offset += g.size;
      return tf.tensor(sum, g.shape, 'float32');
    });
  }

  /** The dropout states of ranks 1.., as of the workers' last finished step (for checkpoints). */
  randomStates(): RankRandomState[] {
    return Array.from({ length: this.o.replicas - 1 }, (_, i) => ({
      fq: readRandomState(this.buffers, i + 1, 'fq'),
      fk: this.o.fk ? readRandomState(this.buffers, i + 1, 'fk') : null,
    }));
  }

  /** The largest WASM heap among the workers (each has its own), as of their last finished step. */
  largestWorkerHeapBytes(): number {
    return this.control.largestWorkerHeapBytes();
  }

  /** After the optimizer step: f_q's values (parameters and running statistics) to every worker. */
  broadcastParameters(): void {
    writeVariables(this.o.fq.variables().map((v) => v.variable), this.shared.parameters);
    this.control.post(Command.Parameters);
  }

  /** f_q and f_k to every worker (at the start and after a resume). */
  fullSync(): void {
    const end = writeVariables(this.o.fq.variables().map((v) => v.variable), this.shared.parameters);
    if (this.o.fk) writeVariables(this.o.fk.variables().map((v) => v.variable), this.shared.parameters, end);
    this.control.post(Command.FullSync);
  }

  /** Ends the workers (also when one is blocked mid-step). Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.control.post(Command.Exit);
    await Promise.all(
      this.workers.filter((w) => !this.exited.has(w)).map(
        (w) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => void w.terminate().then(() => resolve()), 5000);
            w.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
  }
}
