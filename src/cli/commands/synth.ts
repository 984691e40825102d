// `attfc synth`: render the built-in synthetic face dataset (training .rec + held-out verification .bin).
import { InvalidArgumentError, type Command } from 'commander';
import path from 'node:path';
import { createProgress, type ProgressFn } from '../../util/progress.js';
import { synthesize, SYNTH_FILES, type SynthOptions, type SynthSummary } from '../../data/synthetic/index.js';

/** Where the command writes; tests pass their own to capture output. */
export interface SynthIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stderr is a terminal (progress then updates one line in place). */
  interactive: boolean;
}

const processIO: SynthIO = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  interactive: process.stderr.isTTY === true,
};

function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${value}"`);
  return n;
}

interface SynthFlags {
  identities: number;
  imagesPerIdentity: number;
  size: number;
  out: string;
  seed?: number;
  lowQualityShare?: number;
  familySize?: number;
  verifyIdentities?: number;
  verifyPairs?: number;
  jpegQuality?: number;
  workers?: number;
  overwrite?: boolean;
}

/** Progress on the command's stderr: the shared bar when it is a terminal, a line per 10% otherwise. */
function progressPrinter(io: SynthIO): ProgressFn {
  return createProgress('synth', { stream: { write: (s: string) => io.stderr(s), isTTY: io.interactive, columns: process.stderr.columns } });
}

/** The human summary printed after `attfc synth`. */
export function formatSynthSummary(s: SynthSummary): string {
  const o = s.options;
  const pct = (n: number, d: number) => (d > 0 ? ((100 * n) / d).toFixed(1) : '0.0');
  const files = [SYNTH_FILES.rec, SYNTH_FILES.idx, SYNTH_FILES.property, ...(o.verifyPairs > 0 ? [SYNTH_FILES.verification] : []), SYNTH_FILES.meta];
  return (
    `synthetic face dataset in ${s.out}${s.cached ? ' (up to date: synth.json matches these options, nothing rendered)' : ''}\n` +
    `  identities  ${s.identities} training (ids 0..${s.identities - 1}) in families of ${o.familySize}, ${s.verifyIdentities} held-out for verification\n` +
    `  images      ${s.trainImages} training (${o.imagesPerIdentity} per identity, ${o.size}x${o.size}, seed ${o.seed}); ` +
    `low quality ${s.lowQualityImages} (${pct(s.lowQualityImages, s.trainImages)}%), mean quality ${s.meanQuality.toFixed(3)}\n` +
    `  verify      ${s.verifyPairs} pairs (half same, half different, mostly same-family negatives) from ${s.verifyImages} images\n` +
    `  speed       ${s.seconds.toFixed(1)} s, ${s.imagesPerSecond.toFixed(0)} images/s on ${s.workers === 0 ? 'the main thread' : `${s.workers} render threads`}${s.cached ? ' (when it was made)' : ''}\n` +
    `  files       ${files.join(' ')}\n`
  );
}

/** Adds `attfc synth` to `program`. */
export function registerSynthCommand(program: Command, io: SynthIO = processIO): void {
  program
    .command('synth')
    .summary('render a synthetic face-identity dataset (train.rec/.idx/property + synth_val.bin)')
    .description(
      'render the built-in synthetic face dataset: identities with stable face parameters (families of look-alikes), ' +
        'images varying in pose, expression, lighting, background, occlusion, blur, noise, resolution and JPEG quality, ' +
        'a share of them low quality. Writes <out>/train.rec, train.idx, property (labels [identity, quality]), ' +
        'synth_val.bin (pairs of held-out identities, insightface .bin format) and synth.json. Deterministic from the seed; ' +
        'if <out>/synth.json already records the same options nothing is rendered. A folder holding another data set ' +
        '(one synth did not make, or a synthetic one with other options) is refused unless --overwrite.',
    )
    .requiredOption('--identities <n>', 'training identities', parseNumber)
    .requiredOption('--images-per-identity <k>', 'images per training identity', parseNumber)
    .requiredOption('--out <dir>', 'output directory')
    .option('--size <s>', 'image width = height in pixels (32..112 for CPU experiments)', parseNumber, 112)
    .option('--seed <n>', 'master seed (default 0)', parseNumber)
    .option('--low-quality-share <p>', 'share of heavily degraded images (default 0.2)', parseNumber)
    .option('--family-size <n>', 'identities per family of look-alikes (default 4; 1 = none)', parseNumber)
    .option('--verify-identities <n>', 'held-out identities (default max(50, 10% of identities))', parseNumber)
    .option('--verify-pairs <n>', 'verification pairs, even (default 1000)', parseNumber)
    .option('--jpeg-quality <q>', 'best JPEG quality (default 92)', parseNumber)
    .option('--workers <n>', 'render threads (default: all cores, or the main thread for runs under 1000 images; 0 = main thread)', parseNumber)
    .option('--overwrite', 'replace a data set already in --out (one synth did not make, or made with other options)')
    .action(async (flags: SynthFlags) => {
      const { out, overwrite, ...rest } = flags;
      const options: SynthOptions = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as unknown as SynthOptions;
      const summary = await synthesize(path.resolve(out), options, progressPrinter(io), { overwrite: overwrite === true });
      io.stdout(formatSynthSummary(summary));
    });
}
