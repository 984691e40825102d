// Draws one face photo as SVG: background, shoulders, ears, hair, face, facial features, marks,
// accessories and occluders, under the image's pose. x is measured from the face mid-line; a yaw-like
// turn shifts features by their depth and squeezes the far half of the face.
import type { FaceParams, Mark, Rgb } from './identity.js';
import type { ImageVariation } from './variation.js';
import { hex, num, smoothClosedPath, symmetricOutline, type Point } from './geometry.js';

/** Depth of each facial layer (how far it moves with yaw, in canvas units per unit of yaw). */
const DEPTH = { outline: 1, ears: -2, eyes: 5, brows: 5.5, nose: 10, mouth: 6, chin: 4 } as const;

interface Ctx {
  face: FaceParams;
  v: ImageVariation;
  /** Projected x of a point at mid-line offset x and the given depth. */
  X: (x: number, depth: number) => number;
  /** Appended to element ids so several faces can share one SVG document. */
  suffix: string;
  defs: string[];
  body: string[];
}

function projector(yaw: number) {
  const a = Math.abs(yaw);
  return (x: number, depth: number) => x * (x * yaw > 0 ? 1 - 0.32 * a : 1 - 0.05 * a) + yaw * depth;
}

function background(ctx: Ctx): void {
  const { background: bg } = ctx.v;
  // a flat wall, a second surface beyond a straight edge, and out-of-focus blobs; no SVG gradients, whose
  // rasterisation depends on the tile offset (the atlas renderer needs offset-independent pixels)
  const rad = (bg.angle * Math.PI) / 180;
  const nx = Math.cos(rad);
  const ny = Math.sin(rad);
  const ox = 56 + nx * bg.edge;
  const oy = 56 + ny * bg.edge;
  const far = 200;
  const corners: Point[] = [
    [ox - ny * far, oy + nx * far],
    [ox - ny * far + nx * far, oy + nx * far + ny * far],
    [ox + ny * far + nx * far, oy - nx * far + ny * far],
    [ox + ny * far, oy - nx * far],
  ];
  ctx.body.push(`<rect width="112" height="112" fill="${hex(bg.colorA)}"/>`);
  ctx.body.push(`<path d="M${corners.map(([x, y]) => `${num(x)} ${num(y)}`).join('L')}Z" fill="${hex(bg.colorB)}"/>`);
  for (const b of bg.blobs) {
    ctx.body.push(`<ellipse cx="${num(b.x)}" cy="${num(b.y)}" rx="${num(b.rx)}" ry="${num(b.ry)}" fill="${hex(b.color)}" fill-opacity="${num(b.opacity)}"/>`);
  }
}

function shouldersAndNeck(ctx: Ctx): void {
  const { face, v, X } = ctx;
  const neckHalf = face.shape.jawHalfWidth * 0.78;
  ctx.body.push(`<ellipse cx="${num(X(0, 0))}" cy="146" rx="78" ry="36" fill="${hex(v.clothing)}"/>`);
  ctx.body.push(
    `<rect x="${num(X(-neckHalf, 0))}" y="${num(face.mouth.y)}" width="${num(2 * neckHalf)}" height="40" fill="${hex(face.skin.color, 0.78)}"/>`,
  );
}

function ears(ctx: Ctx): void {
  const { face, X } = ctx;
  const y = face.eyes.y + face.ears.y + face.ears.size * 0.35;
  for (const side of [-1, 1]) {
    const x = X(side * (face.shape.cheekHalfWidth - 1 + face.ears.protrusion * 0.4), DEPTH.ears);
    const rx = 3 + face.ears.protrusion * 0.6;
    const ry = face.ears.size / 2;
    ctx.body.push(`<ellipse cx="${num(x)}" cy="${num(y)}" rx="${num(rx)}" ry="${num(ry)}" fill="${hex(face.skin.color, 0.9)}"/>`);
    ctx.body.push(
      `<path d="M${num(x)} ${num(y - ry * 0.6)}Q${num(x + side * rx * 0.7)} ${num(y)} ${num(x)} ${num(y + ry * 0.5)}" stroke="${hex(face.skin.color, 0.7)}" stroke-width="0.8" fill="none"/>`,
    );
    if (face.accessories.earrings) {
      ctx.body.push(`<circle cx="${num(x)}" cy="${num(y + ry + 1)}" r="1.3" fill="${hex(face.accessories.earrings.color)}"/>`);
    }
  }
}

