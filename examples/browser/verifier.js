// The browser face verifier: loads an attfc model with TensorFlow.js (WebGL, else WASM), finds the
// faces in each photo and aligns the largest (the same compiled detection, landmark and warp modules
// as `attfc align` in Node, on the same BlazeFace and FaceMesh models), or with alignment off prepares
// the image as a crop exactly as loadEmbedder() does; embeds it, and compares the two embeddings with
// the threshold recorded in the model's metadata.
import { normalizeRgb, squareCropResize } from './attfc/faceCrop.js';
import { detectFacesInPixels } from './attfc/face/pipeline.js';
import { alignRgb } from './attfc/face/align.js';

const tf = window.tf;
const $ = (id) => document.getElementById(id);

/** Page state; also read by the automated browser test. */
const state = { backend: null, model: null, inputSize: 0, threshold: null, align: true, faceModels: null, files: { a: null, b: null }, faces: { a: null, b: null }, result: null };
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

/** BlazeFace and FaceMesh as @vladmandic/human ships them (served by attfc serve from node_modules). */
async function loadFaceModels() {
  const [detector, mesh] = await Promise.all([tf.loadGraphModel('face-models/blazeface.json'), tf.loadGraphModel('face-models/facemesh.json')]);
  return { tf, detector, mesh };
}

/** Decoded RGBA pixels of an image file (or a webcam frame already decoded) at its own size (colour-managed to sRGB, like sharp). */
async function decode(file) {
  if (file.imageData) return file.imageData;
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

/** RGBA -> RGB bytes (alpha dropped, like sharp's removeAlpha). */
function toRgb(img) {
  const n = img.width * img.height;
  const rgb = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    rgb[3 * i] = img.data[4 * i];
    rgb[3 * i + 1] = img.data[4 * i + 1];
    rgb[3 * i + 2] = img.data[4 * i + 2];
  }
  return rgb;
}

/** Draws the photo with every face's box (the largest in green) and its five landmarks. */
function drawPhoto(k, img, faces, largest) {
  const canvas = $(`photo-${k}`);
  canvas.width = img.width;
  canvas.height = img.height;
  const ctx = canvas.getContext('2d');
  ctx.putImageData(img, 0, 0);
  const line = Math.max(1, Math.round(Math.max(img.width, img.height) / 300));
  for (const f of faces) {
    ctx.lineWidth = line;
    ctx.strokeStyle = f === largest ? '#1db954' : '#f2b01e';
    const [x, y, w, h] = f.box;
    ctx.strokeRect(x + 0.5, y + 0.5, w, h); // pixel-centre coordinates -> canvas edges
    f.landmarks5.forEach(([px, py], i) => {
      ctx.fillStyle = ['#e53935', '#1e88e5', '#fdd835', '#d81b60', '#00acc1'][i];
      ctx.beginPath();
      ctx.arc(px + 0.5, py + 0.5, 1.5 * line + 1, 0, 2 * Math.PI);
      ctx.fill();
    });
  }
}

function clearPhoto(k) {
  const canvas = $(`photo-${k}`);
  canvas.width = 1;
  canvas.height = 1;
}

/** The face with the largest box (as `attfc align` picks it). */
function largestFace(faces) {
  let best = null;
  for (const f of faces) if (!best || f.box[2] * f.box[3] > best.box[2] * best.box[3]) best = f;
  return best;
}

/** Decodes, finds and aligns (or crops), shows and embeds the image in slot k, then compares when both slots are filled. */
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
    let rgb;
    let how;
    let detections = null;
    if (state.align) {
      if (!state.faceModels) throw new Error('the face models are not loaded (see above); uncheck "Detect and align faces" to use crops');
      info.textContent = `${file.name}: finding faces…`;
      const pixels = { width: img.width, height: img.height, data: toRgb(img) };
      detections = await detectFacesInPixels(state.faceModels, pixels);
      const face = largestFace(detections);
      drawPhoto(k, img, detections, face);
      if (!face) throw new Error(`no face found in ${img.width}x${img.height}`);
      rgb = alignRgb(pixels.data, img.width, img.height, face.landmarks5.flat(), n);
      how = `${detections.length} face${detections.length === 1 ? '' : 's'} found; the largest (score ${face.score.toFixed(2)}) aligned to ${n}x${n}`;
    } else {
      clearPhoto(k);
      rgb = squareCropResize(img.data, img.width, img.height, 4, n);
      const side = Math.min(img.width, img.height);
      how = img.width === n && img.height === n ? 'used as it is' : `centre ${side}x${side} resized to ${n}x${n}`;
    }
    const canvas = $(`crop-${k}`);
    canvas.width = n;
    canvas.height = n;
    const shown = new ImageData(n, n);
    for (let i = 0; i < n * n; i++) shown.data.set([rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], 255], 4 * i);
    canvas.getContext('2d').putImageData(shown, 0, 0);
    let transparent = false;
    for (let i = 3; i < img.data.length; i += 4) if (img.data[i] !== 255) { transparent = true; break; }
    const embedding = await embed(rgb);
    if (state.files[k] !== file) return; // another image replaced this one meanwhile
    state.faces[k] = { file, name: file.name, width: img.width, height: img.height, aligned: state.align, detections, crop: Array.from(rgb), embedding: Array.from(embedding) };
    info.textContent = `${file.name}: ${img.width}x${img.height}, ${how} (shown)` +
      (transparent ? '. Note: it has transparent pixels; this page cannot read the colour under them exactly as Node does.' : '');
  } catch (e) {
    if (state.files[k] !== file) return;
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

/** The webcam in slot k (where the browser allows it: https or localhost, and the user agrees). */
function wireCamera(k) {
  const video = $(`video-${k}`);
  const snap = $(`snap-${k}`);
  $(`camera-${k}`).addEventListener('click', async () => {
    const info = $(`info-${k}`);
    try {
      if (!navigator.mediaDevices?.getUserMedia) throw new Error('this browser gives no camera to this page (it needs https or localhost)');
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
      video.hidden = false;
      snap.hidden = false;
      info.classList.remove('error');
      info.textContent = 'Webcam on: press "Take the photo".';
    } catch (e) {
      info.classList.add('error');
      info.textContent = `Webcam: ${e.message}`;
    }
  });
  snap.addEventListener('click', () => {
    const canvas = new OffscreenCanvas(video.videoWidth, video.videoHeight);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(video, 0, 0);
    const imageData = ctx.getImageData(0, 0, canvas.width, canvas.height);
    for (const t of video.srcObject?.getTracks() ?? []) t.stop();
    video.srcObject = null;
    video.hidden = true;
    snap.hidden = true;
    prepare(k, { name: `webcam ${new Date().toLocaleTimeString()}`, imageData });
  });
}

function wireSlot(k) {
  wireCamera(k);
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
  const alignBox = $('align');
  if (new URLSearchParams(location.search).get('align') === '0') alignBox.checked = false;
  state.align = alignBox.checked;
  alignBox.addEventListener('change', () => {
    state.align = alignBox.checked;
    for (const k of ['a', 'b']) if (state.files[k]) prepare(k, state.files[k]);
  });
  try {
    $('backend').textContent = await pickBackend();
    try {
      state.faceModels = await loadFaceModels();
      $('face-models').textContent = 'Face models loaded.';
    } catch (e) {
      $('face-models').classList.add('error');
      $('face-models').textContent = `Face models: cannot load (${e.message}).`;
    }
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
