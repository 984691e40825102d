// The browser face verifier: loads an attfc model with TensorFlow.js (WebGL, else WASM), prepares each
// image exactly as loadEmbedder() does in Node (same crop/resize/normalisation module), embeds it,
// and compares the two embeddings with the threshold recorded in the model's metadata.
import { normalizeRgb, squareCropResize } from './attfc/faceCrop.js';

const tf = window.tf;
const $ = (id) => document.getElementById(id);

/** Page state; also read by the automated browser test. */
const state = { backend: null, model: null, inputSize: 0, threshold: null, files: { a: null, b: null }, faces: { a: null, b: null }, result: null };
window.attfcVerifier = state;

/** WebGL first, then WASM (?backend=webgl or ?backend=wasm forces one). Returns a line saying what runs. */
async function pickBackend() {
  tf.wasm.setWasmPaths(new URL('tfjs/', document.baseURI).href);
  const forced = new URLSearchParams(location.search).get('backend');
  const order = forced ? [forced] : ['webgl', 'wasm'];
  const skipped = [];
  for (const name of order) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        state.backend = name;
        let detail = '';
        if (name === 'webgl') detail = tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED') ? ' (float32)' : ' (float16 textures: similarities are approximate)';
        if (name === 'wasm') detail = ` (${tf.env().getBool('WASM_HAS_SIMD_SUPPORT') ? 'SIMD' : 'no SIMD'}, ${tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') ? 'threads' : 'one thread'})`;
        return `Backend: ${name}${detail}${skipped.length ? ` — ${skipped.join('; ')}` : ''}`;
      }
      skipped.push(`${name} is not available here`);
    } catch (e) {
      skipped.push(`${name} failed: ${e.message}`);
    }
  }
  throw new Error(`no TensorFlow.js backend could start (${skipped.join('; ')})`);
}

/** Takes a loaded layers model as the current one and shows what its metadata says. */
function useModel(model, source) {
  state.model?.dispose();
  state.model = model;
  const meta = model.getUserDefinedMetadata() ?? {};
  const shape = model.inputs[0].shape;
  state.inputSize = Number(meta.inputSize ?? shape[1]);
  const v = meta.verification;
  state.threshold = v && typeof v.threshold === 'number' ? v.threshold : null;
  const parts = [`Model: ${source}`, meta.backbone ? `${meta.backbone}` : null, `input ${state.inputSize}x${state.inputSize}`];
  if (meta.steps !== undefined) parts.push(`${meta.steps} steps`);
  if (meta.trainedOn) parts.push(`trained on ${meta.trainedOn}`);
  let text = parts.filter(Boolean).join(', ') + '. ';
  text += state.threshold === null
    ? 'No verification threshold recorded (run attfc eval on it): similarities only.'
    : `Same face if cosine similarity ≥ ${state.threshold.toFixed(5)} (chosen on ${v.set}, ${v.pairs} pairs, accuracy ${Number(v.accuracy).toFixed(4)} there).`;
  if (meta.normalization && meta.normalization !== '(x/255-0.5)/0.5') text += ` Warning: the model expects ${meta.normalization}; this page feeds (x/255-0.5)/0.5.`;
  $('model').textContent = text;
  for (const k of ['a', 'b']) if (state.files[k]) prepare(k, state.files[k]);
}

/** Decoded RGBA pixels of an image file at its own size (colour-managed to sRGB, like sharp). */
async function decode(file) {
  const bitmap = await createImageBitmap(file, { premultiplyAlpha: 'none', imageOrientation: 'from-image' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true, colorSpace: 'srgb' });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return ctx.getImageData(0, 0, canvas.width, canvas.height, { colorSpace: 'srgb' });
}

/** L2-normalised embedding of size x size RGB bytes, computed like loadEmbedder().embed(). */
async function embed(rgb) {
  const n = state.inputSize;
  const x = tf.tensor4d(normalizeRgb(rgb), [1, n, n, 3]);
  const e = tf.tidy(() => {
    const y = state.model.predict(x);
    return tf.div(y, tf.maximum(tf.norm(y, 'euclidean', 1, true), 1e-12));
  });
  const data = await e.data();
  tf.dispose([x, e]);
  return Float32Array.from(data);
}