function backHair(ctx: Ctx): void {
  const { face, v, X } = ctx;
  const h = face.hair;
  if (h.style !== 'long') return;
  const vol = h.volume + v.hairJitter;
  const bottom = 78 + h.length * 40;
  const w = face.shape.cheekHalfWidth + vol + 3;
  const pts = symmetricOutline(
    [
      [0, face.shape.top - vol],
      [face.shape.templeHalfWidth + vol, face.shape.top + 14],
      [w, face.eyes.y + 8],
      [w + 3 * h.length, bottom - 6],
      [w * 0.7, bottom],
      [0, bottom - 4],
    ],
    (x) => X(x, DEPTH.outline * 0.5),
  );
  ctx.body.push(`<path d="${smoothClosedPath(pts)}" fill="${hex(h.color, 0.85)}"/>`);
}

function faceShape(ctx: Ctx): void {
  const { face, X } = ctx;
  const s = face.shape;
  const pts = symmetricOutline(
    [
      [0, s.top],
      [s.templeHalfWidth * 0.72, s.top + 5],
      [s.templeHalfWidth, face.eyes.y - 12],
      [s.cheekHalfWidth, face.eyes.y + 6],
      [s.jawHalfWidth, face.mouth.y - 2],
      [s.chinHalfWidth, s.chinY - 4],
      [0, s.chinY],
    ],
    (x, y) => X(x, y > face.mouth.y ? DEPTH.chin : DEPTH.outline),
  );
  // volume: a darker rim (the full outline) under a slightly smaller face, and a forehead highlight;
  // flat fills only, as clips and wide strokes cost more rasteriser time than the whole rest
  const cy = (s.top + s.chinY) / 2;
  const inner = pts.map(([x, y]) => [X(0, DEPTH.eyes) + (x - X(0, DEPTH.eyes)) * 0.9, cy + (y - cy) * 0.95] as Point);
  const sh = face.skin.shading;
  ctx.body.push(`<path d="${smoothClosedPath(pts)}" fill="${hex(face.skin.color, 1 - sh)}"/>`);
  ctx.body.push(`<path d="${smoothClosedPath(inner)}" fill="${hex(face.skin.color)}"/>`);
  ctx.body.push(
    `<ellipse cx="${num(X(-3, DEPTH.eyes))}" cy="${num(face.eyes.y - 12)}" rx="${num(s.templeHalfWidth * 0.5)}" ry="10" fill="#ffffff" fill-opacity="${num(sh * 0.4)}"/>`,
  );
}

function lowerFaceRegion(ctx: Ctx, startY: number, inset: number): string {
  const { face, X } = ctx;
  const s = face.shape;
  const pts = symmetricOutline(
    [
      [0, face.mouth.y - face.mouth.upperLip - 3],
      [face.mouth.width * 0.45, face.mouth.y - 4],
      [s.cheekHalfWidth - inset, startY],
      [s.jawHalfWidth - inset * 0.5, face.mouth.y],
      [s.chinHalfWidth, s.chinY - 4],
      [0, s.chinY + 0.5],
    ],
    (x, y) => X(x, y > face.mouth.y ? DEPTH.chin : DEPTH.mouth),
  );
  return smoothClosedPath(pts);
}

