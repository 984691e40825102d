// The run's output folder: config.json (the configuration a fresh run started with), metrics.jsonl (one
// JSON line per logged step and per verification), environment.json (engine, machine, versions), and the
// checkpoints/ and model/ folders that other modules fill.
import { mkdirSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { engineInfo } from '../engine/index.js';
import type { TrainConfig } from './config.js';
import { packageVersion } from '../util/packageVersion.js';

export class RunFolder {
  readonly dir: string;
  readonly checkpoints: string;
  private readonly metricsPath: string;

  constructor(output: string) {
    this.dir = path.resolve(output);
    this.checkpoints = path.join(this.dir, 'checkpoints');
    this.metricsPath = path.join(this.dir, 'metrics.jsonl');
    mkdirSync(this.dir, { recursive: true });
  }

  /** A fresh run: its configuration, and an empty metrics log (a resumed run appends to its own). */
  startFresh(config: TrainConfig): void {
    writeFileSync(path.join(this.dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    writeFileSync(this.metricsPath, '');
  }

  appendMetrics(record: Record<string, unknown>): void {
    appendFileSync(this.metricsPath, JSON.stringify(record) + '\n');
  }

  writeEnvironment(replicas: number, resumedFrom: string | undefined): void {
    const env = {
      engine: engineInfo(),
      parallel: { mode: replicas > 1 ? 'data' : 'threads', replicas },
      node: process.version,
      platform: `${os.platform()} ${os.arch()}`,
      cpu: os.cpus()[0]?.model,
      cores: os.cpus().length,
      memBytes: os.totalmem(),
      attfc: packageVersion(),
      startedAt: new Date().toISOString(),
      resumedFrom,
    };
    writeFileSync(path.join(this.dir, 'environment.json'), JSON.stringify(env, null, 2) + '\n');
  }
}
