// What `attfc demo` (npm start) renders and trains: its data, model and recipe, shared by the command's
// options, the run itself and the benchmarks that measure the demo's model.

/** What the demo renders and trains. */
export interface DemoSetup {
  identities: number;
  imagesPerIdentity: number;
  size: number;
  /** Held-out verification identities and pairs (synthesize's defaults when absent). */
  verifyIdentities?: number;
  verifyPairs?: number;
  backbone: 'mbf';
  widthMultiplier: number;
  batchSize: number;
  steps: number;
  seed: number;
  emaMomentum: number;
  marginS: number;
  marginM2: number;
}

export const DEMO: DemoSetup = {
  identities: 1000,
  imagesPerIdentity: 8,
  size: 32,
  backbone: 'mbf',
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

/** The same pipeline at a size that runs in seconds, for the tests (the hidden --tiny flag). */
export const DEMO_TINY: DemoSetup = {
  ...DEMO,
  // 60 identities: the default DCC (30% of them) must hold at least one batch of 16
  identities: 60,
  imagesPerIdentity: 3,
  verifyIdentities: 10,
  verifyPairs: 40,
  widthMultiplier: 0.25,
  batchSize: 16,
  steps: 3,
};