function facialHair(ctx: Ctx): void {
  const { face, X } = ctx;
  const fh = face.facialHair;
  const c = hex(face.hair.color, 0.9);
  const m = face.mouth;
  const moustache = () =>
    `<path d="M${num(X(-m.width * 0.55, DEPTH.mouth))} ${num(m.y - 0.5)}Q${num(X(0, DEPTH.mouth))} ${num(m.y - m.upperLip - 6)} ${num(X(m.width * 0.55, DEPTH.mouth))} ${num(m.y - 0.5)}Q${num(X(0, DEPTH.mouth))} ${num(m.y - m.upperLip - 1)} ${num(X(-m.width * 0.55, DEPTH.mouth))} ${num(m.y - 0.5)}Z" fill="${c}" fill-opacity="${num(0.9 * fh.density)}"/>`;
  switch (fh.style) {
    case 'none':
      return;
    case 'stubble':
      ctx.body.push(`<path d="${lowerFaceRegion(ctx, face.mouth.y - 10, 2)}" fill="${c}" fill-opacity="${num(0.28 * fh.density)}"/>`);
      return;
    case 'beard':
      ctx.body.push(`<path d="${lowerFaceRegion(ctx, face.eyes.y + 14, 0)}" fill="${c}" fill-opacity="${num(0.88 * fh.density)}"/>`);
      ctx.body.push(moustache());
      return;
    case 'moustache':
      ctx.body.push(moustache());
      return;
    case 'goatee':
      ctx.body.push(
        `<ellipse cx="${num(X(0, DEPTH.chin))}" cy="${num((m.y + face.shape.chinY) / 2 + 2)}" rx="${num(m.width * 0.42)}" ry="${num((face.shape.chinY - m.y) / 2)}" fill="${c}" fill-opacity="${num(0.85 * fh.density)}"/>`,
      );
      ctx.body.push(moustache());
  }
}

function mark(ctx: Ctx, mk: Mark, i: number): void {
  const { face, X } = ctx;
  const x = X(mk.x * face.shape.cheekHalfWidth * 0.8, DEPTH.eyes);
  const y = mk.y;
  const dark = hex(face.skin.color, 1 - mk.darkness * 0.6);
  switch (mk.kind) {
    case 'mole':
      ctx.body.push(`<circle cx="${num(x)}" cy="${num(y)}" r="${num(0.7 * mk.size)}" fill="${dark}"/>`);
      return;
    case 'freckles': {
      let dots = '';
      for (let j = 0; j < 9; j++) {
        const a = j * 2.39996 + i;
        const r = 1.4 * Math.sqrt(j + 1) * mk.size;
        dots += `<circle cx="${num(x + r * Math.cos(a))}" cy="${num(y + r * Math.sin(a) * 0.7)}" r="0.45"/>`;
      }
      ctx.body.push(`<g fill="${dark}" fill-opacity="${num(0.55 * mk.darkness)}">${dots}</g>`);
      return;
    }
    case 'scar': {
      const a = (mk.angle * Math.PI) / 180;
      const l = 3.5 * mk.size;
      ctx.body.push(
        `<path d="M${num(x - l * Math.cos(a))} ${num(y - l * Math.sin(a))}L${num(x + l * Math.cos(a))} ${num(y + l * Math.sin(a))}" stroke="${hex([230, 150, 150])}" stroke-opacity="${num(0.35 + 0.4 * mk.darkness)}" stroke-width="0.9"/>`,
      );
      return;
    }
    case 'patch':
      ctx.body.push(
        `<ellipse cx="${num(x)}" cy="${num(y)}" rx="${num(3 * mk.size)}" ry="${num(2 * mk.size)}" transform="rotate(${num(mk.angle)} ${num(x)} ${num(y)})" fill="${hex([150, 70, 60])}" fill-opacity="${num(0.32 * mk.darkness)}"/>`,
      );
  }
}

