/* edgewise explorer, part 2 of 3: drawing on canvases (axes, log scales, colour maps, the neuron diagram).
 * Colours and conventions follow edgewise.report (figures.py, diagram.py): Okabe-Ito colours, viridis for maps
 * of counts, the input at the bottom of a diagram and the output on top, padding taps dashed. */
'use strict';

const COLORS = {
  ink: '#222222', edge: '#4d4d4d', grey: '#999999', padFill: '#f2f2f2', selected: '#cfe6f5',
  blue: '#0072B2', orange: '#E69F00', vermilion: '#D55E00', green: '#009E73', band: 'rgba(230,159,0,0.16)',
};
const FONT = '"DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif';
/* viridis at 0, 1/8, ..., 1 (matplotlib), interpolated linearly */
const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725']
  .map(h => [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16)));

/* viridis as a 256-entry table (r, g, b bytes) for images of many cells */
const VIRIDIS_LUT = (() => {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) lut.set(viridis(i / 255), 3 * i);
  return lut;
})();

function viridis(t) {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1), i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i, a = VIRIDIS[i], b = VIRIDIS[i + 1];
  return [0, 1, 2].map(c => Math.round(a[c] + (b[c] - a[c]) * f));
}
function rgb(c) { return `rgb(${c[0]},${c[1]},${c[2]})`; }

/* a canvas sized in CSS pixels, drawn at the screen's pixel density */
function setupCanvas(canvas, width, height) {
  const dpr = window.devicePixelRatio || 1;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.lineCap = 'round';
  return ctx;
}

function text(ctx, s, x, y, opts = {}) {
  ctx.save();
  ctx.font = `${opts.weight || ''} ${opts.size || 12}px ${FONT}`;
  ctx.fillStyle = opts.color || COLORS.ink;
  ctx.textAlign = opts.align || 'left';
  ctx.textBaseline = opts.baseline || 'middle';
  if (opts.rotate) { ctx.translate(x, y); ctx.rotate(opts.rotate); ctx.fillText(s, 0, 0); } else ctx.fillText(s, x, y);
  ctx.restore();
}

const SUPERSCRIPT = {'-': '⁻', 0: '⁰', 1: '¹', 2: '²', 3: '³', 4: '⁴', 5: '⁵', 6: '⁶', 7: '⁷', 8: '⁸', 9: '⁹'};
function pow10Label(e) {
  if (e === 0) return '1';
  if (e === 1) return '10';
  return '10' + String(e).split('').map(c => SUPERSCRIPT[c]).join('');
}

/* the label of a log10 tick: 10ᵏ at powers of ten, else the value (2, 50, ...) */
function logLabel(v) {
  if (Number.isInteger(v)) return pow10Label(v);
  const e = Math.floor(v), m = Math.round(Math.pow(10, v - e));
  return e >= 3 ? `${m}×${pow10Label(e)}` : fmt(Math.pow(10, v), 3);
}

/* a count short enough for a neuron: exact below 10 000, else 3 significant digits (edgewise diagram.short_count) */
function shortCount(c) {
  if (c < 10000n) return c.toString();
  const s = c.toString(), e = s.length - 1;
  for (const [exp, suffix] of [[3, 'k'], [6, 'M'], [9, 'G'], [12, 'T']]) {
    if (e < exp + 3) {
      const v = Number(s.slice(0, 4)) / Math.pow(10, 3 - (e - exp));
      const r = v.toFixed(Math.max(0, 2 - String(Math.floor(v)).length + 1));
      if (Number(r) < 1000) return r + suffix;
    }
  }
  return `${s[0]}.${s[1]}e${e}`;
}

/* tick values between lo and hi: 1-2-5 steps, about `count` of them */
function niceTicks(lo, hi, count) {
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / Math.max(1, count), mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(Math.round(v * 1e9) / 1e9);
  return out;
}

/* Axes of a plot in `box` {x, y, w, h} for data ranges xr, yr; ylog: y holds log10 values, labelled 10^k.
 * Returns the mapping functions. */
