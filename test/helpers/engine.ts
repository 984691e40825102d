// Shared test set-up: initialise the engine quietly and release its threads when the file ends.
import { after } from 'node:test';
import { initEngine, shutdownEngine, type EngineOptions, type EngineInfo } from '../../src/engine/index.js';

export async function setupEngine(options: EngineOptions = {}): Promise<EngineInfo> {
  after(() => shutdownEngine());
  return initEngine({ log: false, ...options });
}