function eyes(ctx: Ctx): void {
  const { face, v, X } = ctx;
  const e = face.eyes;
  const open = Math.max(0, 1 - v.expression.eyeClosure);
  for (const side of [-1, 1]) {
    const inner = X(side * (e.halfSpacing - e.width / 2), DEPTH.eyes);
    const outer = X(side * (e.halfSpacing + e.width / 2), DEPTH.eyes);
    const cx = (inner + outer) / 2;
    const w = Math.abs(outer - inner);
    const y = e.y;
    const up = e.height * open * 1.25;
    const down = e.height * open * 0.85;
    const rot = `rotate(${num(-side * e.tilt)} ${num(cx)} ${num(y)})`;
    const l = cx - w / 2;
    const r = cx + w / 2;
    const lid = hex(face.skin.color, 1 - e.lidDarkness * 0.8);
    if (open > 0.12) {
      const almond = `M${num(l)} ${num(y)}Q${num(cx)} ${num(y - up)} ${num(r)} ${num(y)}Q${num(cx)} ${num(y + down)} ${num(l)} ${num(y)}Z`;
      const id = `eye${side > 0 ? 'R' : 'L'}${ctx.suffix}`;
      ctx.defs.push(`<clipPath id="${id}"><path d="${almond}" transform="${rot}"/></clipPath>`);
      const ir = e.irisSize * e.width;
      const gaze = v.pose.yaw * 1.2;
      ctx.body.push(
        `<g clip-path="url(#${id})"><path d="${almond}" transform="${rot}" fill="#ecebe6"/>` +
          `<circle cx="${num(cx + gaze)}" cy="${num(y)}" r="${num(ir)}" fill="${hex(e.irisColor)}"/>` +
          `<circle cx="${num(cx + gaze)}" cy="${num(y)}" r="${num(ir * 0.45)}" fill="#0b0b0b"/></g>`,
      );
      ctx.body.push(
        `<path d="M${num(l)} ${num(y)}Q${num(cx)} ${num(y - up)} ${num(r)} ${num(y)}" transform="${rot}" stroke="${lid}" stroke-width="1.1" fill="none"/>`,
      );
    } else {
      ctx.body.push(
        `<path d="M${num(l)} ${num(y)}Q${num(cx)} ${num(y + 1.2)} ${num(r)} ${num(y)}" transform="${rot}" stroke="${lid}" stroke-width="1.1" fill="none"/>`,
      );
    }
  }
}

function brows(ctx: Ctx): void {
  const { face, v, X } = ctx;
  const b = face.brows;
  const raise = v.expression.browRaise;
  const y = face.eyes.y - b.gap - raise * 2.5;
  for (const side of [-1, 1]) {
    const centre = side * (face.eyes.halfSpacing + 1);
    const innerX = X(centre - (side * b.length) / 2, DEPTH.brows);
    const outerX = X(centre + (side * b.length) / 2, DEPTH.brows);
    const innerY = y + b.angle * 0.12 + (raise < 0 ? -raise * 1.8 : 0);
    const outerY = y - b.angle * 0.12;
    const midX = (innerX + outerX) / 2;
    const midY = (innerY + outerY) / 2 - b.arch - raise;
    ctx.body.push(
      `<path d="M${num(innerX)} ${num(innerY)}Q${num(midX)} ${num(midY)} ${num(outerX)} ${num(outerY)}" stroke="${hex(b.color)}" stroke-width="${num(b.thickness)}" stroke-linecap="round" fill="none"/>`,
    );
  }
}

function nose(ctx: Ctx): void {
  const { face, X } = ctx;
  const n = face.nose;
  const top = face.eyes.y + 2;
  const tip = face.eyes.y + n.length;
  const line = hex(face.skin.color, 0.72);
  const bridge = n.bridge * 2.2;
  ctx.body.push(
    `<path d="M${num(X(-bridge, 3))} ${num(top)}Q${num(X(-bridge, 6))} ${num(tip - 6)} ${num(X(-n.width * 0.32, DEPTH.nose * 0.8))} ${num(tip - 2)}M${num(X(bridge, 3))} ${num(top)}Q${num(X(bridge, 6))} ${num(tip - 6)} ${num(X(n.width * 0.32, DEPTH.nose * 0.8))} ${num(tip - 2)}" stroke="${line}" stroke-opacity="0.45" stroke-width="0.8" fill="none"/>`,
  );
  ctx.body.push(`<circle cx="${num(X(0, DEPTH.nose))}" cy="${num(tip - 1)}" r="${num(n.tipSize)}" fill="${hex(face.skin.color, 1.06)}"/>`);
  ctx.body.push(
    `<path d="M${num(X(-n.width / 2, DEPTH.nose * 0.7))} ${num(tip - 1.5)}Q${num(X(0, DEPTH.nose))} ${num(tip + n.tipSize + 1)} ${num(X(n.width / 2, DEPTH.nose * 0.7))} ${num(tip - 1.5)}" stroke="${line}" stroke-width="1" fill="none"/>`,
  );
  for (const side of [-1, 1]) {
    ctx.body.push(
      `<ellipse cx="${num(X(side * n.width * 0.26, DEPTH.nose * 0.85))}" cy="${num(tip + 0.6)}" rx="1.5" ry="0.9" fill="${hex(face.skin.color, 0.42)}"/>`,
    );
  }
}

