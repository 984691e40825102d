// The environment a launcher gives each process of a distributed run, read the way torch.distributed's
// env:// rendezvous reads it: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (torchrun, `attfc train --nproc`,
// Kubeflow's PyTorchJob, an sbatch script all set these), LOCAL_RANK / LOCAL_WORLD_SIZE (processes on
// this machine), and torchrun's elastic agent's TORCHELASTIC_* variables. Reading it has no side effects.
import os from 'node:os';
import { AttfcError } from '../../errors.js';

/** Exit status of a rank that stopped because another rank failed (it is not the failure's cause). */
export const PEER_FAILED_EXIT = 75;

export interface LaunchEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
  /**
   * torchrun's agent hosts the rendezvous store (TORCHELASTIC_USE_AGENT_STORE=True): every rank connects
   * as a client. Otherwise rank 0 starts it, as torch.distributed does for env://.
   */
  agentStore: boolean;
  /** torchrun's restart count: >= 1 when the agent restarted the workers after a failure. */
  restartCount: number;
  /** torchrun's run id, or null. */
  runId: string | null;
  /** Keys of this attempt in the store (a restarted attempt must not meet the last one's keys). */
  storePrefix: string;
  /** Who launched the process, for messages: 'torchrun', 'attfc --nproc' or 'environment'. */
  launcher: string;
}

function whole(env: NodeJS.ProcessEnv, name: string, min: number): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new AttfcError(`${name}=${v}: expected a whole number >= ${min}`);
  return n;
}

/**
 * The launch environment, or null when this process runs alone (no WORLD_SIZE, or WORLD_SIZE=1). A
 * partial or contradictory one is an AttfcError naming the variable.
 */
export function readLaunchEnv(env: NodeJS.ProcessEnv = process.env): LaunchEnv | null {
  const worldSize = whole(env, 'WORLD_SIZE', 1);
  const rank = whole(env, 'RANK', 0);
  if (worldSize === undefined) {
    if (rank !== undefined && rank > 0) throw new AttfcError(`RANK=${rank} is set but WORLD_SIZE is not: set both (or neither, to train in one process)`);
    return null;
  }
  if (worldSize === 1) return null;
  if (rank === undefined) throw new AttfcError(`WORLD_SIZE=${worldSize} is set but RANK is not: every process of a distributed run needs its RANK (0..${worldSize - 1})`);
  if (rank >= worldSize) throw new AttfcError(`RANK=${rank} is not below WORLD_SIZE=${worldSize}`);
  const masterAddr = env.MASTER_ADDR;
  if (!masterAddr) throw new AttfcError(`MASTER_ADDR is not set: the ranks of a distributed run meet at MASTER_ADDR:MASTER_PORT (rank 0's machine)`);
  const masterPort = whole(env, 'MASTER_PORT', 1);
  if (masterPort === undefined || masterPort > 65535) throw new AttfcError(`MASTER_PORT=${env.MASTER_PORT ?? ''}: expected a TCP port (1-65535) where rank 0's rendezvous store listens`);
  const localWorldSize = whole(env, 'LOCAL_WORLD_SIZE', 1) ?? 1;
  const localRank = whole(env, 'LOCAL_RANK', 0) ?? 0;
  if (localRank >= localWorldSize) throw new AttfcError(`LOCAL_RANK=${localRank} is not below LOCAL_WORLD_SIZE=${localWorldSize}`);
  const agentStore = /^(1|true)$/i.test(env.TORCHELASTIC_USE_AGENT_STORE ?? '');
  const restartCount = whole(env, 'TORCHELASTIC_RESTART_COUNT', 0) ?? 0;
  const runId = env.TORCHELASTIC_RUN_ID || null;
  const launcher = env.TORCHELASTIC_RUN_ID !== undefined ? 'torchrun' : env.ATTFC_LAUNCHER === '1' ? 'attfc --nproc' : 'environment';
  // torch.distributed's prefix under torchrun's agent store; attfc's own keys beneath it
  const storePrefix = agentStore ? `/worker/attempt_${restartCount}/attfc` : `attfc/attempt_${restartCount}`;
  return { rank, worldSize, localRank, localWorldSize, masterAddr, masterPort, agentStore, restartCount, runId, storePrefix, launcher };
}

/** Intra-op threads per rank when none were asked for: this machine's cores shared by its ranks. */
export function defaultRankThreads(localWorldSize: number, cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / Math.max(1, localWorldSize)));
}
