// Train AttFC on a small synthetic face set, then embed two images with the exported model.
// Run: npx tsx examples/quickstart.ts   (about a minute on 2 CPU cores)
import { synthesize, train, loadEmbedder, openDataset, shutdownEngine } from 'attfc';

const data = 'runs/quickstart/data';
await synthesize(data, { identities: 64, imagesPerIdentity: 6, size: 32 }); // SYNTHETIC faces (cached)

const run = train({
  data, // an insightface folder (train.rec/.idx/property), a .rec file, or an image folder
  output: 'runs/quickstart/run',
  backbone: 'mbf',
  widthMultiplier: 0.25,
  inputSize: 32,
  batchSize: 16,
  steps: 20,
  head: 'attfc', // or 'fc' (full FC), 'pfc' (Partial FC); sampleNum: 2 is DCQ-style
  verify: [`${data}/synth_val.bin`],
}, { overwrite: true }); // replace the run an earlier execution of this example left
run.on('step', (m) => {
  if (m.step % 5 === 0) console.log(`step ${m.step}/${m.totalSteps} loss ${m.loss.toFixed(3)} ${m.samplesPerSec.toFixed(1)} samples/s`);
});
const result = await run.done;
console.log(`held-out synthetic pairs: accuracy ${result.verification[0].accuracy.toFixed(4)}`);

// Embed images (Buffers, file paths or tensors) with the exported TensorFlow.js model.
const embedder = await loadEmbedder(result.modelDir!);
const ds = openDataset(data);
const [i, j] = ds.identityImages(0);
const [a, b] = await embedder.embed([await ds.readImage(i), await ds.readImage(j)]);
ds.close();
console.log(`${a.length}-d unit embeddings; cosine similarity of two images of one identity: ${embedder.similarity(a, b).toFixed(3)}`);
shutdownEngine();
