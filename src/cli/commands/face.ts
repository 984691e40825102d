// `attfc detect`, `attfc align` and `attfc verify`: photos in, faces out (boxes, five landmarks, ArcFace
// crops), and two photos compared with a model at its recorded threshold.
import { InvalidArgumentError, type Command } from 'commander';
import { renameSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { initEngine } from '../../engine/index.js';
import { AttfcError } from '../../errors.js';
import { alignFiles, listAlignInputs, type AlignedImage } from '../../face/alignFiles.js';
import { createProgress } from '../../util/progress.js';
import { describeThreshold } from '../../eval/threshold.js';
import { formatFixed } from '../../eval/numeric.js';

/** Where the commands write; tests pass their own. */
export interface FaceCommandIO {
  stdout(text: string): void;
  stderr: { write(text: string): unknown; isTTY?: boolean };
  setExitCode(code: number): void;
}

const processIO: FaceCommandIO = {
  stdout: (t) => void process.stdout.write(t),
  stderr: process.stderr,
  setExitCode: (c) => void (process.exitCode = c),
};

function probability(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !(n >= 0 && n <= 1)) throw new InvalidArgumentError(`${flag} expects a number from 0 to 1, got '${v}'`);
    return n;
  };
}

function positive(flag: string, integer: boolean) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !(n > 0) || (integer && !Number.isInteger(n))) throw new InvalidArgumentError(`${flag} expects a ${integer ? 'whole ' : ''}number > 0, got '${v}'`);
    return n;
  };
}

interface DetectFlags {
  json?: boolean;
  minScore: number;
  minFace?: number;
}

const fmt = (v: number) => formatFixed(v, 1);

