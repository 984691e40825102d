// Shared memory between the trainer (rank 0, the main thread) and its replica workers (ranks 1..R-1).
// Everything per step goes through SharedArrayBuffers and Atomics, not messages: the main thread blocks
// inside tf.variableGrads while it waits, so its event loop cannot deliver a message.
//
// Commands (main -> workers) go through a small ring so a worker never misses one when the main
// thread posts two in a row; each worker reports progress by bumping its own per-phase counters.

import { AttfcError } from '../../errors.js';
import { hashInts } from '../../util/hash.js';
import { Rng } from '../../util/rng.js';

export const enum Command {
  Step = 1,
  EmbeddingGradsReady = 2,
  Parameters = 3,
  FullSync = 4,
  Exit = 5,
}

export const enum Phase {
  Keys = 0,
  Embeddings = 1,
  Gradients = 2,
  Ready = 3,
}
const PHASES = 4;
const RING = 8;
// ctrl layout: [0] command sequence, [1] error flag, [2..2+RING) command ring, then PHASES counters per
// worker, then each worker's WASM heap size in KiB (its own 4 GiB heap, reported after every step)
const SEQ = 0;
const ERROR = 1;
const RING_AT = 2;
const COUNTERS_AT = RING_AT + RING;
const heapAt = (replicas: number) => COUNTERS_AT + PHASES * replicas;
const ERROR_TEXT_BYTES = 4096;

/** Rows [start, end) of the batch each rank computes. */
export type RowRange = [number, number];

export interface SharedLayout {
  replicas: number;
  batchSize: number;
  /** Floats per image (inputSize * inputSize * 3). */
  imageFloats: number;
  keysPerSample: number;
  embeddingSize: number;
  /** Values of the trained variables of f_q, in trainableVariables() order. */
  trainableFloats: number;
  /** Values of every variable of f_q (and, for AttFC, as many again for f_k). */
  parameterFloats: number;
}

export interface SharedBuffers {
  layout: SharedLayout;
  ctrl: SharedArrayBuffer;
  errorText: SharedArrayBuffer;
  queries: SharedArrayBuffer;
  keys: SharedArrayBuffer;
  embeddings: SharedArrayBuffer;
  keyEmbeddings: SharedArrayBuffer;
  embeddingGrads: SharedArrayBuffer;
  /** One slot of trainableFloats per worker. */
  gradients: SharedArrayBuffer;
  parameters: SharedArrayBuffer;
  /** Dropout generator state (4 words) of f_q and f_k per rank: set by rank 0, updated by each worker. */
  randomStates: SharedArrayBuffer;
}

const floats = (n: number) => new SharedArrayBuffer(Math.max(1, n) * 4);

export function allocateShared(layout: SharedLayout): SharedBuffers {
  const { replicas: R, batchSize: B, imageFloats, keysPerSample: k, embeddingSize: D } = layout;
  return {
    layout,
    ctrl: new SharedArrayBuffer((heapAt(R) + R) * 4),
    errorText: new SharedArrayBuffer(ERROR_TEXT_BYTES),
    queries: floats(B * imageFloats),
    keys: floats(B * k * imageFloats),
    embeddings: floats(B * D),
    keyEmbeddings: floats(B * k * D),
    embeddingGrads: floats(B * D),
    gradients: floats((R - 1) * layout.trainableFloats),
    parameters: floats(layout.parameterFloats),
    randomStates: new SharedArrayBuffer(R * 2 * RNG_WORDS * 4),
  };
}

/** Dropout generator states of one rank's f_q and f_k (null: no f_k, or a checkpoint without them). */
export interface RankRandomState {
  fq: number[] | null;
  fk: number[] | null;
}

const RNG_WORDS = 4; // Rng's a, b, c, d; its Box-Muller spare is never used for dropout masks
const DROPOUT_STREAM = 0x64726f70;
const NETS = { fq: 0, fk: 1 } as const;

/**
 * The dropout stream worker rank `rank` starts with, independent of every other rank's (rank 0 keeps
 * its backbone's own). Without it every replica, built from the same seed, would draw the same masks.
 */
export function replicaRandomState(seed: number, rank: number, net: keyof typeof NETS): number[] {
  return new Rng(hashInts(DROPOUT_STREAM, [seed, rank, NETS[net]])).getState();
}

export function writeRandomState(buffers: Pick<SharedBuffers, 'randomStates'>, rank: number, net: keyof typeof NETS, state: readonly (number | null)[]): void {
  const words = new Int32Array(buffers.randomStates);
  for (let i = 0; i < RNG_WORDS; i++) words[(rank * 2 + NETS[net]) * RNG_WORDS + i] = Number(state[i]) | 0;
}

export function readRandomState(buffers: Pick<SharedBuffers, 'randomStates'>, rank: number, net: keyof typeof NETS): number[] {
  const words = new Int32Array(buffers.randomStates);
  const at = (rank * 2 + NETS[net]) * RNG_WORDS;
  return [...Array.from({ length: RNG_WORDS }, (_, i) => words[at + i] >>> 0), NaN];
}

