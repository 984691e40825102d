// `attfc serve <modelDir>`: the browser face verifier for one exported model on a local web server.
import { InvalidArgumentError, type Command } from 'commander';
import { readVerificationThreshold } from '../../eval/threshold.js';

interface ServeOptions {
  port: number;
  host: string;
}

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`--port expects a whole number 0..65535, got '${v}'`);
  return n;
}

export function registerServeCommand(program: Command, out: (text: string) => void = (t) => void process.stdout.write(t)): void {
  program
    .command('serve <modelDir>')
    .summary('serve the browser face verifier (examples/browser) for an exported model on localhost')
    .description(
      'start a local web server with the browser face verifier: a page that loads the model with TensorFlow.js ' +
        '(WebGL, falling back to WASM), takes two photos (files, drag and drop, or the webcam), finds their faces ' +
        '(BlazeFace + FaceMesh, the same code and models as attfc align), draws the boxes and five landmarks, shows the ' +
        "aligned crops the model sees, their cosine similarity and same/different at the threshold recorded in the model's " +
        'metadata (or, with alignment off, takes the images as face crops). Runs until Ctrl-C.',
    )
    .option('--port <n>', 'port (0 picks a free one)', port, 8080)
    .option('--host <address>', 'address to listen on (the default serves this machine only)', '127.0.0.1')
    .action(async (modelDir: string, opts: ServeOptions) => {
      const { startBrowserServer, readServedModel } = await import('../browserServer.js');
      const threshold = readVerificationThreshold(readServedModel(modelDir), `${modelDir}/model.json`);
      const server = await startBrowserServer({ modelDir, host: opts.host, port: opts.port });
      out(`attfc: browser verifier for ${modelDir} at ${server.url} (Ctrl-C stops)\n`);
      if (!threshold)
        out(`attfc: the model has no verification threshold, so the page shows similarities only (record one: attfc eval --model ${modelDir} --bin <pairs.bin>)\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await server.close();
    });
}
