// `attfc data inspect` and `attfc data pack`.
import { InvalidArgumentError, type Command } from 'commander';
import { inspect, type InspectReport } from '../../data/inspect.js';
import { pack } from '../../data/pack.js';
import { SYNTH_SPEC_SYNTAX } from '../../data/synthetic/spec.js';
import { initEngine } from '../../engine/index.js';
import { createProgress } from '../../util/progress.js';

/** Where command output goes; tests pass their own to capture it. */
export interface CommandIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Marks the command as failed with this exit code (the process keeps running). */
  setExitCode(code: number): void;
  /** stderr is a terminal (progress bars redraw in place). */
  interactive?: boolean;
}

const processIO: CommandIO = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  setExitCode: (code) => void (process.exitCode = code),
  interactive: process.stderr.isTTY,
};

/** Adds the `data` command group (inspect, pack) to `program`. */
export function registerDataCommands(program: Command, io: CommandIO = processIO): void {
  const data = program
    .command('data')
    .description('check and convert face-recognition datasets (RecordIO train.rec/.idx or image folders)');

  data
    .command('inspect <path>')
    .summary('check a dataset and print its identity/image statistics and all problems found')
    .description(
      'check a dataset and summarise it: identities, images, images per identity, image size. <path> is a directory ' +
        'with train.rec + train.idx (+ property), a .rec file, an image folder root/<identity>/<image>.jpg|png, or ' +
        `the on-demand synthetic source ${SYNTH_SPEC_SYNTAX} (images rendered when read; its sample is rendered and decoded). ` +
        'Reads every record header and decodes a sample of images; lists ALL problems found and exits with 1 if any.',
    )
    .option('--json', 'print one JSON object instead of the human summary')
    .option('--labels', 'print "key label" for every image, one per line (summary goes to stderr)')
    .option('--sample <n>', 'images to decode-check, spread evenly over the set ("all" for every image)', parseSample, 200)
    .action(async (path: string, opts: { json?: boolean; labels?: boolean; sample: number }) => {
      const report = await inspect(path, { sample: opts.sample, labels: opts.labels === true });
      if (opts.json) {
        const { labels, ...summary } = report;
        io.stdout(`${JSON.stringify(opts.labels ? { ...summary, labels } : summary)}\n`);
      } else if (opts.labels) {
        io.stdout(report.labels!.map((l) => `${l.key} ${l.label}\n`).join(''));
        io.stderr(formatSummary(report));
      } else {
        io.stdout(formatSummary(report));
      }
      if (report.errors.length > 0) io.setExitCode(1);
    });

  data
    .command('pack <image-folder> <out>')
    .summary('convert an image folder into an insightface RecordIO dataset (train.rec, train.idx, property)')
    .description(
      'convert an image folder (root/<identity>/<image>.jpg|jpeg|png; identities numbered in sorted folder order) into ' +
        'an insightface RecordIO dataset <out>/train.rec, train.idx and property. JPEGs are copied as-is after a decode ' +
        'check; PNGs are re-encoded to JPEG (quality 95). <out> must not already hold a train.rec. With --align the images are ' +
        'photos: the largest face of each is detected and aligned to the ArcFace template (--size, default 112) and packed as ' +
        'JPEG; images without a face or unreadable are skipped, each reported, and the exit status is then 1.',
    )
    .option('--align', 'detect and align the largest face of every image first (progress bar on stderr)')
    .option('--size <px>', 'with --align: crop side', parseSize, 112)
    .action(async (folder: string, out: string, opts: { align?: boolean; size: number }) => {
      let last = 0;
      if (opts.align) await initEngine();
      const progress = opts.align ? createProgress('pack --align', { stream: { write: (s: string) => io.stderr(s), isTTY: io.interactive, columns: process.stderr.columns } }) : null;
      const report = await pack(folder, out, {
        onProgress: (done, total) => {
          if (progress) return progress(done, total);
          if (done === total || done - last >= 5000) {
            last = done;
            io.stderr(`packed ${done}/${total} images\n`);
          }
        },
        align: opts.align ? { size: opts.size, onSkip: (file, reason) => progress?.log(`attfc: ${file}: ${reason} (skipped)`) } : undefined,
      });
      const { width, height } = report.imageSize;
      io.stdout(
        `packed ${report.images} images of ${report.identities} identities into ${out} ` +
          `(${report.reencoded} re-encoded to JPEG, property ${report.identities},${height},${width})\n`,
      );
      if (report.skipped && report.skipped.images > 0) {
        const ids = report.skipped.identities;
        io.stderr(`skipped ${report.skipped.images} images without an aligned face${ids ? ` (${ids} identit${ids === 1 ? 'y' : 'ies'} left with none, dropped)` : ''}: see the lines above\n`);
        io.setExitCode(1);
      }
      if (report.otherSizes > 0) {
        io.stderr(`warning: ${report.otherSizes} images are not ${width}x${height}; training resizes them\n`);
      }
    });
}

function parseSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 8) throw new InvalidArgumentError(`expected a whole number of pixels >= 8, got '${value}'`);
  return n;
}

function parseSample(value: string): number {
  if (value === 'all') return Infinity;
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a non-negative integer or "all"');
  return Number(value);
}

/** Human-readable report, one fact per line. */
export function formatSummary(r: InspectReport): string {
  const kinds = { recordio: `RecordIO (${r.layout ?? 'unknown'} layout)`, folder: 'image folder', synthetic: 'SYNTHETIC faces rendered on demand (no files)' };
  const kind = r.format ? kinds[r.format] : 'unreadable';
  const lines = [
    `${r.source}: ${kind}`,
    `  identities        ${r.identities}`,
    `  images            ${r.images}`,
    `  per identity      min ${r.minPerIdentity}, median ${r.medianPerIdentity}, max ${r.maxPerIdentity}`,
    `  image size        ${r.imageSize ? `${r.imageSize.width}x${r.imageSize.height}` : 'unknown'}`,
    `  decode-checked    ${r.decodeChecked} images`,
    r.errors.length === 0 ? '  errors            none' : `  errors            ${r.errors.length}`,
    ...r.errors.map((e) => `    ${e}`),
  ];
  return `${lines.join('\n')}\n`;
}
