// Starts the data-parallel replicas a run plan asks for (each a worker with its own single-threaded WASM
// instance and copies of f_q and f_k), or logs why the run uses one WASM instance instead.
import type { Backbone } from '../backbones/index.js';
import { ReplicaGroup } from './dataParallel/replicaGroup.js';
import type { RankRandomState } from './dataParallel/shared.js';
import { backboneOptions, type RunPlan } from './runPlan.js';

/** Call after any restore: the workers start from rank 0's (possibly resumed) weights. */
export async function startReplicas(
  plan: RunPlan,
  fq: Backbone,
  fk: Backbone | null,
  log: (line: string) => void,
  randomStates: RankRandomState[] = [],
): Promise<ReplicaGroup | null> {
  const c = plan.config;
  const { replicas, engine } = plan;
  if (replicas > 1) {
    const group = await ReplicaGroup.start({
      replicas,
      batchSize: c.batchSize,
      keysPerSample: plan.keysPerSample,
      backbone: c.backbone,
      backboneOptions: backboneOptions(c),
      fq,
      fk,
      emaMomentum: fk ? c.emaMomentum : null,
      randomStates,
    });
    log(`attfc: data-parallel: ${replicas} replicas x 1 WASM thread, batch ${c.batchSize} = ${group.rows.map(([a, b]) => b - a).join(' + ')} rows (each replica's batch norm uses its own rows)`);
    return group;
  }
  if (engine.backend === 'wasm' && plan.parallelReason)
    log(`attfc: one WASM instance with ${engine.threads} thread${engine.threads === 1 ? '' : 's'} (not data-parallel: ${plan.parallelReason})`);
  return null;
}
