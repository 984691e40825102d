// A process's membership in a distributed run: joining the c10d group its launcher described, and the
// few things the ranks must agree on before training. Rank 0 leads: it owns the run folder, decides
// what a resume continues, and sends the others what only it can read (the checkpoint), so a run
// whose machines share no storage still resumes. Every rank-0-only action that can fail is settled
// collectively (leaderDecides): all ranks stop with rank 0's message instead of waiting on it.
import * as tf from '@tensorflow/tfjs-core';
import { AttfcError, isUserError } from '../../errors.js';
import type { Backbone } from '../../backbones/index.js';
import type { TorchBackend } from '../../engine/torch/backend.js';
import { ProcessGroup, ProcessGroupError } from '../../engine/torch/processGroup.js';
import type { ArrayEntry, CheckpointData } from '../checkpoint.js';
import type { LaunchEnv } from './launchEnv.js';

export interface DistributedRun {
  env: LaunchEnv;
  pg: ProcessGroup;
  rank: number;
  worldSize: number;
  /** Rank 0: writes the run folder, checkpoints, metrics, the model. */
  leader: boolean;
  /** allAgree() calls so far (the same on every rank: they number its store keys). */
  agreements: number;
}

const LOOPBACK = /^(127\.|localhost$|::1$)/;

/** Joins the process group the launch environment describes (blocks until every rank has joined). */
export function joinDistributedRun(backend: TorchBackend, env: LaunchEnv, timeoutSeconds: number): DistributedRun {
  const pg = ProcessGroup.join(backend, {
    rank: env.rank,
    worldSize: env.worldSize,
    host: env.masterAddr,
    port: env.masterPort,
    hostStore: !env.agentStore,
    prefix: env.storePrefix,
    timeoutMs: timeoutSeconds * 1000,
    backend: backend.device.startsWith('cuda') ? 'nccl' : 'gloo',
    // one machine reached over loopback: Gloo listens there too (the host name may resolve elsewhere)
    ...(LOOPBACK.test(env.masterAddr) && env.localWorldSize === env.worldSize ? { deviceHost: '127.0.0.1' } : {}),
    ...(process.env.GLOO_SOCKET_IFNAME ? { ifname: process.env.GLOO_SOCKET_IFNAME } : {}),
  });
  return { env, pg, rank: pg.rank, worldSize: pg.worldSize, leader: pg.rank === 0, agreements: 0 };
}

/** A JSON value from rank 0 to every rank (the others' argument is ignored). */
export function broadcastJson<T>(run: DistributedRun, value: T | undefined): T {
  const bytes = run.leader ? new TextEncoder().encode(JSON.stringify(value ?? null)) : new Uint8Array(0);
  const length = run.pg.broadcastValues(Int32Array.of(bytes.length))[0];
  const received = run.pg.broadcastValues(run.leader ? bytes : new Uint8Array(length));
  return JSON.parse(new TextDecoder().decode(received)) as T;
}

/**
 * Runs `action` on rank 0 only and hands its result to every rank; when it fails, every rank throws
 * rank 0's one-line message (rank 0 its own error), so no rank waits for a rank 0 that gave up.
 */
export function leaderDecides<T>(run: DistributedRun, action: () => T): T {
  let outcome: { ok: true; value: T } | { ok: false; message: string; user: boolean } | undefined;
  let error: unknown;
  if (run.leader) {
    try {
      outcome = { ok: true, value: action() };
    } catch (e) {
      error = e;
      outcome = { ok: false, message: (e as Error).message ?? String(e), user: isUserError(e) };
    }
  }
  const got = broadcastJson(run, outcome)!;
  if (got.ok) return got.value;
  if (run.leader) throw error;
  throw got.user ? new AttfcError(`rank 0: ${got.message}`) : new Error(`rank 0: ${got.message}`);
}

/**
 * Runs `action` on every rank; when it fails on any, every rank throws the message of the lowest rank
 * it failed on (so no rank goes on to wait for one that gave up).
 */
export async function allAgree<T>(run: DistributedRun, action: () => T | Promise<T>): Promise<T> {
  let value: T | undefined;
  let error: unknown = null;
  const round = run.agreements;
  const key = (rank: number) => `failed/${round}/${rank}`;
  try {
    value = await action();
  } catch (e) {
    error = e;
    run.pg.storeSet(key(run.rank), JSON.stringify({ message: (e as Error).message ?? String(e), user: isUserError(e) }));
  }
  const first = run.pg.allReduceValues(Int32Array.of(error ? run.rank : run.worldSize), 'min')[0];
  run.agreements++;
  if (first === run.worldSize) return value as T;
  if (first === run.rank) throw error;
  const got = JSON.parse(run.pg.storeGet(key(first), 10_000) ?? '{"message":"failed","user":true}') as { message: string; user: boolean };
  throw got.user ? new AttfcError(`rank ${first}: ${got.message}`) : new Error(`rank ${first}: ${got.message}`);
}

