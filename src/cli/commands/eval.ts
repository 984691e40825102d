// `attfc eval` (verification .bin sets with insightface's protocol, IJB-B/C) and `attfc embed`.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { existsSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { updateModelMetadata } from '../../backbones/index.js';
import { initEngine } from '../../engine/index.js';
import { AttfcError } from '../../errors.js';
import { embedImageFiles } from '../../eval/embedFiles.js';
import { loadModelEmbedder, type LoadedEmbedder as LoadedModel } from '../../eval/modelEmbedder.js';
import { evaluateBin, formatVerificationLine, type VerificationResult } from '../../eval/evaluateBin.js';
import { evaluateIjb, formatIjbTable, formatTable, type IjbResult, type IjbTarget } from '../../eval/ijb.js';
import { writeNpyFloat32 } from '../../eval/npy.js';
import { formatFixed } from '../../eval/numeric.js';
import { writeRocPlot, type RocSeries } from '../../eval/plot.js';
import { createProgress } from '../../util/progress.js';
import { describeThreshold, thresholdRecord } from '../../eval/threshold.js';
import { isSyntheticSet } from '../../data/synthetic/index.js';

/** A loaded model ready for evaluation. */
export type LoadedEmbedder = Pick<LoadedModel, 'embedder' | 'metadata' | 'dispose'>;

/** Where the commands write and how they load models; tests replace these. */
export interface EvalCommandDeps {
  stdout?: (text: string) => void;
  stderr?: { write(text: string): unknown; isTTY?: boolean };
  loadModel?: (dir: string) => Promise<LoadedEmbedder>;
}

/** Loads an attfc embedding model directory (model.json + weights) as an Embedder. */
export const loadEmbedder = (dir: string): Promise<LoadedEmbedder> => loadModelEmbedder(dir);

function positiveInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} expects a whole number >= 1, got '${v}'`);
    return n;
  };
}

/**
 * Checks an output file before any work is done: its extension, and that its folder exists (the
 * result of a long evaluation must not be lost to a typo in the path).
 */
function checkOutputFile(flag: string, file: string, extensions: readonly string[]): void {
  if (!extensions.includes(extname(file).toLowerCase())) throw new AttfcError(`${flag} ${file}: expected a ${extensions.join(' or ')} file name`);
  const folder = dirname(resolve(file));
  if (!existsSync(folder)) throw new AttfcError(`${flag} ${file}: the folder ${folder} does not exist; create it first`);
  if (!statSync(folder).isDirectory()) throw new AttfcError(`${flag} ${file}: ${folder} is a file, not a folder`);
  if (existsSync(file) && statSync(file).isDirectory()) throw new AttfcError(`${flag} ${file}: is a folder; expected a file name`);
}

function pct(x: number, digits = 2): string {
  return `${formatFixed(x * 100, digits)}%`;
}

/** The summary table printed after the per-set insightface lines. */
export function formatVerificationTable(results: readonly VerificationResult[]): string {
  return formatTable(
    ['Set', 'Pairs', 'Accuracy', 'Std', 'XNorm', 'VAL@FAR=1e-3 (10-fold)', 'TAR@FAR<=1e-3 (all pairs)', 'AUC'],
    results.map((r) => [
      r.name,
      String(r.pairs),
      formatFixed(r.accuracy, 5),
      formatFixed(r.std, 5),
      formatFixed(r.xnorm, 4),
      // NaN: some fold lacks same or different pairs (insightface would divide by zero)
      Number.isNaN(r.valAtFar1e3.val)
        ? 'n/a'
        : `${formatFixed(r.valAtFar1e3.val, 5)}+-${formatFixed(r.valAtFar1e3.std, 5)} @ FAR ${formatFixed(r.valAtFar1e3.far, 5)}`,
      formatFixed(r.tarAtFar1e3AllPairs, 5),
      formatFixed(r.auc, 5),
    ]),
  );
}

interface EvalOptions {
  model: string;
  bin?: string[];
  ijb?: string;
  target: IjbTarget;
  batchSize: number;
  json?: boolean;
  plot?: string;
  name?: string[];
  step?: string;
  recordThreshold: boolean;
  align?: boolean;
}

interface EmbedOptions {
  model: string;
  out?: string;
  batchSize: number;
  align?: boolean;
}

/** --step, else the training steps the model's metadata records (attfc's `steps`, others' `step`), else 0. */
function stepLabel(opts: EvalOptions, metadata: Record<string, unknown>): string {
  if (opts.step !== undefined) return opts.step;
  for (const key of ['steps', 'step', 'globalStep']) {
    const v = metadata[key];
    if (typeof v === 'number' || typeof v === 'string') return String(v);
  }
  return '0';
}

/**
 * The ROC figure's title from what the model's metadata records, e.g. `ROC — mbf x0.5, attfc head,
 * 200 steps (SYNTHETIC data)`; --step, when given, names the step instead.
 */
export function rocTitle(metadata: Record<string, unknown>, stepOption: string | undefined, synthetic: boolean): string {
  const parts: string[] = [];
  const { backbone, widthMultiplier, head } = metadata;
  if (typeof backbone === 'string') parts.push(`${backbone}${typeof widthMultiplier === 'number' && widthMultiplier !== 1 ? ` x${widthMultiplier}` : ''}`);
  if (typeof head === 'string') parts.push(`${head} head`);
  const steps = metadata.steps ?? metadata.step ?? metadata.globalStep;
  if (stepOption !== undefined) parts.push(`step ${stepOption}`);
  else if (typeof steps === 'number') parts.push(`${steps} step${steps === 1 ? '' : 's'}`);
  else if (typeof steps === 'string') parts.push(`step ${steps}`);
  return `ROC${parts.length ? ` \u2014 ${parts.join(', ')}` : ''}${synthetic ? ' (SYNTHETIC data)' : ''}`;
}

/** Adds `eval` and `embed` to `program`. */
export function registerEvalCommands(program: Command, deps: EvalCommandDeps = {}): void {
  const stdout = deps.stdout ?? ((t: string) => void process.stdout.write(t));
  const stderr = deps.stderr ?? process.stderr;
  const loadModel = deps.loadModel ?? loadEmbedder;

  program
    .command('eval')
    .summary('verification accuracy on .bin sets (LFW, CFP-FP, AgeDB-30) and TAR@FAR on IJB-B/C')
    .description(
      "evaluate an embedding model with insightface's protocols. --bin: pickled verification sets (lfw.bin, cfp_fp.bin, " +
        'agedb_30.bin, ...): flip-sum embeddings, 10-fold accuracy with the threshold picked on the other 9 folds; prints ' +
        '`[name][step]Accuracy-Flip: acc+-std` per set, then a table with XNorm, insightface\'s VAL@FAR=1e-3 (10-fold, ' +
        'interpolated threshold; mean+-std @ the FAR reached), the best TAR at FAR <= 1e-3 over all pairs, and AUC. --ijb: an IJB-B/C ' +
        'root (meta/ + loose_crop/): 5-point alignment, template pooling, TAR at FAR 1e-6..1e-1.',
    )
    .requiredOption('--model <dir>', 'embedding model directory (model.json + weights, from attfc train/export)')
    .option('--bin <files...>', 'verification .bin files')
    .option('--name <names...>', 'set names for the --bin files, in order (default: file names without .bin)')
    .option('--ijb <root>', 'IJB-B/C root with meta/ and loose_crop/')
    .addOption(new Option('--target <target>', 'which IJB benchmark --ijb holds').choices(['IJBB', 'IJBC']).default('IJBC'))
    .option('--batch-size <n>', 'images per forward pass (each also runs mirrored)', positiveInt('--batch-size'), 32)
    .option('--step <label>', "step shown in the insightface line and the figure's title (default: the training steps in the model's metadata, else 0)")
    .option('--json', 'print only JSON on stdout (progress stays on stderr)')
    .option('--plot <file>', 'write the ROC curves of all sets to a .svg or .png figure')
    .option(
      '--align',
      "re-align every --bin image before embedding: detect its largest face (BlazeFace), take five landmarks (FaceMesh) and warp it to the ArcFace template; images without a face are used as they are and counted",
    )
    .option(
      '--no-record-threshold',
      "do not write the first --bin set's verification threshold (the cosine-similarity cut with the best accuracy on its pairs) into the model's metadata",
    )
    .action(async (opts: EvalOptions) => {
      const bins = opts.bin ?? [];
      if (bins.length === 0 && !opts.ijb) throw new AttfcError('eval: give --bin <files...> and/or --ijb <root>');
      if (opts.name && opts.name.length !== bins.length)
        throw new AttfcError(`eval: --name has ${opts.name.length} names but --bin has ${bins.length} files`);
      if (opts.plot) checkOutputFile('--plot', opts.plot, ['.svg', '.png']);
      if (opts.align && bins.length === 0) throw new AttfcError('eval: --align re-aligns --bin sets; IJB images are aligned with the landmarks in its meta/ files');
      await initEngine();
      const loaded = await loadModel(opts.model);
      try {
        const step = stepLabel(opts, loaded.metadata);
        const sets: VerificationResult[] = [];
        for (let i = 0; i < bins.length; i++) {
          const name = opts.name?.[i];
          const label = name ?? bins[i].replace(/^.*[\\/]/, '').replace(/\.bin$/i, '');
          const r = await evaluateBin(loaded.embedder, bins[i], {
            batchSize: opts.batchSize,
            name,
            align: opts.align === true,
            onProgress: createProgress(opts.align ? `${label} (align + embed)` : label, { stream: stderr }),
          });
          if (r.alignment) {
            const { aligned, withoutFace } = r.alignment;
            stderr.write(`${r.name}: aligned ${aligned} of ${aligned + withoutFace} distinct images${withoutFace ? `; ${withoutFace} without a face used as they are` : ''}\n`);
          }
          sets.push(r);
          if (!opts.json) stdout(`${formatVerificationLine(r.name, step, r)}\n`);
        }
        let ijb: IjbResult | null = null;
        if (opts.ijb) {
          ijb = await evaluateIjb(loaded.embedder, opts.ijb, opts.target, {
            batchSize: opts.batchSize,
            onProgress: createProgress(opts.target, { stream: stderr }),
          });
        }
        if (opts.json) {
          const out: Record<string, unknown> = {};
          if (bins.length > 0)
            out.sets = sets.map((r) => ({
              name: r.name,
              pairs: r.pairs,
              accuracy: r.accuracy,
              std: r.std,
              xnorm: r.xnorm,
              valAtFar1e3: r.valAtFar1e3,
              tarAtFar1e3AllPairs: r.tarAtFar1e3AllPairs,
              auc: r.auc,
              threshold: r.threshold.similarity,
              thresholdAccuracy: r.threshold.accuracy,
              ...(r.alignment ? { alignment: r.alignment } : {}),
            }));
          if (ijb)
            out.ijb = {
              name: ijb.name,
              target: ijb.target,
              images: ijb.images,
              templates: ijb.templates,
              pairs: ijb.pairs,
              auc: ijb.auc,
              tarAtFar: Object.fromEntries(ijb.tarAtFar.map((t) => [t.far.toExponential(0), t.tar])),
            };
          stdout(`${JSON.stringify(out)}\n`);
        } else {
          if (sets.length > 0) stdout(`${formatVerificationTable(sets)}\n`);
          if (ijb) stdout(`${formatIjbTable([ijb])}\n`);
        }
        if (sets.length > 0) {
          // The first set's threshold travels with the model: loadEmbedder(dir).verify() and the browser page use it.
          const steps = loaded.metadata.steps ?? loaded.metadata.step;
          const record = thresholdRecord(sets[0], { file: bins[0], chosenBy: 'attfc eval', step: typeof steps === 'number' ? steps : undefined });
          const where = `${opts.model.replace(/[\\/]+$/, '')}/model.json`;
          let note = `threshold: ${describeThreshold(record)}`;
          if (opts.recordThreshold) {
            try {
              await updateModelMetadata(opts.model, { verification: record });
              note += `; recorded in ${where}`;
            } catch (e) {
              stderr.write(`attfc: warning: the threshold was not recorded in ${where} (${(e as Error).message.split('\n')[0]})\n`);
            }
          }
          (opts.json ? (t: string) => void stderr.write(t) : stdout)(`${note}\n`);
        }
        if (opts.plot) {
          const series: RocSeries[] = sets.map((r) => ({
            name: r.name,
            detail: `acc ${pct(r.accuracy)}   AUC ${formatFixed(r.auc, 4)}   VAL@1e-3 ${pct(r.valAtFar1e3.val)}`,
            fpr: r.roc.fpr,
            tpr: r.roc.tpr,
            negatives: r.roc.negatives,
          }));
          if (ijb) {
            const at = (far: number) => ijb.tarAtFar.find((t) => t.far === far)?.tar ?? 0;
            series.push({
              name: ijb.name,
              detail: `AUC ${formatFixed(ijb.auc, 4)}   TAR@1e-4 ${pct(at(1e-4))}   TAR@1e-5 ${pct(at(1e-5))}`,
              fpr: ijb.roc.fpr,
              tpr: ijb.roc.tpr,
              negatives: ijb.roc.negatives,
            });
          }
          const synthetic = bins.some(isSyntheticSet);
          await writeRocPlot(opts.plot, series, { title: rocTitle(loaded.metadata, opts.step, synthetic) });
          stderr.write(`wrote ${opts.plot}\n`);
        }
      } finally {
        loaded.dispose();
      }
    });

  program
    .command('embed <images...>')
    .summary('write L2-normalised embeddings of aligned face images to JSON or .npy')
    .description(
      'embed aligned face crops with a model: one plain forward pass per image (no flip-sum), L2-normalised, so the ' +
        'cosine similarity of two faces is the dot product. Images are turned upright (EXIF orientation); those not at the ' +
        'model input size are cropped to their centre square and resized (cubic). With --align they may be photos: the largest face ' +
        'of each is detected and aligned to the ArcFace template first, and an image without a face is an error. Output: --out file.json ({"<image>": [..D floats]}), --out file.npy (float32 [n, D], ' +
        'rows in argument order), or JSON on stdout without --out.',
    )
    .requiredOption('--model <dir>', 'embedding model directory (model.json + weights)')
    .option('--out <file>', 'output file: .json or .npy')
    .option('--batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 32)
    .option('--align', 'photos, not crops: detect the largest face in each image and align it to the ArcFace template first (every image must hold a face)')
    .action(async (images: string[], opts: EmbedOptions) => {
      const ext = opts.out ? extname(opts.out).toLowerCase() : '.json';
      if (opts.out) checkOutputFile('--out', opts.out, ['.json', '.npy']);
      if (ext === '.json') {
        const seen = new Set<string>();
        for (const f of images) {
          if (seen.has(f)) throw new AttfcError(`embed: ${f} is given twice; JSON output maps each file to one embedding`);
          seen.add(f);
        }
      }
      await initEngine();
      const loaded = await loadModel(opts.model);
      try {
        const { dim, embeddings } = await embedImageFiles(loaded.embedder, images, {
          batchSize: opts.batchSize,
          align: opts.align === true,
          onProgress: createProgress('embed', { stream: stderr }),
        });
        if (ext === '.npy') {
          writeNpyFloat32(opts.out as string, embeddings, [images.length, dim]);
          stderr.write(`wrote ${opts.out}: float32 [${images.length}, ${dim}], rows in argument order\n`);
          return;
        }
        const obj: Record<string, number[]> = {};
        images.forEach((f, i) => (obj[f] = Array.from(embeddings.subarray(i * dim, (i + 1) * dim))));
        const text = `${JSON.stringify(obj)}\n`;
        if (!opts.out) {
          stdout(text);
          return;
        }
        const tmp = `${opts.out}.tmp-${process.pid}`;
        writeFileSync(tmp, text);
        renameSync(tmp, opts.out);
        stderr.write(`wrote ${opts.out}: ${images.length} embeddings of ${dim} floats\n`);
      } finally {
        loaded.dispose();
      }
    });
}
