// `attfc demo` (what `npm start` runs): synthetic faces -> AttFC training -> verification -> export, in
// a few minutes on a 2-core CPU, with a short report at the end.
import { Command } from 'commander';
import path from 'node:path';
import { formatDuration } from '../../train/progress.js';

export const DEMO = {
  identities: 1000,
  imagesPerIdentity: 8,
  size: 32,
  backbone: 'mbf' as const,
  widthMultiplier: 0.5,
  batchSize: 64,
  steps: 200,
  seed: 0,
  // A few-minute run differs from the paper's 5 epochs over millions of images: the class encoder must
  // follow f_q within ~200 steps (EMA 0.95, not 0.999), and a milder ArcFace margin starts learning sooner.
  emaMomentum: 0.95,
  marginS: 32,
  marginM2: 0.2,
};

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('the built-in demo: make a synthetic face set (cached), train AttFC on it, evaluate on held-out identities, export the model')
    .option('--out <dir>', 'where the data, logs and model go (a previous demo run in <out>/run is replaced)', 'runs/demo')
    .option('--steps <n>', 'training steps', String(DEMO.steps))
    .action(async (o: { out: string; steps: string }) => {
      const { runDemo } = await import('../demo.js');
      await runDemo(path.resolve(o.out), Number(o.steps));
    });
}

export { formatDuration };