/**
 * Refuses to start when the ranks were given different training options: rank 0's `fields` are sent
 * to every rank, each compares its own, and every rank stops with the same line naming the first rank
 * and field that differ.
 */
export function agreeOnFields(run: DistributedRun, fields: Record<string, unknown>): void {
  const leaders = broadcastJson(run, fields);
  let mismatch = '';
  for (const key of Object.keys({ ...leaders, ...fields })) {
    const mine = JSON.stringify(fields[key] ?? null);
    const theirs = JSON.stringify(leaders[key] ?? null);
    if (mine !== theirs) {
      mismatch = `rank ${run.rank} was started with ${key} = ${mine} but rank 0 with ${theirs}: every rank of a run must get the same training options and data`;
      break;
    }
  }
  if (mismatch) run.pg.storeSet(`mismatch/${run.rank}`, mismatch);
  const first = run.pg.allReduceValues(Int32Array.of(mismatch ? run.rank : run.worldSize), 'min')[0];
  if (first === run.worldSize) return;
  const message = run.pg.storeGet(`mismatch/${first}`, 10_000) ?? `rank ${first} was started with other training options than rank 0`;
  throw new AttfcError(message);
}

/** Rank 0's values of every variable of these networks on every rank (DDP's start: one model everywhere). */
export function broadcastVariables(run: DistributedRun, nets: readonly (Backbone | null)[]): void {
  for (const net of nets) {
    if (!net) continue;
    for (const v of net.variables()) {
      const received = run.pg.broadcast(v.variable, 0);
      v.variable.assign(received as tf.Tensor);
      received.dispose();
    }
  }
}

/** Floats per broadcast message for checkpoint arrays (bounds the temporary copies). */
const ARRAY_PIECE = 2 ** 24;

/**
 * The checkpoint rank 0 read, on every rank (others pass null): its JSON, then its arrays piece by
 * piece. Ranks need not see rank 0's storage.
 */
export function broadcastCheckpoint(run: DistributedRun, data: CheckpointData | null): CheckpointData {
  const header = broadcastJson(
    run,
    data
      ? {
          step: data.step,
          json: data.json,
          arrays: Object.entries(data.arrays).map(([name, a]) => ({ name, dtype: a instanceof Int32Array ? 'int32' : 'float32', length: a.length })),
        }
      : undefined,
  ) as { step: number; json: Record<string, unknown>; arrays: { name: string; dtype: 'int32' | 'float32'; length: number }[] };
  const arrays: Record<string, ArrayEntry> = {};
  for (const { name, dtype, length } of header.arrays) {
    const out: ArrayEntry = run.leader ? data!.arrays[name] : dtype === 'int32' ? new Int32Array(length) : new Float32Array(length);
    for (let at = 0; at < length; at += ARRAY_PIECE) {
      const piece = out.subarray(at, Math.min(length, at + ARRAY_PIECE));
      const got = run.pg.broadcastValues(piece);
      if (!run.leader) piece.set(got);
    }
    arrays[name] = out;
  }
  return { step: header.step, json: header.json, arrays };
}

/**
 * After a collective failed at `step` (1-based step being trained): which ranks are gone. Each
 * survivor records itself in the store and waits briefly for the others'; ranks that never report are
 * named. When the store itself is gone, so is its host (rank 0, unless torchrun's agent hosts it).
 */
export function faultLine(run: DistributedRun, e: ProcessGroupError, step: number): string {
  const where = `step ${step}`;
  const detail = e.nativeMessage.split('\n')[0].replace(/^\[[^\]]*\]\s*/, '');
  try {
    run.pg.storeSet(`fault/${run.rank}`, String(step));
  } catch {
    const host = run.env.agentStore ? `torchrun's agent (rendezvous store ${run.pg.storeAddress()})` : 'rank 0 (which hosts the rendezvous store)';
    return `rank ${run.rank}: ${host} is gone at ${where}: ${detail}; stopping (no checkpoint written by this rank)`;
  }
  const missing: number[] = [];
  const deadline = Date.now() + 3000;
  for (let r = 0; r < run.worldSize; r++) {
    if (r === run.rank) continue;
    if (run.pg.storeGet(`fault/${r}`, Math.max(1, deadline - Date.now())) === null) missing.push(r);
  }
  const who = missing.length === 0 ? 'another rank' : missing.length === 1 ? `rank ${missing[0]}` : `ranks ${missing.join(', ')}`;
  const what = e.failure === 'timeout' ? `did not answer within the timeout (--dist-timeout)` : `stopped responding`;
  return `rank ${run.rank}: ${who} ${what} at ${where} (${detail}); stopping (no checkpoint written)`;
}