/** `file: 1 face` then one line per face: box, score, the five points. */
function describeFaces(r: AlignedImage): string {
  if (r.error) return `${r.file}: ${r.error}\n`;
  const lines = [`${r.file}: ${r.faces.length} face${r.faces.length === 1 ? '' : 's'}`];
  for (const f of r.faces) {
    const [x, y, w, h] = f.box;
    const pts = f.landmarks.map(([px, py]) => `(${fmt(px)}, ${fmt(py)})`).join(' ');
    lines.push(`  box ${fmt(x)},${fmt(y)} ${fmt(w)}x${fmt(h)}  score ${formatFixed(f.score, 3)}  eyes/nose/mouth ${pts}${f.atEdge ? '  (past the image edge)' : ''}${f.crop ? `  -> ${f.crop}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

function jsonLine(r: AlignedImage): string {
  const { problem: _problem, ...rest } = r;
  return `${JSON.stringify(rest)}\n`;
}

const COORDINATES =
  'Coordinates are pixels of the upright image (after EXIF orientation), with the centre of the top-left pixel at (0, 0); ' +
  'landmarks are the ArcFace five in the template order: right eye, left eye, nose tip, right and left mouth corners (image left to right).';

/** Adds `detect`, `align` and `verify` to `program`. */
export function registerFaceCommands(program: Command, io: FaceCommandIO = processIO): void {
  const addDetectOptions = (c: Command) =>
    c
      .option('--min-score <s>', 'lowest detector score kept, 0..1', probability('--min-score'), 0.5)
      .option('--min-face <px>', "smallest face side searched for, in pixels (default: 5% of the image's longer side, at least 20)", positive('--min-face', false));

  addDetectOptions(
    program
      .command('detect <images...>')
      .summary('find faces in photos: boxes, scores and the five ArcFace landmarks')
      .description(
        'detect faces (BlazeFace, from @vladmandic/human\'s models) and their five landmarks (eye centres, nose tip, mouth ' +
          'corners, from FaceMesh) in each image. Images are read with sharp (JPEG, PNG, WebP, ...). One block per image, or ' +
          `with --json one line per image: {"file", "faces": [{"box": [x, y, w, h], "score", "landmarks": [[x, y] x 5], "atEdge"?}], "error"?}. ${COORDINATES} ` +
          'An unreadable image is reported and the rest are still processed; the exit status is 1 if any image could not be read.',
      )
      .option('--json', 'one JSON line per image on stdout'),
  ).action(async (images: string[], opts: DetectFlags) => {
    await initEngine();
    let unreadable = 0;
    for (const input of images) {
      // one call per image: a folder is not expanded here, and crops are not written
      const [r] = await alignFiles([{ file: input, relative: path.basename(input) }], { out: '', minScore: opts.minScore, minFaceSize: opts.minFace, writeCrops: false });
      if (r.problem === 'unreadable') unreadable++;
      io.stdout(opts.json ? jsonLine(r) : describeFaces(r));
    }
    if (unreadable) io.setExitCode(1);
  });

  addDetectOptions(
    program
      .command('align <inputs...>')
      .summary('cut faces out of photos and align them to the ArcFace 112x112 template')
      .description(
        'detect the faces in images and folders, and write each aligned to the ArcFace template (a similarity transform from the ' +
          "five landmarks, insightface's norm_crop) under --out: a folder keeps its layout (root/<identity>/<image> -> " +
          '<out>/<identity>/<image>), a file is written by its name; --out must be empty unless --overwrite. One crop per image (its largest face), or every face with ' +
          '--all-faces (<image>_<k>, largest first). JPEG inputs give JPEG crops (quality 95), others PNG. Images without a face ' +
          'or that cannot be read are reported one line each, listed in <out>/unaligned.txt and counted in the last line; the run ' +
          `goes on, and the exit status is 1 unless every image was aligned. --json: one line per image, {"file", "faces": [{"box": [x, y, w, h], "score", "landmarks": [[x, y] x 5], "crop", "atEdge"?}], "error"?} ` +
          `(crop: the file written, null for a face not aligned; atEdge: true when the face runs past the image edge, its crop black there). ${COORDINATES}`,
      )
      .requiredOption('--out <dir>', 'output folder (created if missing)')
      .option('--size <px>', 'crop side; the template is scaled from 112', positive('--size', true), 112)
      .option('--all-faces', 'write every face found, not only the largest')
      .option('--overwrite', 'write into an --out folder that already holds files (crops of the same names are replaced)')
      .option('--json', 'one JSON line per image on stdout (progress and the summary on stderr)'),
  ).action(async (inputs: string[], opts: DetectFlags & { out: string; size: number; allFaces?: boolean; overwrite?: boolean }) => {
    const { images, skipped } = listAlignInputs(inputs, opts.out);
    if (images.length === 0) throw new AttfcError(`align: no images in ${inputs.join(', ')} (expected .jpg, .jpeg, .png or .webp files)`);
    await initEngine();
    const progress = createProgress('align', { stream: io.stderr });
    const results = await alignFiles(images, {
      out: opts.out,
      size: opts.size,
      allFaces: opts.allFaces === true,
      overwrite: opts.overwrite === true,
      minScore: opts.minScore,
      minFaceSize: opts.minFace,
      onImage: (r, done, total) => {
        if (opts.json) io.stdout(jsonLine(r));
        if (r.error) progress.log(`attfc: ${r.file}: ${r.error}`);
        r.faces.forEach((f, k) => f.atEdge && f.crop && progress.log(`attfc: ${r.file}: face ${k} runs past the image edge; its crop is black there`));
        progress(done, total);
      },
    });
    const noFace = results.filter((r) => r.problem === 'no-face');
    const unreadable = results.filter((r) => r.problem === 'unreadable');
    const aligned = results.length - noFace.length - unreadable.length;
    const crops = results.reduce((n, r) => n + r.faces.filter((f) => f.crop).length, 0);
    let summary = `aligned ${aligned} of ${results.length} images (${crops} crop${crops === 1 ? '' : 's'} in ${opts.out})`;
    if (noFace.length || unreadable.length) {
      const list = path.join(opts.out, 'unaligned.txt');
      mkdirSync(opts.out, { recursive: true });
      const tmp = `${list}.tmp-${process.pid}`;
      writeFileSync(tmp, [...noFace, ...unreadable].map((r) => `${r.file}\t${r.error}\n`).join(''));
      renameSync(tmp, list);
      const parts = [];
      if (noFace.length) parts.push(`${noFace.length} without a face`);
      if (unreadable.length) parts.push(`${unreadable.length} unreadable`);
      summary += `; ${parts.join(', ')}: see ${list}`;
      io.setExitCode(1);
    }
    if (skipped.length) summary += `; ${skipped.length} other file${skipped.length === 1 ? '' : 's'} in the folders skipped (not .jpg/.jpeg/.png/.webp)`;
    (opts.json ? (t: string) => void io.stderr.write(t) : io.stdout)(`${summary}\n`);
  });

  program
    .command('verify <photo1> <photo2>')
    .summary("are two photos the same person? cosine similarity and the verdict at the model's threshold")
    .description(
      "embed two images with a model and print their cosine similarity and same/different at the threshold recorded in the model's " +
        'metadata (by attfc eval or training with --verify). Without --align the images must be face crops (centre-cropped and ' +
        'resized to the model input); with --align the largest face of each photo is detected and aligned first.',
    )
    .requiredOption('--model <dir>', 'embedding model directory (model.json + weights)')
    .option('--align', 'detect and align the largest face of each photo first')
    .option('--json', 'print one JSON object')
    .action(async (a: string, b: string, opts: { model: string; align?: boolean; json?: boolean }) => {
      const { loadEmbedder } = await import('../../embed.js');
      await initEngine();
      const embedder = await loadEmbedder(opts.model);
      try {
        const [ea, eb] = await embedder.embed([a, b], { align: opts.align === true });
        const similarity = embedder.similarity(ea, eb);
        const t = embedder.verification;
        const same = t ? similarity >= t.threshold : null;
        if (opts.json) {
          io.stdout(`${JSON.stringify({ a, b, similarity, same, threshold: t?.threshold ?? null, aligned: opts.align === true })}\n`);
          return;
        }
        const verdict = t ? `${same ? 'same person' : 'different people'} (threshold ${describeThreshold(t)})` : `no verdict: the model has no verification threshold (record one: attfc eval --model ${opts.model} --bin <pairs.bin>)`;
        io.stdout(`cosine similarity ${formatFixed(similarity, 5)}: ${verdict}\n`);
      } finally {
        embedder.dispose();
      }
    });
}
