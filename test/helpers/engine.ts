// Shared test set-up: initialise the engine quietly and release its threads when the file ends.
import { after } from 'node:test';
import { initEngine, shutdownEngine, type EngineOptions, type EngineInfo } from '../../src/engine/index.js';
import { torchAvailable } from '../../src/engine/torch/index.js';

export async function setupEngine(options: EngineOptions = {}): Promise<EngineInfo> {
  after(() => shutdownEngine());
  return initEngine({ log: false, ...options });
}

/**
 * Why backend torch cannot run here (false when it can). Tests of the torch backend skip with this
 * message where the addon is not built; with ATTFC_REQUIRE_TORCH=1 (set by CI) a missing addon fails
 * the run instead, so CI cannot pass without executing them.
 */
export function torchSkipReason(): string | false {
  const { ok, reason } = torchAvailable();
  if (ok) return false;
  if (process.env.ATTFC_REQUIRE_TORCH === '1') throw new Error(`ATTFC_REQUIRE_TORCH=1 but ${reason}`);
  return `backend torch unavailable: ${reason}`;
}
