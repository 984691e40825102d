// The run's output folder: config.json (the configuration a fresh run started with), metrics.jsonl (one
// JSON line per logged step and per verification), environment.json (engine, machine, versions),
// synth_val.bin (the held-out pairs of on-demand synthetic data), and the checkpoints/ and model/
// folders that other modules fill. One process at a time writes it: opening
// takes the folder's lock. A fresh run refuses a folder that already holds something unless told to
// replace the previous run; a resumed run drops the metrics lines logged after its checkpoint.
import { existsSync, mkdirSync, writeFileSync, appendFileSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { engineInfo } from '../engine/index.js';
import { AttfcError } from '../errors.js';
import { LOCK_FILE, lockFolder, type FolderLock } from '../util/folderLock.js';
import { listCheckpoints, recoverCheckpoints } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import { packageVersion } from '../util/packageVersion.js';

/** What a run writes into its folder; --overwrite removes these and nothing else. */
const RUN_ENTRIES = ['config.json', 'environment.json', 'metrics.jsonl', 'checkpoints', 'model', 'synth_val.bin'];
/** Leftovers of an interrupted export, metrics rewrite or verification-set write (`<name>.tmp-<pid>`, `<name>.old-<pid>`). */
const LEFTOVER_RE = /^(model|metrics\.jsonl|synth_val\.bin)\.(tmp|old)-\d+$/;

export class RunFolder {
  readonly dir: string;
  readonly checkpoints: string;
  private readonly metricsPath: string;
  private lock: FolderLock | null;

  private constructor(dir: string, lock: FolderLock) {
    this.dir = dir;
    this.checkpoints = path.join(dir, 'checkpoints');
    this.metricsPath = path.join(dir, 'metrics.jsonl');
    this.lock = lock;
  }

  /**
   * Opens (creating) the output folder and takes its lock: another live attfc process writing it is an
   * AttfcError naming it; a lock left by a killed one is reclaimed. Then repairs what a killed run left
   * (a checkpoint or model moved aside mid-replace, temporary folders).
   */
  static open(output: string): RunFolder {
    const dir = path.resolve(output);
    if (existsSync(dir) && !statSync(dir).isDirectory())
      throw new AttfcError(`--output ${output}: is a file; expected a folder for the run (config.json, metrics.jsonl, checkpoints/, model/)`);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new AttfcError(`--output ${output}: cannot create the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const folder = new RunFolder(dir, lockFolder(dir, 'run folder'));
    folder.recover();
    return folder;
  }

  /** The entries a previous run (or anything else) left, without the lock. */
  private contents(): string[] {
    return readdirSync(this.dir).filter((n) => n !== LOCK_FILE);
  }

  /**
   * Before a fresh run: the folder must be empty, or `overwrite` replaces the previous run's files (and
   * only those: anything else in the folder is refused rather than deleted). `flags` names the options
   * that would help, for the message.
   */
  prepareFresh(overwrite: boolean, resumeHint: string): void {
    const found = this.contents();
    if (found.length === 0) return;
    if (!overwrite) {
      const newest = listCheckpoints(this.checkpoints).pop();
      const what = newest ? `a run (checkpoints up to ${path.basename(newest)})` : `${found.slice(0, 4).join(', ')}${found.length > 4 ? ', ...' : ''}`;
      throw new AttfcError(`--output ${this.dir}: already holds ${what}; ${resumeHint}pass --overwrite to replace it, or choose another --output`);
    }
    const foreign = found.filter((n) => !RUN_ENTRIES.includes(n) && !LEFTOVER_RE.test(n));
    if (foreign.length > 0)
      throw new AttfcError(`--output ${this.dir}: holds files that are not part of a run (${foreign.slice(0, 4).join(', ')}${foreign.length > 4 ? ', ...' : ''}); --overwrite replaces only a run's own files; choose another --output`);
    for (const n of found) rmSync(path.join(this.dir, n), { recursive: true, force: true });
  }

  /** A fresh run: its configuration, and an empty metrics log. */
  startFresh(config: TrainConfig): void {
    writeFileSync(path.join(this.dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    writeFileSync(this.metricsPath, '');
  }

  /**
   * A resumed run continuing at `step`: metrics lines logged after that checkpoint (by a run killed
   * before its next checkpoint) are dropped, so the log has each step once; a torn last line too.
   */
  resumeAt(step: number, config: TrainConfig): void {
    if (!existsSync(path.join(this.dir, 'config.json'))) writeFileSync(path.join(this.dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    if (!existsSync(this.metricsPath)) return;
    const lines = readFileSync(this.metricsPath, 'utf8').split('\n');
    const kept = lines.filter((l) => {
      if (l.trim() === '') return false;
      try {
        const r = JSON.parse(l) as { step?: unknown };
        return !(typeof r.step === 'number' && r.step > step);
      } catch {
        return false;
      }
    });
    if (kept.length === lines.filter((l) => l.trim() !== '').length) return;
    const tmp = `${this.metricsPath}.tmp-${process.pid}`;
    writeFileSync(tmp, kept.map((l) => l + '\n').join(''));
    renameSync(tmp, this.metricsPath);
  }

  /** Where the held-out verification pairs of on-demand synthetic data are written. */
  get syntheticVerificationBin(): string {
    return path.join(this.dir, 'synth_val.bin');
  }

  appendMetrics(record: Record<string, unknown>): void {
    appendFileSync(this.metricsPath, JSON.stringify(record) + '\n');
  }

  writeEnvironment(replicas: number, resumedFrom: string | undefined, distributed?: { worldSize: number; launcher: string; syncBn: boolean }): void {
    const env = {
      engine: engineInfo(),
      parallel: distributed ? { mode: 'processes', ...distributed } : { mode: replicas > 1 ? 'data' : 'threads', replicas },
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

  /** Releases the folder's lock. Safe to call twice. */
  close(): void {
    this.lock?.release();
    this.lock = null;
  }

  private recover(): void {
    recoverCheckpoints(this.checkpoints);
    const model = path.join(this.dir, 'model');
    for (const n of this.contents()) {
      if (!LEFTOVER_RE.test(n)) continue;
      const p = path.join(this.dir, n);
      if (n.startsWith('model.old-') && !existsSync(path.join(model, 'model.json'))) {
        rmSync(model, { recursive: true, force: true });
        renameSync(p, model);
      } else rmSync(p, { recursive: true, force: true });
    }
  }
}
