// Registers tfjs-core's gradient functions, which tf.grad and tf.variableGrads need. Core's Node build
// (tf-core.node.js, what `import '@tensorflow/tfjs-core'` loads) carries none; they ship only in
// core's ES-module tree as dist/register_all_gradients.js, whose imports have no file extensions and
// which Node's own ES-module resolver therefore cannot load. tsx's CommonJS hooks resolve them the way
// bundlers do, so it is loaded with require() (attfc always runs under tsx: `node --import tsx`,
// `npx tsx`, or bin/attfc.js). Its functions go into the global gradient registry that every copy of
// core reads. Imported for this side effect by backend.ts, before any kernel pack registration.
import { createRequire } from 'node:module';

createRequire(import.meta.url)('@tensorflow/tfjs-core/dist/register_all_gradients');
