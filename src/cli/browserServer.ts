// A local HTTP server for the browser face verifier (examples/browser): the page, the compiled modules
// it shares with Node (pixel preparation, face detection, landmarks and alignment), TensorFlow.js's
// browser bundles and the face models from node_modules, and one exported model. Static files only,
// GET/HEAD only, nothing outside those places.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AttfcError } from '../errors.js';
import { FACE_MODEL_ALL_FILES, faceModelDir } from '../face/modelFiles.js';

const require = createRequire(import.meta.url);

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** TensorFlow.js browser bundles, served under /tfjs/ (each backend package pins the same 4.22 release). */
const TFJS_FILES: Record<string, string> = {
  'tf-core.min.js': '@tensorflow/tfjs-core/dist/tf-core.min.js',
  'tf-layers.min.js': '@tensorflow/tfjs-layers/dist/tf-layers.min.js',
  'tf-converter.min.js': '@tensorflow/tfjs-converter/dist/tf-converter.min.js',
  'tf-backend-webgl.min.js': '@tensorflow/tfjs-backend-webgl/dist/tf-backend-webgl.min.js',
  'tf-backend-wasm.min.js': '@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js',
  'tfjs-backend-wasm.wasm': '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm': '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm': '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm',
};

/** The page's folder: examples/browser at the package root (from src/cli or dist/cli alike). */
export function browserPageDir(): string {
  return fileURLToPath(new URL('../../examples/browser/', import.meta.url));
}

/**
 * The compiled modules the page imports, by their path under /attfc/ (dist/ holds them; from the
 * sources, the built copy). They import nothing but each other, so they run in a browser as they are.
 */
export const PAGE_MODULES: Record<string, string> = {
  'faceCrop.js': 'eval/faceCrop.js',
  'errors.js': 'errors.js',
  'face/align.js': 'face/align.js',
  'face/blazeface.js': 'face/blazeface.js',
  'face/facemesh.js': 'face/facemesh.js',
  'face/pipeline.js': 'face/pipeline.js',
};

function pageModules(): Record<string, string> {
  const dist = import.meta.url.endsWith('.ts') ? new URL('../../dist/', import.meta.url) : new URL('../', import.meta.url);
  return Object.fromEntries(
    Object.entries(PAGE_MODULES).map(([served, built]) => {
      const file = fileURLToPath(new URL(built, dist));
      if (!existsSync(file)) throw new AttfcError(`${file} is missing: run \`npm run build\` in the attfc folder first`);
      return [served, file];
    }),
  );
}

/** Checks that `dir` holds an exported model and returns its metadata. */
export function readServedModel(dir: string): Record<string, unknown> {
  const jsonPath = path.join(dir, 'model.json');
  let json: { modelTopology?: unknown; weightsManifest?: unknown; userDefinedMetadata?: Record<string, unknown> };
  try {
    json = JSON.parse(readFileSync(jsonPath, 'utf8')) as typeof json;
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message.split('\n')[0];
    throw new AttfcError(`${jsonPath}: cannot read the model (${reason}); give the folder attfc train exported (npm start writes runs/demo/run/model)`);
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest))
    throw new AttfcError(`${jsonPath}: expected a TensorFlow.js layers model with "modelTopology" and "weightsManifest"`);
  return json.userDefinedMetadata ?? {};
}

export interface BrowserServer {
  /** Base URL, e.g. http://127.0.0.1:8080/ */
  url: string;
  close(): Promise<void>;
}

/** Serves the verifier page for the model in `modelDir` on host:port (port 0 picks a free one). */
export async function startBrowserServer(options: { modelDir: string; host?: string; port?: number }): Promise<BrowserServer> {
  const modelDir = path.resolve(options.modelDir);
  readServedModel(modelDir);
  const pageDir = browserPageDir();
  const modules = pageModules();
  const tfjs = Object.fromEntries(Object.entries(TFJS_FILES).map(([name, spec]) => [name, require.resolve(spec)]));
  const faceModels = Object.fromEntries(FACE_MODEL_ALL_FILES.map((name) => [name, path.join(faceModelDir(), name)]));

  // URL path -> file on disk, or null (404). Only plain names inside the served folders are accepted.
  const resolveFile = (urlPath: string): string | null => {
    const parts = urlPath.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts.some((p) => p === '..' || p === '.' || p.includes('/') || p.includes('\\') || p.includes('\0'))) return null;
    if (parts.length === 0) return path.join(pageDir, 'index.html');
    if (parts.length === 1) return path.join(pageDir, parts[0]);
    if (parts[0] === 'attfc') return modules[parts.slice(1).join('/')] ?? null;
    if (parts.length !== 2) return null;
    const [folder, name] = parts;
    if (folder === 'tfjs') return tfjs[name] ?? null;
    if (folder === 'face-models') return faceModels[name] ?? null;
    if (folder === 'model') return path.join(modelDir, name);
    return null;
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, text: string) => {
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : `${text}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'only GET and HEAD');
    let file: string | null;
    try {
      file = resolveFile(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      file = null; // a malformed %-escape
    }
    if (!file || !existsSync(file) || !statSync(file).isFile()) return send(404, 'not found');
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': statSync(file).size,
      'Cache-Control': 'no-cache',
      // Cross-origin isolation lets TensorFlow.js use its multithreaded WASM build (SharedArrayBuffer).
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file).pipe(res);
  };

  const server = createServer(handle);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? new AttfcError(`--port ${options.port}: the port is in use on ${host}; pick another (0 picks a free one)`) : e),
    );
    server.listen(options.port ?? 8080, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
