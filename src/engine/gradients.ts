// Registers tfjs-core's gradient functions, which tf.grad and tf.variableGrads need. Core's Node build
// (tf-core.node.js, what `import '@tensorflow/tfjs-core'` loads) carries none; they ship only in core's
// ES-module tree as dist/register_all_gradients.js, which plain Node cannot load as it is: the package
// does not declare its .js files as ES modules and their imports have no file extensions. Two module
// hooks, scoped to that tree, supply both (what bundlers do), so the registration needs no tsx and no
// build step. Its functions go into the global gradient registry every copy of core reads. Loading the
// tree takes about a second, so initEngine() does it once per thread, not at import.
import { register } from 'node:module';

let registered: Promise<void> | null = null;

/** The module hooks, as source: resolve extensionless relative imports, load the tree as ES modules. */
function hooksSource(root: string): string {
  return `
const ROOT = ${JSON.stringify(root)};
const EXTENSION = /\\.[cm]?js$/;
export async function resolve(specifier, context, next) {
  if (context.parentURL && context.parentURL.startsWith(ROOT) && specifier.startsWith('.') && !EXTENSION.test(specifier)) {
    try {
      return await next(specifier + '.js', context);
    } catch {
      return next(specifier + '/index.js', context);
    }
  }
  return next(specifier, context);
}
export async function load(url, context, next) {
  // the CommonJS bundles (*.node.js) stay what they are
  if (url.startsWith(ROOT) && !url.endsWith('.node.js')) return next(url, { ...context, format: 'module' });
  return next(url, context);
}`;
}

/** Registers every tfjs-core gradient (idempotent; call before the first tf.grad). */
export function registerAllGradients(): Promise<void> {
  registered ??= (async () => {
    const root = new URL('.', import.meta.resolve('@tensorflow/tfjs-core')).href;
    register(`data:text/javascript,${encodeURIComponent(hooksSource(root))}`);
    await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  })();
  return registered;
}