function mouth(ctx: Ctx): void {
  const { face, v, X } = ctx;
  const m = face.mouth;
  const smile = v.expression.smile;
  const open = v.expression.mouthOpen * 6;
  const w = m.width * (1 + 0.12 * smile);
  const cornerY = m.y - smile * 3;
  const midY = m.y + smile * 1.2;
  const x = (dx: number) => num(X(dx, DEPTH.mouth));
  const L = `${x(-w / 2)} ${num(cornerY)}`;
  const R = `${x(w / 2)} ${num(cornerY)}`;
  const upperInner = midY - open * 0.25;
  const lowerInner = midY + open;
  if (open > 0.3) {
    ctx.body.push(`<path d="M${L}Q${x(0)} ${num(upperInner * 2 - cornerY)} ${R}Q${x(0)} ${num(lowerInner * 2 - cornerY)} ${L}Z" fill="#3a1414"/>`);
    if (open > 1.2) {
      ctx.body.push(`<rect x="${x(-w * 0.28)}" y="${num(upperInner - 0.3)}" width="${num(Math.abs(X(w * 0.28, DEPTH.mouth) - X(-w * 0.28, DEPTH.mouth)))}" height="${num(open * 0.35)}" rx="0.8" fill="#efeee8"/>`);
    }
  }
  const lip = hex(m.color);
  ctx.body.push(
    `<path d="M${L}Q${x(-w * 0.2)} ${num(m.y - m.upperLip - 0.5)} ${x(-w * 0.1)} ${num(m.y - m.upperLip)}Q${x(0)} ${num(m.y - m.upperLip * 0.55)} ${x(w * 0.1)} ${num(m.y - m.upperLip)}Q${x(w * 0.2)} ${num(m.y - m.upperLip - 0.5)} ${R}Q${x(0)} ${num(upperInner * 2 - cornerY)} ${L}Z" fill="${lip}"/>`,
  );
  ctx.body.push(
    `<path d="M${L}Q${x(0)} ${num(lowerInner * 2 - cornerY)} ${R}Q${x(0)} ${num((lowerInner + m.lowerLip) * 2 - cornerY)} ${L}Z" fill="${hex(m.color, 1.06)}"/>`,
  );
  if (open <= 0.3) {
    ctx.body.push(`<path d="M${L}Q${x(0)} ${num(midY * 2 - cornerY)} ${R}" stroke="${hex(m.color, 0.55)}" stroke-width="0.8" fill="none"/>`);
  }
}