/** Decodes, crops, shows and embeds the image in slot k, then compares when both slots are filled. */
async function prepare(k, file) {
  const info = $(`info-${k}`);
  info.classList.remove('error');
  state.files[k] = file;
  state.faces[k] = null;
  state.result = null;
  if (!state.model) {
    info.textContent = `${file.name}: waiting for the model…`;
    return;
  }
  info.textContent = `${file.name}: decoding…`;
  try {
    const img = await decode(file);
    const n = state.inputSize;
    const rgb = squareCropResize(img.data, img.width, img.height, 4, n);
    const canvas = $(`crop-${k}`);
    canvas.width = n;
    canvas.height = n;
    const shown = new ImageData(n, n);
    for (let i = 0; i < n * n; i++) shown.data.set([rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], 255], 4 * i);
    canvas.getContext('2d').putImageData(shown, 0, 0);
    let transparent = false;
    for (let i = 3; i < img.data.length; i += 4) if (img.data[i] !== 255) { transparent = true; break; }
    const side = Math.min(img.width, img.height);
    const how = img.width === n && img.height === n ? 'used as it is' : `centre ${side}x${side} resized to ${n}x${n}`;
    const embedding = await embed(rgb);
    if (state.files[k] !== file) return; // another image replaced this one meanwhile
    state.faces[k] = { file, name: file.name, width: img.width, height: img.height, crop: Array.from(rgb), embedding: Array.from(embedding) };
    info.textContent = `${file.name}: ${img.width}x${img.height}, ${how} (shown)` +
      (transparent ? '. Note: it has transparent pixels; this page cannot read the colour under them exactly as Node does.' : '');
  } catch (e) {
    state.faces[k] = null;
    info.classList.add('error');
    info.textContent = `${file.name}: cannot use this image (${e.message})`;
  }
  compare();
}

function compare() {
  const { a, b } = state.faces;
  const box = $('result');
  box.className = '';
  if (!a || !b) {
    box.textContent = 'Choose two faces.';
    return;
  }
  let s = 0;
  for (let i = 0; i < a.embedding.length; i++) s += a.embedding[i] * b.embedding[i];
  const same = state.threshold === null ? null : s >= state.threshold;
  state.result = { a: a.name, b: b.name, similarity: s, same };
  box.textContent = `Cosine similarity ${s.toFixed(5)}: ` +
    (same === null ? 'no threshold recorded with this model.' : `${same ? 'same person' : 'different people'} (threshold ${state.threshold.toFixed(5)}).`);
  if (same !== null) box.className = same ? 'same' : 'different';
}

function wireSlot(k) {
  const slot = $(`slot-${k}`);
  $(`file-${k}`).addEventListener('change', (e) => e.target.files[0] && prepare(k, e.target.files[0]));
  slot.addEventListener('dragover', (e) => { e.preventDefault(); slot.classList.add('over'); });
  slot.addEventListener('dragleave', () => slot.classList.remove('over'));
  slot.addEventListener('drop', (e) => {
    e.preventDefault();
    slot.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (file) prepare(k, file);
  });
}

async function main() {
  wireSlot('a');
  wireSlot('b');
  try {
    $('backend').textContent = await pickBackend();
    useModel(await tf.loadLayersModel('model/model.json'), 'served by attfc serve');
  } catch (e) {
    $('model').classList.add('error');
    $('model').textContent = `Cannot start: ${e.message}`;
  }
  $('model-files').addEventListener('change', async (e) => {
    const files = [...e.target.files];
    const json = files.find((f) => f.name.endsWith('.json'));
    try {
      if (!json) throw new Error('select the model.json too');
      useModel(await tf.loadLayersModel(tf.io.browserFiles([json, ...files.filter((f) => f !== json)])), json.name);
    } catch (err) {
      $('model').classList.add('error');
      $('model').textContent = `Cannot load that model: ${err.message}`;
    }
  });
  state.ready = true;
}

main();
