// Registers tfjs-core's gradient functions, which tf.grad and tf.variableGrads need. Core's Node build
// (tf-core.node.js, what `import '@tensorflow/tfjs-core'` loads) carries none; they ship only in
// core's ES-module tree as dist/register_all_gradients.js, whose imports have no file extensions (and
// one names a file that sits beside a folder of the same name), so Node's ES-module resolver cannot
// load it. tsx's CommonJS require resolves such imports the way bundlers do; its scoped form is used
// here so that this works however the process started (the CLI, `node --import tsx`, a worker thread
// that registered only tsx's ES-module hooks) and installs no hook for anything else. The gradient
// functions land in the global registry that every copy of core reads. Imported for this side effect
// by backend.ts.
import { require as tsxRequire } from 'tsx/cjs/api';

tsxRequire('@tensorflow/tfjs-core/dist/register_all_gradients', import.meta.url);
