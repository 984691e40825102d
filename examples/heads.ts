// Build each head in code and run one AttFC training step by hand (random images stand in for faces).
// Run: npx tsx examples/heads.ts
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine, createBackbone, FullFcHead, PartialFcHead, AttFcHead, ClassEncoder, Sgd, ARCFACE, COSFACE } from 'attfc';

await initEngine();
const [B, K, N, size] = [16, 3, 1000, 32];
const fq = createBackbone('mbf', { inputSize: size, widthMultiplier: 0.25 }); // f_q: trained
const fk = createBackbone('mbf', { inputSize: size, widthMultiplier: 0.25 }); // f_k: its EMA copy
const encoder = new ClassEncoder(fq, fk, 0.999);

const fc = new FullFcHead({ numClasses: N, embeddingSize: 512, margin: ARCFACE, seed: 0 }); // W: a tf.Variable
const pfc = new PartialFcHead({ numClasses: N, embeddingSize: 512, sampleRate: 0.1, margin: COSFACE, seed: 0 }); // W in JS memory
const attfc = new AttFcHead({ numClasses: N, embeddingSize: 512, batchSize: B, sampleNum: K, queueRatio: 0.3,
  attention: 'softmax', masking: true, margin: ARCFACE, seed: 0 }); // no trainable parameters

// one AttFC step: images [B,S,S,3], their K-1 key images [B*(K-1),S,S,3] of the same identities, labels
const images = tf.randomNormal([B, size, size, 3]) as tf.Tensor4D;
const keys = tf.randomNormal([B * (K - 1), size, size, 3]) as tf.Tensor4D;
const labels = Int32Array.from({ length: B }, (_, i) => (i * 37) % N);
const sgd = new Sgd(fq.trainableVariables(), { momentum: 0.9, weightDecay: 5e-4 });

encoder.update(); // EMA before the key forward
const keyEmbeddings = tf.tidy(() => encoder.embed(keys)); // no gradient
attfc.prepare(labels);
const { value, grads } = tf.variableGrads(
  () => attfc.loss({ embeddings: fq.apply(images, true), labels, keyEmbeddings }),
  fq.trainableVariables(),
);
sgd.step(fq.trainableVariables().map((v) => grads[v.name]), 0.1);
attfc.afterStep([], { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 }); // enqueue this batch's GCCs after the loss
console.log(`AttFC loss ${value.dataSync()[0].toFixed(3)}; diagnostics ${JSON.stringify(attfc.diagnostics())}`);
console.log(`head state: FC ${fc.stateBytes()} B, PFC ${pfc.stateBytes()} B, AttFC ${attfc.stateBytes()} B`);
tf.dispose([value, ...Object.values(grads), keyEmbeddings, images, keys]);
shutdownEngine();