function frontHair(ctx: Ctx): void {
  const { face, v, X } = ctx;
  const h = face.hair;
  if (h.style === 'bald') return;
  const vol = h.style === 'buzz' ? 0.8 : Math.max(0.5, h.volume + v.hairJitter);
  const s = face.shape;
  const tw = s.templeHalfWidth;
  const line = h.hairlineY + v.hairJitter * 0.8;
  const side = face.eyes.y - 10;
  const recede = h.style === 'receding' ? 7 : 0;
  const tilt = h.style === 'sidePart' ? h.part * 5 : h.part * 1.5;
  const pts: Point[] = [
    [X(-(tw + 1.5), DEPTH.outline), side],
    [X(-(tw + vol * 0.6), DEPTH.outline), s.top + 10],
    [X(-tw * 0.62, DEPTH.outline), s.top - vol * 0.85],
    [X(0, DEPTH.outline), s.top - vol],
    [X(tw * 0.62, DEPTH.outline), s.top - vol * 0.85],
    [X(tw + vol * 0.6, DEPTH.outline), s.top + 10],
    [X(tw + 1.5, DEPTH.outline), side],
    [X(tw * 0.88, DEPTH.outline), line + 6 + tilt * 0.5],
    [X(tw * 0.45, DEPTH.eyes * 0.3), line - recede + tilt * 0.5],
    [X(0, DEPTH.eyes * 0.3), line - (recede ? 2 : 0)],
    [X(-tw * 0.45, DEPTH.eyes * 0.3), line - recede - tilt * 0.5],
    [X(-tw * 0.88, DEPTH.outline), line + 6 - tilt * 0.5],
  ];
  const opacity = h.style === 'buzz' ? 0.62 : 1;
  ctx.body.push(`<path d="${smoothClosedPath(pts)}" fill="${hex(h.color)}" fill-opacity="${opacity}"/>`);
  if (h.style === 'curly') {
    let curls = '';
    for (let i = 0; i < 9; i++) {
      const a = Math.PI * (0.05 + (0.9 * i) / 8);
      const cx = X(-Math.cos(a) * (tw + vol * 0.4), DEPTH.outline);
      const cy = s.top + 14 - Math.sin(a) * (14 + vol);
      curls += `<circle cx="${num(cx)}" cy="${num(cy)}" r="${num(3 + vol * 0.35)}"/>`;
    }
    ctx.body.push(`<g fill="${hex(h.color, 0.92)}">${curls}</g>`);
  }
  if (h.style === 'bun') {
    ctx.body.push(`<circle cx="${num(X(0, 0))}" cy="${num(s.top - vol - 5)}" r="${num(6 + vol * 0.3)}" fill="${hex(h.color, 0.9)}"/>`);
  }
  // a few strands give the hair some texture and a part line
  const strand = hex(h.color, h.color[0] > 120 ? 0.78 : 1.5);
  const px = X(h.part * tw * 0.5, DEPTH.outline);
  ctx.body.push(
    `<path d="M${num(px)} ${num(s.top - vol + 1)}Q${num(px + h.part * 6)} ${num((s.top + line) / 2)} ${num(px + h.part * 12)} ${num(line - 1)}" stroke="${strand}" stroke-opacity="0.5" stroke-width="0.8" fill="none"/>`,
  );
}

function lensPath(ctx: Ctx, side: number, scale: number, shape: string): { d: string; cx: number } {
  const { face, X } = ctx;
  const e = face.eyes;
  const cx = X(side * e.halfSpacing, DEPTH.eyes);
  const squeeze = Math.abs(X(side * (e.halfSpacing + 1), DEPTH.eyes) - X(side * e.halfSpacing, DEPTH.eyes));
  const rx = e.width * 0.72 * scale * squeeze;
  const ry = e.width * 0.55 * scale;
  const cy = e.y + 0.5;
  if (shape === 'round') return { d: `M${num(cx - rx)} ${num(cy)}A${num(rx)} ${num(ry)} 0 1 0 ${num(cx + rx)} ${num(cy)}A${num(rx)} ${num(ry)} 0 1 0 ${num(cx - rx)} ${num(cy)}Z`, cx };
  if (shape === 'rect') return { d: `M${num(cx - rx)} ${num(cy - ry * 0.8)}H${num(cx + rx)}V${num(cy + ry * 0.8)}H${num(cx - rx)}Z`, cx };
  return {
    d: `M${num(cx - rx)} ${num(cy - ry * 0.7)}H${num(cx + rx)}Q${num(cx + rx)} ${num(cy + ry * 1.1)} ${num(cx)} ${num(cy + ry)}Q${num(cx - rx)} ${num(cy + ry)} ${num(cx - rx)} ${num(cy - ry * 0.7)}Z`,
    cx,
  };
}