function axes(ctx, box, xr, yr, opts) {
  const X = v => box.x + (v - xr[0]) / (xr[1] - xr[0] || 1) * box.w;
  const Y = v => box.y + box.h - (v - yr[0]) / (yr[1] - yr[0] || 1) * box.h;
  ctx.save();
  ctx.strokeStyle = '#e3e3e3';
  ctx.lineWidth = 1;
  const yt = opts.ylog ? logTicks(yr) : niceTicks(yr[0], yr[1], 5);
  const ylabel = v => (opts.ylog ? logLabel(v) : String(v));
  const xt = opts.xticks || niceTicks(xr[0], xr[1], Math.max(2, Math.floor(box.w / 70)));
  for (const v of yt) { ctx.beginPath(); ctx.moveTo(box.x, Y(v)); ctx.lineTo(box.x + box.w, Y(v)); ctx.stroke(); }
  ctx.strokeStyle = COLORS.ink;
  ctx.beginPath();
  ctx.moveTo(box.x, box.y);
  ctx.lineTo(box.x, box.y + box.h);
  ctx.lineTo(box.x + box.w, box.y + box.h);
  ctx.stroke();
  for (const v of yt) {
    ctx.beginPath(); ctx.moveTo(box.x - 4, Y(v)); ctx.lineTo(box.x, Y(v)); ctx.stroke();
    text(ctx, ylabel(v), box.x - 6, Y(v), {align: 'right', size: 11});
  }
  for (const v of xt) {
    ctx.beginPath(); ctx.moveTo(X(v), box.y + box.h); ctx.lineTo(X(v), box.y + box.h + 4); ctx.stroke();
    text(ctx, String(v), X(v), box.y + box.h + 13, {align: 'center', size: 11});
  }
  text(ctx, opts.xlabel, box.x + box.w / 2, box.y + box.h + 31, {align: 'center', size: 12});
  text(ctx, opts.ylabel, box.x - 48, box.y + box.h / 2, {align: 'center', size: 12, rotate: -Math.PI / 2});
  ctx.restore();
  return {X, Y};
}

/* ticks of a log10 range: the powers of ten in it (every k-th when there are many); under two decades also
 * 2 and 5 times them, so a short range still has labelled steps (values are log10, integers are powers of ten) */
function logTicks(yr) {
  const lo = Math.ceil(yr[0] - 1e-9), hi = Math.floor(yr[1] + 1e-9), step = Math.max(1, Math.ceil((hi - lo + 1) / 7));
  const out = [];
  if (yr[1] - yr[0] < 2) {
    for (let e = Math.floor(yr[0]); e <= hi; e++) {
      for (const m of [1, 2, 5]) {
        const v = e + Math.log10(m);
        if (v >= yr[0] - 1e-9 && v <= yr[1] + 1e-9) out.push(m === 1 ? e : v);
      }
    }
    return out;
  }
  for (let e = lo; e <= hi; e += step) out.push(e);
  return out.length ? out : [Math.round((yr[0] + yr[1]) / 2)];
}

/* a log10 range holding every finite value, at least one decade wide, padded a little */
function logRange(values) {
  const fin = values.filter(Number.isFinite);
  if (!fin.length) return [0, 1];
  let lo = Math.min(...fin), hi = Math.max(...fin);
  if (hi - lo < 1) { const mid = (hi + lo) / 2; lo = mid - 0.5; hi = mid + 0.5; }
  const pad = 0.05 * (hi - lo);
  return [lo - pad, hi + pad];
}

function dashed(ctx, on) { ctx.setLineDash(on ? [4, 3] : []); }

/* A horizontal colour bar for log10 values lo..hi at (x, y) of width w, ticked at powers of ten. */
function colorBar(ctx, x, y, w, lo, hi, label) {
  for (let i = 0; i < w; i++) {
    ctx.fillStyle = rgb(viridis(i / (w - 1)));
    ctx.fillRect(x + i, y, 1.5, 10);
  }
  ctx.strokeStyle = COLORS.ink;
  ctx.lineWidth = 0.8;
  ctx.strokeRect(x, y, w, 10);
  const ticks = hi - lo < 1e-9 ? [lo] : logTicks([lo, hi]);
  for (const e of ticks) {
    const tx = x + (hi - lo < 1e-9 ? 0.5 : (e - lo) / (hi - lo)) * w;
    ctx.beginPath(); ctx.moveTo(tx, y + 10); ctx.lineTo(tx, y + 14); ctx.stroke();
    text(ctx, logLabel(e), tx, y + 22, {align: 'center', size: 11});
  }
  text(ctx, label, x + w / 2, y + 38, {align: 'center', size: 11});
}