/** Splits a batch into R contiguous row ranges, as even as possible (earlier ranks get the extra rows). */
export function splitRows(batchSize: number, replicas: number): RowRange[] {
  const base = Math.floor(batchSize / replicas);
  const extra = batchSize % replicas;
  const out: RowRange[] = [];
  let start = 0;
  for (let r = 0; r < replicas; r++) {
    const n = base + (r < extra ? 1 : 0);
    out.push([start, start + n]);
    start += n;
  }
  return out;
}

/** Raised in a worker when the trainer shuts the group down while the worker waits mid-step. */
export class ReplicaShutdown extends Error {
  constructor() {
    super('replica group shut down');
  }
}

/** Raised on the main thread when a worker failed on a programming error; carries its message. */
export class ReplicaFailed extends Error {}

// The first byte of the error text says whether the worker's error was a user error (AttfcError,
// WASM heap exhausted), which the main thread re-raises as a one-line AttfcError.
const USER_ERROR = 1;
const OTHER_ERROR = 2;

/** The control block as seen from either side. */
export class Control {
  private readonly ctrl: Int32Array;
  private readonly text: Uint8Array;
  private readonly heapKiBAt: number;

  constructor(buffers: Pick<SharedBuffers, 'ctrl' | 'errorText' | 'layout'>) {
    this.ctrl = new Int32Array(buffers.ctrl);
    this.text = new Uint8Array(buffers.errorText);
    this.heapKiBAt = heapAt(buffers.layout.replicas);
  }

  /** The largest WASM heap any worker has reported (bytes; 0 before the first report). */
  largestWorkerHeapBytes(): number {
    let kib = 0;
    for (let i = this.heapKiBAt; i < this.ctrl.length; i++) kib = Math.max(kib, Atomics.load(this.ctrl, i));
    return kib * 1024;
  }

  /** Worker side: records this worker's WASM heap size (a 4 GiB heap in KiB fits an Int32). */
  reportHeap(rank: number, bytes: number): void {
    Atomics.store(this.ctrl, this.heapKiBAt + rank, Math.ceil(bytes / 1024));
  }

  // --- main side -------------------------------------------------------------------------------
  post(command: Command): void {
    const seq = Atomics.load(this.ctrl, SEQ) + 1;
    Atomics.store(this.ctrl, RING_AT + (seq % RING), command);
    Atomics.store(this.ctrl, SEQ, seq);
    Atomics.notify(this.ctrl, SEQ);
  }

  /** Blocks until worker `rank` has passed `phase` `count` times in total; throws if any worker failed. */
  waitPhase(rank: number, phase: Phase, count: number): void {
    const i = COUNTERS_AT + PHASES * rank + phase;
    for (;;) {
      const v = Atomics.load(this.ctrl, i);
      if (v >= count) return;
      this.throwIfFailed();
      Atomics.wait(this.ctrl, i, v, 250);
    }
  }

  /** How often worker `rank` has passed `phase` so far (non-blocking). */
  phaseCount(rank: number, phase: Phase): number {
    return Atomics.load(this.ctrl, COUNTERS_AT + PHASES * rank + phase);
  }

  throwIfFailed(): void {
    if (Atomics.load(this.ctrl, ERROR) <= 0) return; // -1: a worker is still writing its message
    const n = this.text.indexOf(0, 1);
    const message = new TextDecoder().decode(this.text.slice(1, n < 0 ? this.text.length : n));
    throw this.text[0] === USER_ERROR ? new AttfcError(message) : new ReplicaFailed(message);
  }

  // --- worker side -----------------------------------------------------------------------------
  /** Blocks until command number `seq` exists and returns it. */
  waitCommand(seq: number): Command {
    for (;;) {
      const v = Atomics.load(this.ctrl, SEQ);
      if (v >= seq) return Atomics.load(this.ctrl, RING_AT + (seq % RING)) as Command;
      Atomics.wait(this.ctrl, SEQ, v);
    }
  }

  passPhase(rank: number, phase: Phase): void {
    const i = COUNTERS_AT + PHASES * rank + phase;
    Atomics.add(this.ctrl, i, 1);
    Atomics.notify(this.ctrl, i);
  }

  /** Records the first failure and wakes the main thread wherever it waits. */
  fail(rank: number, message: string, userError: boolean): void {
    if (Atomics.compareExchange(this.ctrl, ERROR, 0, -1) === 0) {
      const bytes = new TextEncoder().encode(`replica ${rank}: ${message}`).subarray(0, ERROR_TEXT_BYTES - 2);
      this.text[0] = userError ? USER_ERROR : OTHER_ERROR;
      this.text.set(bytes, 1);
      this.text[bytes.length + 1] = 0;
      Atomics.store(this.ctrl, ERROR, rank);
    }
    for (let i = COUNTERS_AT; i < this.heapKiBAt; i++) Atomics.notify(this.ctrl, i);
  }
}