function glassesFrame(ctx: Ctx, scale: number, shape: string, frame: Rgb, width: number, lens: string): void {
  const { face, X } = ctx;
  const left = lensPath(ctx, -1, scale, shape);
  const right = lensPath(ctx, 1, scale, shape);
  const y = face.eyes.y - 1;
  const edge = face.shape.cheekHalfWidth;
  ctx.body.push(
    `<g stroke="${hex(frame)}" stroke-width="${num(width)}" fill="none">` +
      `<path d="${left.d}" ${lens}/><path d="${right.d}" ${lens}/>` +
      `<path d="M${num(left.cx + 4)} ${num(y)}Q${num(X(0, DEPTH.nose))} ${num(y - 2)} ${num(right.cx - 4)} ${num(y)}"/>` +
      `<path d="M${num(X(-edge * 0.82, DEPTH.eyes))} ${num(y)}L${num(X(-edge, DEPTH.ears))} ${num(y + 1)}M${num(X(edge * 0.82, DEPTH.eyes))} ${num(y)}L${num(X(edge, DEPTH.ears))} ${num(y + 1)}"/></g>`,
  );
}

function glasses(ctx: Ctx): void {
  const g = ctx.face.accessories.glasses;
  if (!g || !ctx.v.wearsGlasses || ctx.v.occlusion.kind === 'sunglasses') return;
  glassesFrame(ctx, 1, g.shape, g.color, g.thickness, 'fill="#dde8f0" fill-opacity="0.1"');
}

function hand(ctx: Ctx, color: Rgb, cx: number, cy: number, angle: number, scale: number): void {
  let fingers = '';
  for (let i = 0; i < 4; i++) fingers += `<rect x="${num(-11 + i * 5.6)}" y="-30" width="5.2" height="20" rx="2.6"/>`;
  ctx.body.push(
    `<g transform="translate(${num(cx)} ${num(cy)}) rotate(${num(angle)}) scale(${num(scale)})" fill="${hex(color)}" stroke="${hex(color, 0.7)}" stroke-width="0.6">` +
      `${fingers}<ellipse cx="0" cy="-2" rx="13" ry="15"/><ellipse cx="13" cy="2" rx="4" ry="10" transform="rotate(-30 13 2)"/></g>`,
  );
}

function occlusion(ctx: Ctx): void {
  const { face, v, X } = ctx;
  const o = v.occlusion;
  const s = face.shape;
  switch (o.kind) {
    case 'none':
      return;
    case 'sunglasses': {
      const shape = ['round', 'rect', 'aviator'][o.variant];
      glassesFrame(ctx, 1.05 + 0.5 * (o.severity - 0.7), shape, [20, 20, 22], 1.4, `fill="${hex(o.color)}" fill-opacity="0.94"`);
      return;
    }
    case 'mask': {
      const top = face.eyes.y + 7 + (1 - o.severity) * 14;
      const pts = symmetricOutline(
        [
          [0, top - 1.5],
          [s.cheekHalfWidth * 0.6, top],
          [s.cheekHalfWidth * 0.98, top + 5],
          [s.jawHalfWidth * 1.02, face.mouth.y + 4],
          [s.chinHalfWidth + 4, s.chinY - 2],
          [0, s.chinY + 2],
        ],
        (x) => X(x, DEPTH.mouth),
      );
      const pleat = hex(o.color, 0.82);
      ctx.body.push(`<path d="${smoothClosedPath(pts)}" fill="${hex(o.color)}"/>`);
      ctx.body.push(
        `<path d="M${num(X(-s.cheekHalfWidth * 0.7, DEPTH.mouth))} ${num(top + 9)}H${num(X(s.cheekHalfWidth * 0.7, DEPTH.mouth))}M${num(X(-s.cheekHalfWidth * 0.7, DEPTH.mouth))} ${num(top + 16)}H${num(X(s.cheekHalfWidth * 0.7, DEPTH.mouth))}" stroke="${pleat}" stroke-width="0.8"/>`,
      );
      return;
    }
    case 'hand': {
      const sideSign = o.x < 0 ? -1 : 1;
      if (o.severity <= 0.25) {
        hand(ctx, o.color, X(sideSign * (s.jawHalfWidth + 6), DEPTH.chin), s.chinY + 2, sideSign * 20 + o.angle * 0.3, 0.7);
        return;
      }
      const targets: Point[] = [
        [o.x * 6, face.mouth.y + 6],
        [sideSign * face.eyes.halfSpacing, face.eyes.y + 8],
        [sideSign * s.cheekHalfWidth * 0.45, face.eyes.y + 20],
      ];
      const [tx, ty] = targets[o.variant];
      hand(ctx, o.color, X(tx, DEPTH.nose) + o.y * 3, ty, o.angle, 0.8 + 0.55 * o.severity);
      return;
    }
    case 'hat': {
      const w = s.templeHalfWidth + face.hair.volume + 3;
      const band = face.hair.hairlineY - 4 + o.severity * 20;
      const top = s.top - face.hair.volume - 4;
      ctx.body.push(
        `<path d="M${num(X(-w, DEPTH.outline))} ${num(band)}C${num(X(-w, DEPTH.outline))} ${num(top - 4)} ${num(X(w, DEPTH.outline))} ${num(top - 4)} ${num(X(w, DEPTH.outline))} ${num(band)}Z" fill="${hex(o.color)}"/>`,
      );
      ctx.body.push(`<rect x="${num(X(-w, DEPTH.outline))}" y="${num(band - 4)}" width="${num(2 * w)}" height="4.5" fill="${hex(o.color, 0.75)}"/>`);
    }
  }
}

