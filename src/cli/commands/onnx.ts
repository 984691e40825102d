// `attfc import` (an insightface-style ONNX recognition model -> attfc model folder) and
// `attfc export` (attfc model folder -> ONNX for onnxruntime).
import type { Command } from 'commander';
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadBackboneFromModelDir } from '../../backbones/weightsIO.js';
import { initEngine } from '../../engine/index.js';
import { AttfcError } from '../../errors.js';
import { SUPPORTED_OPERATORS } from '../../onnx/graph.js';
import { readOnnxBackbone, writeImportedModel } from '../../onnx/importer.js';
import { backboneToOnnx, ONNX_OPSET } from '../../onnx/writer.js';

/** Where the commands write; tests replace it. */
export interface OnnxCommandDeps {
  stdout?: (text: string) => void;
}

function trainFlags(backbone: string, options: { inputSize?: number; widthMultiplier?: number; embeddingSize?: number; mbfScale?: number }): string {
  const parts = [`--backbone ${backbone}`, `--input-size ${options.inputSize}`, `--embedding-size ${options.embeddingSize}`];
  if (options.widthMultiplier !== 1) parts.push(`--width ${options.widthMultiplier}`);
  if (options.mbfScale !== undefined) parts.push(`--mbf-scale ${options.mbfScale}`);
  return parts.join(' ');
}

export function registerOnnxCommands(program: Command, deps: OnnxCommandDeps = {}): void {
  const stdout = deps.stdout ?? ((t: string) => void process.stdout.write(t));

  program
    .command('import <model.onnx>')
    .summary('convert an insightface ONNX recognition model (IResNet, MobileFaceNet) to an attfc model folder')
    .description(
      'read an ONNX face-recognition model and write it as an attfc model folder (model.json + weights.bin, the format ' +
        'attfc train exports), ready for attfc eval/embed and attfc train --init-from. Recognised from the graph ' +
        'structure, whatever the initializer names: insightface IResNet-18/34/50/100/200 and MobileFaceNet (blocks ' +
        '(1,4,6,2) or (2,8,12,4), any width scale). Batch norms folded into convolution biases become separate, ' +
        'trainable batch norms again (gamma 1, beta = bias, mean 0, var 1 - eps). The file must take NCHW float32 ' +
        'input normalised (x - 127.5) / 127.5 (or raw pixels with that normalisation inside the graph). Operators read: ' +
        `${SUPPORTED_OPERATORS.join(', ')}. Any other graph is refused with one line naming the first node that does not fit.`,
    )
    .requiredOption('--out <dir>', 'model folder to write (new, empty, or holding only a previous model)')
    .action(async (file: string, opts: { out: string }) => {
      await initEngine();
      const imp = readOnnxBackbone(file);
      await writeImportedModel(imp, opts.out);
      const o = imp.options;
      stdout(
        [
          `imported ${file} (sha256 ${imp.source.sha256}${imp.source.producer ? `, made by ${imp.source.producer}` : ''}, opset ${imp.source.opset})`,
          `  architecture: ${imp.description}; ${o.inputSize}x${o.inputSize} input, ${o.embeddingSize}-d embedding`,
          `  batch norms unfolded from biases: ${imp.unfoldedBatchNorms}${imp.inputScale !== 1 ? `; in-graph input scaling folded into the stem (x${imp.inputScale})` : ''}`,
          `  wrote ${opts.out} (attfc backbone ${trainFlags(imp.backbone, o)})`,
          `  next: attfc eval --model ${opts.out} --bin lfw.bin   |   attfc train --init-from ${opts.out} --data <dataset>`,
        ].join('\n') + '\n',
      );
    });

  program
    .command('export <modelDir>')
    .summary('write an attfc model folder as ONNX (insightface layout) for onnxruntime')
    .description(
      `write the embedding network of an attfc model folder (from attfc train or attfc import) as ONNX opset ${ONNX_OPSET}, ` +
        "laid out like insightface's files: input \"input\" NCHW float32 [batch, 3, S, S] already normalised " +
        '(x - 127.5) / 127.5, output "output" [batch, D] raw embeddings (L2-normalise them for cosine similarity), ' +
        'batch dimension dynamic.',
    )
    .requiredOption('--onnx <file>', 'ONNX file to write')
    .option('--fold-batch-norm', 'fold each batch norm that follows a convolution into its weights and bias (as PyTorch exports)')
    .action(async (dir: string, opts: { onnx: string; foldBatchNorm?: boolean }) => {
      if (path.extname(opts.onnx).toLowerCase() !== '.onnx') throw new AttfcError(`export: --onnx ${opts.onnx}: expected a file name ending in .onnx`);
      await initEngine();
      const { backbone, metadata } = await loadBackboneFromModelDir(dir);
      try {
        const source: Record<string, string> = typeof metadata.sourceSha256 === 'string' ? { sourceSha256: metadata.sourceSha256 } : {};
        const bytes = backboneToOnnx(backbone, { foldBatchNorm: opts.foldBatchNorm, metadata: source });
        const tmp = `${opts.onnx}.tmp-${process.pid}`;
        try {
          writeFileSync(tmp, bytes);
          renameSync(tmp, opts.onnx);
        } catch (e) {
          throw new AttfcError(`export: cannot write ${opts.onnx} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
        }
        const s = backbone.options.inputSize;
        stdout(`wrote ${opts.onnx}: ${backbone.name}, input [batch, 3, ${s}, ${s}] (x - 127.5) / 127.5 RGB, output [batch, ${backbone.options.embeddingSize}], ${(bytes.length / 1e6).toFixed(1)} MB\n`);
      } finally {
        backbone.dispose();
      }
    });
}