/** The drawing of one image in a 112-unit canvas, as an `<svg>` element placed at (x, y) pixels with the given size. */
export function faceSvgElement(face: FaceParams, v: ImageVariation, size: number, x = 0, y = 0, suffix = ''): string {
  const ctx: Ctx = { face, v, X: projector(v.pose.yaw), suffix, defs: [], body: [] };
  background(ctx);
  const bgEnd = ctx.body.length;
  shouldersAndNeck(ctx);
  ears(ctx);
  backHair(ctx);
  faceShape(ctx);
  facialHair(ctx);
  face.marks.forEach((mk, i) => mark(ctx, mk, i));
  eyes(ctx);
  brows(ctx);
  nose(ctx);
  mouth(ctx);
  frontHair(ctx);
  glasses(ctx);
  occlusion(ctx);
  const p = v.pose;
  const pose = `translate(${num(56 + p.shiftX)} ${num(58 + p.shiftY)}) rotate(${num(p.roll)}) scale(${num(p.scale)}) translate(0 -58)`;
  return (
    `<svg x="${x}" y="${y}" width="${size}" height="${size}" viewBox="0 0 112 112">` +
    `<defs>${ctx.defs.join('')}</defs>${ctx.body.slice(0, bgEnd).join('')}` +
    `<g transform="${pose}">${ctx.body.slice(bgEnd).join('')}</g></svg>`
  );
}

/** A standalone SVG document of one image, `size` x `size` pixels. */
export function faceSvg(face: FaceParams, v: ImageVariation, size: number): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">${faceSvgElement(face, v, size)}</svg>`;
}

/**
 * Several images tiled in one SVG document (`columns` per row), so one rasteriser call serves many
 * images: image i in tile `tiles[i]` (row-major; default i), no tile used twice. Each tile is clipped to
 * its own square, so what is drawn in one never reaches another; but the rasteriser adds the tile's
 * offset in floating point, so an edge pixel can come out one level apart at another tile position
 * (rarely: about one image in a hundred at 32x32). A tile's pixels depend on its position and its own
 * image only; tile 0 is the standalone rendering.
 */
export function atlasSvg(images: readonly { face: FaceParams; v: ImageVariation }[], size: number, columns: number, tiles?: readonly number[]): string {
  const at = (i: number) => tiles?.[i] ?? i;
  const rows = Math.max(...images.map((_, i) => Math.floor(at(i) / columns))) + 1;
  const parts = images.map(({ face, v }, i) => faceSvgElement(face, v, size, (at(i) % columns) * size, Math.floor(at(i) / columns) * size, `_${at(i)}`));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${columns * size}" height="${rows * size}">${parts.join('')}</svg>`;
}
