/* edgewise explorer, part 3 of 3: the state, the controls, the views and the address bar.
 * The state is a list of rows (a spec item each: kind, kernel, stride, dilation, repeat, own padding), the global
 * padding, the input size, the output units counted (to=) and the clicked unit. Every change calls update(),
 * which recomputes the exact numbers, redraws every panel and writes the state into the URL hash. */
'use strict';

const $ = id => document.getElementById(id);
const state = {dims: 1, size: [16], padding: 'same', rows: [], to: 'all', toPos: [0, 0], sel: 0, unit: null};
let model = null;        /* what update() computed: ops, sizes, counts, fields, ... */
let view = {};           /* geometry of the drawn diagram, for clicks and keys */
const timings = [];

/* ------------------------------------------------------------------ configuration <-> URL hash */

function configFromObject(c) {
  const rows = (c.rows || []).map(r => ({kind: r.kind, k: r.k, s: r.s, d: r.d || 1, rep: r.rep || 1, pad: r.pad || null}));
  checkRows(rows);
  const dims = c.input.length;
  if (dims !== 1 && dims !== 2) throw new SpecError('the input must be 1-D (length) or 2-D (height x width)');
  return {dims, size: c.input.slice(), padding: c.padding || 'same', rows, to: c.to || 'all',
          toPos: Array.isArray(c.to) ? c.to.slice() : [0, 0], sel: 0, unit: null};
}

function hashOf() {
  const parts = [`spec=${encodeURIComponent(state.rows.map(r => itemText(r, null)).join(','))}`,
                 `input=${state.size.join('x')}`, `padding=${state.padding}`,
                 `to=${state.to === 'pos' ? state.toPos.slice(0, state.dims).join(',') : state.to}`, `row=${state.sel}`];
  if (state.unit) parts.push(`unit=${state.unit.level}:${state.unit.pos.join(',')}`);
  return '#' + parts.join('&');
}

function stateFromHash(hash) {
  const q = {};
  for (const part of hash.replace(/^#/, '').split('&')) {
    const eq = part.indexOf('=');
    if (eq > 0) q[part.slice(0, eq)] = decodeURIComponent(part.slice(eq + 1));
  }
  if (!q.spec) return null;
  const rows = parseSpec(q.spec);
  const size = (q.input || '16').split('x').map(Number);
  if (size.length < 1 || size.length > 2 || !size.every(n => Number.isInteger(n) && n >= 1)) {
    throw new SpecError(`input '${q.input}': give a length such as 64, or height x width such as 32x32`);
  }
  const padding = PADDINGS[q.padding] ? q.padding : 'same';
  let to = q.to || 'all', toPos = [0, 0];
  if (to !== 'all' && to !== 'center') {
    toPos = to.split(',').map(Number);
    to = 'pos';
    if (toPos.length === 1) toPos = [0, toPos[0]];
  }
  if (size.length === 1 && to === 'pos') toPos = [0, toPos[toPos.length - 1]];
  let unit = null;
  if (q.unit) {
    const [lv, pos] = q.unit.split(':');
    unit = {level: Number(lv), pos: pos.split(',').map(Number)};
  }
  return {dims: size.length, size, padding, rows, to, toPos: size.length === 1 ? [toPos[toPos.length - 1]] : toPos,
          sel: Math.min(Number(q.row) || 0, rows.length - 1), unit};
}

function setState(s) {
  Object.assign(state, s);
  if (state.dims === 1) state.toPos = [state.toPos[state.toPos.length - 1] || 0];
}

/* ------------------------------------------------------------------ the computation */

function compute() {
  const ops = expand(state.rows, state.padding);
  const sizes = layerSizes(ops, state.size);          /* sizes[axis][level] */
  const top = ops.length, topSize = sizes.map(s => s[top]);
  if (state.to === 'pos') {
    state.toPos = state.toPos.map((p, a) => Math.min(Math.max(0, p | 0), topSize[a] - 1));
  }
  const counts = sizes.map((s, a) => countLevels(ops, s, top, selectAxis(state.to, s[top], state.toPos[a])));
  const fields = sizes.map(s => axisFields(ops, s));
  /* the clicked unit: default the centre of the output */
  let unit = state.unit;
  if (!unit || unit.level < 0 || unit.level > top || unit.pos.length !== state.dims) {
    unit = {level: top, pos: topSize.map(n => Math.floor((n - 1) / 2))};
  }
  unit.pos = unit.pos.map((p, a) => Math.min(Math.max(0, p | 0), sizes[a][unit.level] - 1));
  state.unit = unit;
  const unitCounts = sizes.map((s, a) => countLevels(ops, s, unit.level, selectAxis('pos', s[unit.level], unit.pos[a])));
  const boxes = fields.map((f, a) => unitBox(f[unit.level], unit.pos[a]));
  /* the layer type of the ratio-vs-depth panel: the selected row if it is a convolution, else the first one */
  const conv = state.rows[state.sel] && state.rows[state.sel].kind === 'conv' ? state.sel
    : state.rows.findIndex(r => r.kind === 'conv');
  const depth = conv < 0 ? null : depthPanel(conv);
  return {ops, sizes, top, counts, fields, unit, unitCounts, boxes, depth, ratios: anchorRatios(counts.map(c => c[0]))};
}

const _depthCache = {};
function depthPanel(r) {
  const row = state.rows[r], padding = row.pad || state.padding, n = state.size[state.dims - 1];
  const key = `${padding},${row.k},${row.d},${n}`;
  if (!_depthCache[key]) {
    _depthCache[key] = {row: r, padding, k: row.k, d: row.d, n, exact: depthCurve(padding, row.k, row.d, n),
                        law: depthLaw(padding, row.k, n, row.d)};
  }
  const out = Object.assign({}, _depthCache[key], {row: r});
  /* this stack's own depth when it is made of that layer only (stride 1): a marker on the curve */
  const same = state.rows.every(x => x.kind === 'conv' && x.k === row.k && x.d === row.d && x.s === 1
                                    && (x.pad || state.padding) === padding);
  out.depthHere = same ? state.rows.reduce((a, x) => a + x.rep, 0) : null;
  return out;
}

/* ------------------------------------------------------------------ update */

let widths = {}, hashTimer = null;

/* the address bar follows the view a moment after the last change: browsers throttle rapid history updates */
function scheduleHash() {
  clearTimeout(hashTimer);
  hashTimer = setTimeout(writeHash, 120);
}

function writeHash() {
  clearTimeout(hashTimer);
  hashTimer = null;
  if (location.hash !== hashOf()) history.replaceState(null, '', hashOf());
}

function update() {
  const t0 = performance.now();
  widths = {diagram: $('diagram').parentElement.clientWidth, counts: $('counts').parentElement.clientWidth,
            ratio: $('ratio').parentElement.clientWidth};
  let error = null;
  try {
    model = compute();
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    error = e.message;
    model = null;
  }
  $('error').textContent = error || '';
  $('error').hidden = !error;
  document.body.classList.toggle('failed', !!error);
  syncLayout();
  const phases = {compute: performance.now() - t0};
  const phase = (name, f) => { const a = performance.now(); f(); phases[name] = performance.now() - a; };
  if (model) {
    phase('controls', syncControls);
    phase('diagram', drawDiagram);
    phase('counts', state.dims === 1 ? drawCurve : drawMap);
    phase('depth', drawDepth);
    phase('unit', describeUnit);
  }
  phase('numbers', () => writeNumbers(error));
  scheduleHash();
  const ms = performance.now() - t0;
  timings.push(ms);
  $('ew-numbers').dataset.ms = ms.toFixed(3);
  $('ew-numbers').dataset.phases = JSON.stringify(phases, (k, v) => (typeof v === 'number' ? Number(v.toFixed(2)) : v));
  $('timing').textContent = `updated in ${ms.toFixed(1)} ms`;
}

/* ------------------------------------------------------------------ the exact numbers, in the DOM */

function fractionText(f) { return f ? `${f.num}/${f.den}` : null; }

function writeNumbers(error) {
  const out = {spec: specText(state.rows, null), padding: state.padding, dims: state.dims, input: state.size.slice(),
               to: state.to === 'pos' ? state.toPos.slice(0, state.dims) : state.to};
  if (error || !model) {
    out.error = error;
  } else {
    const m = model, strs = v => v.map(String);
    out.layers = m.ops.map(o => o.name);
    out.sizes = m.sizes;
    out.axis_counts = m.counts.map(c => strs(c[0]));
    if (state.dims === 1) {
      out.counts = strs(m.counts[0][0]);
      if (m.sizes[0].reduce((a, b) => a + b, 0) <= 20000) {
        out.layer_counts = {input: out.counts};
        m.ops.forEach((op, l) => { out.layer_counts[op.name] = strs(m.counts[0][l + 1]); });
      }
    } else if (state.size[0] * state.size[1] <= 4096) {
      out.counts = m.counts[0][0].map(r => m.counts[1][0].map(c => String(r * c)));
    }
    out.summary = {center: String(m.ratios.center), center_edge_ratio: fractionText(m.ratios.edge),
                   center_corner_ratio: fractionText(m.ratios.corner)};
    out.rf = m.fields[0].map((_, l) => ({name: l ? m.ops[l - 1].name : 'input', size: m.fields.map(f => f[l].size),
                                          jump: m.fields.map(f => f[l].jump), start: m.fields.map(f => f[l].start2 / 2)}));
    const u = m.unit;
    out.unit = {level: u.level, layer: u.level ? m.ops[u.level - 1].name : 'input', pos: u.pos.slice(),
                box: m.boxes.map(b => b.box), clipped: m.boxes.map(b => b.clipped),
                axis_counts: m.unitCounts.map(c => strs(c[0]))};
    if (state.dims === 1) out.unit.counts = out.unit.axis_counts[0];
    if (m.depth) {
      const dp = m.depth;
      out.depth = {row: dp.row, padding: dp.padding, k: dp.k, d: dp.d, n: dp.n, law_kind: dp.law.kind,
                   law_formula: dp.law.formula,
                   exact: dp.exact.map(fractionText),
                   law: Array.from({length: DEPTHS}, (_, i) => { const v = dp.law.curve(i + 1); return Number.isFinite(v) ? v : null; }),
                   params: dp.law.params};
    }
  }
  $('ew-numbers').textContent = JSON.stringify(out);
  if ($('exact').open) $('exact-text').textContent = exactText(out);
}

/* the visible copy of the numbers (the Exact numbers box) */
function exactText(out) {
  if (out.error) return out.error;
  const lines = [`spec ${out.spec} · ${out.padding} padding · input ${out.input.join('x')} · paths to ${describeTo()}`];
  if (out.dims === 1) {
    lines.push(`paths from each input position: ${out.counts.join(' ')}`);
  } else {
    lines.push(`paths, row factor (y): ${out.axis_counts[0].join(' ')}`);
    lines.push(`paths, column factor (x): ${out.axis_counts[1].join(' ')}`);
    lines.push('paths to pixel (y, x) = row factor[y] × column factor[x]');
  }
  lines.push(`centre ${out.summary.center} · centre/edge ${out.summary.center_edge_ratio || 'undefined'}`
             + (out.dims === 2 ? ` · centre/corner ${out.summary.center_corner_ratio || 'undefined'}` : ''));
  lines.push(`clicked unit ${out.unit.layer}[${out.unit.pos.join(', ')}]: paths from each input: `
             + out.unit.axis_counts.map(v => v.join(' ')).join(' | '));
  return lines.join('\n');
}

function describeTo() {
  if (state.to === 'all') return 'all output units';
  if (state.to === 'center') return 'the centre output unit';
  return `output unit ${state.dims === 1 ? state.toPos[0] : `(${state.toPos.join(', ')})`}`;
}

/* ------------------------------------------------------------------ the diagram */

/* Rows of the diagram along the drawn axis (the only one in 1-D, the columns in 2-D): each row is affine,
 * neuron p at x0 + p*jump in input pixels (a neuron sits over the middle of the taps it reads). */
function diagramRows(axis) {
  const m = model, sizes = m.sizes[axis], rows = [{name: 'input', detail: `${sizes[0]} positions`, n: sizes[0], x0: 0, jump: 1}];
  m.ops.forEach((op, l) => {
    const below = rows[l], nIn = sizes[l], nOut = sizes[l + 1];
    if (op.global) {
      rows.push({name: op.name, detail: opDetail(op), n: nOut, x0: below.x0 + below.jump * (nIn - 1) / 2,
                 jump: below.jump * nIn / nOut, op});
    } else {
      rows.push({name: op.name, detail: opDetail(op), n: nOut, x0: below.x0 + below.jump * ((op.k - 1) * op.d / 2 - op.lo),
                 jump: below.jump * op.s, op});
    }
  });
  return rows;
}

/* taps of neuron o of row l+1 into row l: [virtual position p, neuron read i (-1: zero), multiplicity] */
function tapsOf(op, o, nIn) {
  if (op.global) return Array.from({length: nIn}, (_, i) => [i, i, 1]);
  const found = new Map();
  for (let t = 0; t < op.k; t++) {
    const p = o * op.s + t * op.d - op.lo, i = mirror(p, nIn, op.mode), key = `${p},${i}`;
    found.set(key, found.has(key) ? [p, i, found.get(key)[2] + 1] : [p, i, 1]);
  }
  return [...found.values()];
}

function tapKind(row, p, i) {
  if (i < 0) return 'zero';
  if (i === p) return 'tap';
  return Math.abs((i - p) * row.jump) > 3.5 * row.jump ? 'wrap' : 'mirror';
}

function drawDiagram() {
  const m = model, axis = state.dims - 1, rows = diagramRows(axis), counts = m.counts[axis];
  const unitCounts = m.unitCounts[axis], ulevel = m.unit.level, upos = m.unit.pos[axis];
  /* padding positions some tap reads, per row: p -> neuron it copies (-1: a zero) */
  const pads = rows.map(() => new Map());
  const neurons = rows.length <= 13 && rows[0].n <= 40;
  let span = [0, rows[0].n - 1];
  rows.forEach((row, l) => {
    span = [Math.min(span[0], row.x0), Math.max(span[1], row.x0 + (row.n - 1) * row.jump)];
    if (!row.op || row.op.global || !(row.op.lo || row.op.hi)) return;
    const nIn = rows[l - 1].n, last = (row.n - 1) * row.op.s + (row.op.k - 1) * row.op.d - row.op.lo;
    for (let p = -row.op.lo; p <= last; p++) {
      if (p >= 0 && p < nIn) { p = nIn - 1; continue; }
      const reads = [];
      for (let o = 0; o < row.n; o++) {
        const t = p - (o * row.op.s - row.op.lo);
        if (t >= 0 && t % row.op.d === 0 && t / row.op.d < row.op.k) { reads.push(o); break; }
      }
      if (reads.length) pads[l - 1].set(p, mirror(p, nIn, row.op.mode));
    }
  });
  const fits = neurons && rows.every((r, l) => r.n + pads[l].size <= 64);
  pads.forEach((pad, l) => pad.forEach((i, p) => {
    if (fits || i < 0) span = [Math.min(span[0], rows[l].x0 + p * rows[l].jump), Math.max(span[1], rows[l].x0 + p * rows[l].jump)];
  }));
  const canvas = $('diagram'), width = Math.max(480, widths.diagram - 2), labelW = 118;
  const top = fits ? 30 : 22;
  let ux, dy, radius, height, bottom;
  if (fits) {
    ux = Math.min(48, (width - labelW - 24) / (span[1] - span[0] + 1.6));
    dy = Math.max(40, 1.6 * ux);
    bottom = 0.46 * ux + 16;  /* room for the receptive-field bracket under the input row */
  } else {
    ux = (width - labelW - 24) / (span[1] - span[0] + 1);
    dy = Math.min(rows.length <= 4 ? 64 : 44, Math.max(7, 560 / Math.max(1, rows.length - 1)));
    bottom = 20;
  }
  height = top + bottom + (rows.length - 1) * dy;
  const ctx = setupCanvas(canvas, width, height);
  const X = (row, p) => labelW + 12 + (row.x0 + p * row.jump - span[0] + (fits ? 0.8 : 0.5)) * ux;
  const Y = l => top + (rows.length - 1 - l) * dy;
  view = {rows, X, Y, dy, ux, fits, axis};
  /* the clicked unit's cone: every neuron with a path to it */
  const cone = l => l <= ulevel && unitCounts[l];
  if (fits) {
    const labels = rows.flatMap((r, l) => counts[l].map(shortCount));
    ctx.font = `12px ${FONT}`;
    const widest = Math.max(...labels.map(s => ctx.measureText(s).width), ...[...pads.values()].map(() => 12));
    radius = Math.min(0.46 * ux, Math.max(0.33 * ux, widest / 2 / 0.92 + 2));
    const font = Math.max(7, Math.min(12, 12 * (2 * 0.92 * (radius - 1.5)) / Math.max(widest, 1)));
    view.radius = radius;
    drawNeuronTaps(ctx, rows, pads, X, Y, radius, ulevel, upos);
    rows.forEach((row, l) => {
      const y = Y(l);
      pads[l].forEach((i, p) => {
        if (i >= 0 && tapKind(row, p, i) !== 'wrap') return;
        ctx.beginPath();
        ctx.arc(X(row, p), y, radius, 0, 2 * Math.PI);
        ctx.fillStyle = i < 0 ? COLORS.padFill : 'white';
        ctx.fill();
        dashed(ctx, true);
        ctx.strokeStyle = i < 0 ? COLORS.grey : COLORS.vermilion;
        ctx.lineWidth = 1;
        ctx.stroke();
        dashed(ctx, false);
        if (i >= 0) text(ctx, `=${i}`, X(row, p), y, {align: 'center', size: font, color: COLORS.vermilion});
      });
      for (let o = 0; o < row.n; o++) {
        const c = counts[l][o], x = X(row, o), inCone = cone(l) && cone(l)[o] > 0n;
        ctx.beginPath();
        ctx.arc(x, y, radius, 0, 2 * Math.PI);
        ctx.fillStyle = l === rows.length - 1 && isSelectedOutput(o) ? COLORS.selected : 'white';
        ctx.fill();
        ctx.strokeStyle = inCone ? COLORS.orange : (c ? COLORS.ink : COLORS.grey);
        ctx.lineWidth = inCone ? 3 : 1.2;
        ctx.stroke();
        if (l === ulevel && o === upos) {
          ctx.beginPath(); ctx.arc(x, y, radius + 4, 0, 2 * Math.PI);
          ctx.strokeStyle = COLORS.ink; ctx.lineWidth = 2.2; ctx.stroke();
        }
        text(ctx, shortCount(c), x, y + 0.5, {align: 'center', size: font, color: c ? COLORS.ink : COLORS.grey});
      }
      text(ctx, row.name, labelW - 4, y - 7, {align: 'right', size: 12});
      text(ctx, row.detail, labelW - 4, y + 8, {align: 'right', size: 11, color: '#555'});
    });
  } else {
    drawStrip(ctx, rows, pads, counts, X, Y, cone, ulevel, upos, labelW);
  }
  /* the receptive field box of the clicked unit, under the input row */
  const b = model.boxes[axis].box, yb = Y(0) + (fits ? radius + 7 : Math.min(dy * 0.4, 7) + 5);
  ctx.strokeStyle = COLORS.orange;
  ctx.lineWidth = 2.5;
  ctx.beginPath();
  ctx.moveTo(X(rows[0], b[0] - 0.45), yb - 4); ctx.lineTo(X(rows[0], b[0] - 0.45), yb);
  ctx.lineTo(X(rows[0], b[1] + 0.45), yb); ctx.lineTo(X(rows[0], b[1] + 0.45), yb - 4);
  ctx.stroke();
  diagramText(rows, pads, fits);
}

function isSelectedOutput(o) {
  const n = model.sizes[state.dims - 1][model.top];
  if (state.to === 'all') return true;
  if (state.to === 'center') return o === Math.floor((n - 1) / 2);
  return o === state.toPos[state.dims - 1];
}

function drawNeuronTaps(ctx, rows, pads, X, Y, radius, ulevel, upos) {
  for (let l = 1; l < rows.length; l++) {
    const row = rows[l], below = rows[l - 1], y = Y(l), yb = Y(l - 1);
    for (let o = 0; o < row.n; o++) {
      for (const [p, i, mult] of tapsOf(row.op, o, below.n)) {
        const kind = tapKind(below, p, i), x = X(row, o);
        const x2 = X(below, kind === 'tap' || kind === 'mirror' ? i : p);
        ctx.strokeStyle = kind === 'tap' ? COLORS.edge : kind === 'zero' ? COLORS.grey : COLORS.vermilion;
        ctx.lineWidth = (kind === 'tap' || kind === 'zero' ? 0.9 : 1.1) * (1 + 0.7 * (mult - 1));
        dashed(ctx, kind === 'zero');
        const ang = Math.atan2(yb - y, x2 - x), sx = x + radius * Math.cos(ang), sy = y + radius * Math.sin(ang);
        const ex = x2 - radius * Math.cos(ang), ey = yb - radius * Math.sin(ang);
        ctx.beginPath();
        ctx.moveTo(sx, sy);
        if (kind === 'mirror') {  /* bow outward, away from the ordinary taps */
          const bow = 0.35 * (p < 0 ? 1 : -1), mx = (sx + ex) / 2 - bow * (ey - sy), my = (sy + ey) / 2 + bow * (ex - sx);
          ctx.quadraticCurveTo(mx, my, ex, ey);
        } else {
          ctx.lineTo(ex, ey);
        }
        ctx.stroke();
        dashed(ctx, false);
        if (mult > 1) text(ctx, `×${mult}`, (sx + ex) / 2, (sy + ey) / 2, {align: 'center', size: 10, color: COLORS.ink});
      }
    }
  }
}

const stripCanvas = document.createElement('canvas');

/* one image line per dense row (more than 128 neurons): each neuron a pixel coloured by its paths ÷ the most in
 * its row on a log scale (white: no path); drawn stretched, so long inputs cost one image, not a rectangle each */
function denseImage(rows, counts, logs, range) {
  const width = Math.max(...rows.map(r => r.n)), img = new ImageData(width, rows.length), data = img.data;
  rows.forEach((row, l) => {
    if (row.n <= 128) return;
    const [bottom, top] = range[l], scale = top > bottom ? 255 / (top - bottom) : 0;
    for (let o = 0, k = 4 * l * width; o < row.n; o++, k += 4) {
      const j = 3 * (top > bottom ? Math.round((logs[l][o] - bottom) * scale) : 255);
      if (counts[l][o] > 0n) { data[k] = VIRIDIS_LUT[j]; data[k + 1] = VIRIDIS_LUT[j + 1]; data[k + 2] = VIRIDIS_LUT[j + 2]; }
      else { data[k] = data[k + 1] = data[k + 2] = 255; }
      data[k + 3] = 255;
    }
  });
  stripCanvas.width = width;
  stripCanvas.height = rows.length;
  stripCanvas.getContext('2d').putImageData(img, 0, 0);
  return stripCanvas;
}

/* rows of cells coloured by paths ÷ the most in the row (log scale), for networks too large for numbered neurons */
function drawStrip(ctx, rows, pads, counts, X, Y, cone, ulevel, upos, labelW) {
  const m = view;
  const every = Math.max(1, Math.ceil(16 / m.dy));
  const logs = counts.map(c => c.map(log10Big)), range = logs.map(v => v.filter(Number.isFinite))
    .map(f => (f.length ? [Math.min(...f), Math.max(...f)] : [0, 0]));
  const image = denseImage(rows, counts, logs, range);
  rows.forEach((row, l) => {
    const y = Y(l), w = Math.max(1, row.jump * m.ux), h = Math.max(3, Math.min(m.dy * 0.62, 14));
    const c = counts[l], [bottom, top] = range[l];
    const gap = w > 4 ? 1 : 0;
    pads[l].forEach((i, p) => {
      if (i >= 0) return;
      ctx.fillStyle = '#dddddd';
      ctx.fillRect(X(row, p) - w / 2 + gap / 2, y - h / 2, w - gap, h);
    });
    const colour = o => (c[o] > 0n ? viridis(top > bottom ? (logs[l][o] - bottom) / (top - bottom) : 1) : [255, 255, 255]);
    if (row.n <= 128) {
      for (let o = 0; o < row.n; o++) {
        ctx.fillStyle = rgb(colour(o));
        ctx.fillRect(X(row, o) - w / 2 + gap / 2, y - h / 2, w - gap, h);
      }
    } else {  /* a dense row: its line of the image, stretched over the row */
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(image, 0, l, row.n, 1, X(row, 0) - w / 2, y - h / 2, row.n * w, h);
    }
    /* the clicked unit's cone: an orange bar under the neurons with a path to it */
    const k = cone(l);
    if (k) {
      let lo = -1, hi = -1;
      for (let o = 0; o < row.n; o++) if (k[o] > 0n) { if (lo < 0) lo = o; hi = o; }
      if (lo >= 0) {
        ctx.fillStyle = COLORS.orange;
        ctx.fillRect(X(row, lo) - w / 2, y + h / 2 + 1, X(row, hi) - X(row, lo) + w, 2.5);
      }
    }
    if (l === rows.length - 1 && state.to !== 'all') {
      ctx.strokeStyle = COLORS.blue; ctx.lineWidth = 2;
      for (let o = 0; o < row.n; o++) if (isSelectedOutput(o)) ctx.strokeRect(X(row, o) - w / 2 - 1, y - h / 2 - 1, w + 2, h + 2);
    }
    if (l === ulevel) {
      ctx.strokeStyle = COLORS.ink; ctx.lineWidth = 2;
      ctx.strokeRect(X(row, upos) - w / 2 - 2.5, y - h / 2 - 2.5, w + 5, h + 5);
    }
    if (l % every === 0 || l === rows.length - 1) {
      text(ctx, m.dy >= 26 ? row.name : `${row.name} · ${row.detail}`, labelW - 4, m.dy >= 26 ? y - 6 : y,
           {align: 'right', size: 11});
      if (m.dy >= 26) text(ctx, row.detail, labelW - 4, y + 8, {align: 'right', size: 10, color: '#555'});
    }
  });
  /* the taps of the clicked unit into the row below */
  if (ulevel > 0) {
    const row = rows[ulevel], below = rows[ulevel - 1];
    for (const [p, i] of tapsOf(row.op, upos, below.n)) {
      const kind = tapKind(below, p, i);
      ctx.strokeStyle = kind === 'tap' ? COLORS.ink : kind === 'zero' ? COLORS.grey : COLORS.vermilion;
      ctx.lineWidth = 1;
      dashed(ctx, kind === 'zero');
      ctx.beginPath();
      ctx.moveTo(X(row, upos), Y(ulevel));
      ctx.lineTo(X(below, kind === 'zero' || kind === 'wrap' ? p : i), Y(ulevel - 1));
      ctx.stroke();
      dashed(ctx, false);
    }
  }
}

function diagramText(rows, pads, fits) {
  const spec = specText(state.rows, state.padding), axis = state.dims === 2 ? ' · one axis (columns) of the separable 2-D stack' : '';
  $('diagram-title').textContent = `Paths to the output of ${spec}`;
  $('diagram-sub').textContent = `${state.padding} padding${axis} · ${fits
    ? `numbers: paths from each neuron to ${describeTo()}`
    : `colour: paths from each neuron to ${describeTo()} ÷ the most in its row (log scale); hover a cell for its exact count`}`;
  const kinds = new Set();
  pads.forEach((pad, l) => pad.forEach((i, p) => kinds.add(tapKind(rows[l], p, i))));
  const items = [['line', COLORS.edge, fits ? 'tap (connection)' : 'taps of the clicked unit']];
  if (kinds.has('zero')) items.push(['dash', COLORS.grey, fits ? 'tap on zero padding (grey dashed neuron)' : 'zero padding some tap reads (grey cells)']);
  if (kinds.has('mirror')) items.push(['line', COLORS.vermilion, 'padding tap → the neuron it copies']);
  if (kinds.has('wrap')) items.push(['ring', COLORS.vermilion, 'tap on a padded copy of neuron i (=i)']);
  items.push(['ring', COLORS.ink, 'clicked unit (arrow keys move it)']);
  items.push(['bar', COLORS.orange, fits ? 'orange rings: neurons with a path to the clicked unit; bracket: its receptive field'
                                        : 'orange bars: neurons with a path to the clicked unit; bracket: its receptive field']);
  if (fits && state.to !== 'all') items.push(['fill', COLORS.selected, 'output units counted (to=)']);
  if (!fits && state.to !== 'all') items.push(['ring', COLORS.blue, 'output units counted (to=)']);
  if (!fits) items.push(['ramp', '', 'paths ÷ the most in the row: 0 (white), then dark → bright on a log scale']);
  legend($('diagram-legend'), items);
}

function legend(el, items) {
  el.replaceChildren(...items.map(([kind, color, label]) => {
    const span = document.createElement('span'), key = document.createElement('i');
    key.className = `key ${kind}`;
    if (color) key.style.setProperty('--c', color);
    span.append(key, label);
    return span;
  }));
}

/* the neuron of the diagram under a point of the canvas, or null */
function neuronAtPoint(x, y) {
  if (!model || !view.rows) return null;
  const l = Math.round((view.Y(0) - y) / view.dy);
  if (l < 0 || l >= view.rows.length || Math.abs(view.Y(l) - y) > Math.max(view.dy / 2, 6)) return null;
  const row = view.rows[l], p = Math.round(((x - view.X(row, 0)) / view.ux) / row.jump);
  if (p < 0 || p >= row.n || Math.abs(view.X(row, p) - x) > Math.max(row.jump * view.ux / 2, 5)) return null;
  return {level: l, p};
}

/* ------------------------------------------------------------------ count curve (1-D) and map (2-D) */

function drawCurve() {
  const m = model, c = m.counts[0][0], uc = m.unitCounts[0][0], n = c.length;
  const logs = c.map(log10Big), ulogs = uc.map(log10Big);
  const canvas = $('counts'), width = Math.max(320, widths.counts - 2), height = 300;
  const ctx = setupCanvas(canvas, width, height);
  const box = {x: 64, y: 12, w: width - 82, h: height - 62};
  const yr = logRange(logs.concat(ulogs));
  const {X, Y} = axes(ctx, box, [-0.5, n - 0.5], yr, {ylog: true, xlabel: 'input position (0 … n−1)',
                                                      ylabel: 'paths (log scale)',
                                                      xticks: niceTicks(0, n - 1, Math.max(2, Math.floor(box.w / 70))).filter(v => Number.isInteger(v))});
  const b = m.boxes[0].clipped;
  if (b[1] >= b[0]) {
    ctx.fillStyle = COLORS.band;
    ctx.fillRect(X(b[0] - 0.5), box.y, X(b[1] + 0.5) - X(b[0] - 0.5), box.h);
  }
  series(ctx, ulogs, X, Y, COLORS.orange, n <= 96, box);
  series(ctx, logs, X, Y, COLORS.blue, n <= 96, box);
  view.curve = {X, Y, box, n};
  const u = m.unit, name = u.level ? m.ops[u.level - 1].name : 'input';
  $('counts-title').textContent = `Paths from each input position to ${describeTo()}`;
  legend($('counts-legend'), [['line', COLORS.blue, `paths to ${describeTo()}`],
                              ['line', COLORS.orange, `paths to the clicked unit ${name}[${u.pos[0]}]`],
                              ['band', COLORS.band, 'its receptive field (clipped to the input)']]
                             .concat(logs.concat(ulogs).some(v => !Number.isFinite(v)) ? [['cross', COLORS.grey, 'no path (0)']] : []));
  summaryText();
}

function series(ctx, logs, X, Y, color, dots, box) {
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = 1.6;
  ctx.beginPath();
  let pen = false;
  logs.forEach((v, i) => {
    if (!Number.isFinite(v)) { pen = false; return; }
    if (pen) ctx.lineTo(X(i), Y(v)); else ctx.moveTo(X(i), Y(v));
    pen = true;
  });
  ctx.stroke();
  logs.forEach((v, i) => {
    if (Number.isFinite(v)) {
      if (dots) { ctx.beginPath(); ctx.arc(X(i), Y(v), 2.6, 0, 2 * Math.PI); ctx.fill(); }
    } else {
      const x = X(i), y = box.y + box.h - 5;
      ctx.save(); ctx.strokeStyle = COLORS.grey; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(x - 3, y - 3); ctx.lineTo(x + 3, y + 3); ctx.moveTo(x - 3, y + 3); ctx.lineTo(x + 3, y - 3); ctx.stroke();
      ctx.restore();
    }
  });
}

function drawMap() {
  const m = model, rowsL = m.counts[0][0].map(log10Big), colsL = m.counts[1][0].map(log10Big);
  const [h, w] = [rowsL.length, colsL.length];
  const canvas = $('counts'), width = Math.max(320, widths.counts - 2);
  const side = Math.min(width - 90, 420), cell = side / Math.max(h, w);
  const box = {x: 64, y: 12, w: cell * w, h: cell * h}, height = box.h + 118;
  const ctx = setupCanvas(canvas, width, height);
  const fin = [...rowsL.filter(Number.isFinite)], finC = [...colsL.filter(Number.isFinite)];
  const lr = fin.length && finC.length ? logRange([Math.min(...fin) + Math.min(...finC), Math.max(...fin) + Math.max(...finC)])
    : [0, 1];
  /* the map as an image: one cell per pixel, log colour */
  const img = new ImageData(w, h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = rowsL[y] + colsL[x], k = 4 * (y * w + x), c = Number.isFinite(v) ? viridis((v - lr[0]) / (lr[1] - lr[0])) : [255, 255, 255];
      img.data[k] = c[0]; img.data[k + 1] = c[1]; img.data[k + 2] = c[2]; img.data[k + 3] = 255;
    }
  }
  const tmp = document.createElement('canvas');
  tmp.width = w; tmp.height = h;
  tmp.getContext('2d').putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, box.x, box.y, box.w, box.h);
  ctx.strokeStyle = COLORS.ink; ctx.lineWidth = 1; ctx.strokeRect(box.x, box.y, box.w, box.h);
  const X = v => box.x + (v + 0.5) * cell, Y = v => box.y + (v + 0.5) * cell;
  for (const v of niceTicks(0, w - 1, 5).filter(Number.isInteger)) text(ctx, String(v), X(v), box.y + box.h + 12, {align: 'center', size: 11});
  for (const v of niceTicks(0, h - 1, 5).filter(Number.isInteger)) text(ctx, String(v), box.x - 6, Y(v), {align: 'right', size: 11});
  text(ctx, 'column x', box.x + box.w / 2, box.y + box.h + 28, {align: 'center', size: 12});
  text(ctx, 'row y', box.x - 40, box.y + box.h / 2, {align: 'center', size: 12, rotate: -Math.PI / 2});
  /* the clicked unit's receptive field, clipped to the input */
  const [by, bx] = m.boxes.map(b => b.clipped);
  if (by[1] >= by[0] && bx[1] >= bx[0]) {
    ctx.strokeStyle = COLORS.orange; ctx.lineWidth = 2.5;
    ctx.strokeRect(X(bx[0] - 0.5), Y(by[0] - 0.5), (bx[1] - bx[0] + 1) * cell, (by[1] - by[0] + 1) * cell);
  }
  colorBar(ctx, box.x, box.y + box.h + 46, Math.min(box.w, 320), lr[0], lr[1], `paths to ${describeTo()} (log colour scale)`);
  view.map = {box, cell, h, w};
  $('counts-title').textContent = `Paths from each input pixel to ${describeTo()}`;
  const u = m.unit, name = u.level ? m.ops[u.level - 1].name : 'input';
  legend($('counts-legend'), [['box', COLORS.orange, `receptive field of the clicked unit ${name}[${u.pos.join(', ')}] (clipped)`],
                              ['fill', '#ffffff', 'white: no path']]);
  summaryText();
}

function summaryText() {
  const r = model.ratios, dec = (f, where = 'edges') => (f ? fmt(f.value, 6) : `undefined (no path reaches the ${where})`);
  const exact = f => (!f ? '' : f.den === 1n ? ' (exact)' : ` (exactly ${f.num}/${f.den})`);
  const parts = [`centre: ${shortCount(r.center)} paths`, `centre/edge = ${dec(r.edge)}${exact(r.edge)}`];
  if (state.dims === 2) parts.push(`centre/corner = ${dec(r.corner, 'corners')}${exact(r.corner)}`);
  $('summary').textContent = parts.join(' · ');
}

/* ------------------------------------------------------------------ ratio against depth */

function drawDepth() {
  const dp = model.depth, canvas = $('ratio'), width = Math.max(320, widths.ratio - 2), height = 300;
  const ctx = setupCanvas(canvas, width, height);
  if (!dp) {
    $('ratio-title').textContent = 'Centre/edge ratio against depth';
    text(ctx, 'add a convolution: the depth laws are about stacks of one conv layer', 20, 40);
    legend($('ratio-legend'), []);
    $('law-text').textContent = '';
    return;
  }
  const depths = Array.from({length: DEPTHS}, (_, i) => i + 1);
  const exact = dp.exact.map(f => (f ? f.log10 : NaN)), law = depths.map(L => Math.log10(dp.law.curve(L)));
  const box = {x: 64, y: 12, w: width - 82, h: height - 62};
  const yr = logRange(exact.concat(law.filter(Number.isFinite)).concat([0]));
  const {X, Y} = axes(ctx, box, [0, DEPTHS + 1], yr, {ylog: true, xlabel: 'depth L (identical layers, stride 1)',
                                                       ylabel: 'centre/edge (log scale)', xticks: [1, 8, 16, 24, 32, 40, 48, 56, 64]});
  if (dp.depthHere && dp.depthHere <= DEPTHS) {
    ctx.strokeStyle = COLORS.grey; ctx.setLineDash([2, 3]); ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(X(dp.depthHere), box.y); ctx.lineTo(X(dp.depthHere), box.y + box.h); ctx.stroke();
    ctx.setLineDash([]);
  }
  series(ctx, exact.map(v => (Number.isFinite(v) ? v : NaN)), i => X(i + 1), Y, COLORS.ink, true, {y: -1e9, h: -1e9});
  if (dp.law.kind !== 'numeric') {  /* over the exact dots, so a law that matches them stays visible */
    ctx.strokeStyle = COLORS.blue; ctx.lineWidth = 2.2; ctx.setLineDash([7, 4]);
    ctx.beginPath();
    let pen = false;
    law.forEach((v, i) => { if (!Number.isFinite(v)) { pen = false; return; } if (pen) ctx.lineTo(X(i + 1), Y(v)); else ctx.moveTo(X(i + 1), Y(v)); pen = true; });
    ctx.stroke();
    ctx.setLineDash([]);
  }
  view.depth = {X, Y, box};
  const row = state.rows[dp.row];
  $('ratio-title').textContent = `Centre/edge against depth: L × conv${dp.k}${dp.d > 1 ? `/d${dp.d}` : ''}, `
    + `${dp.padding} padding, n = ${dp.n}`;
  const items = [['dot', COLORS.ink, 'exact (BigInt counts, as edgewise.theory.ratio)']];
  if (dp.law.kind !== 'numeric') items.push(['dash', COLORS.blue, `closed form (edgewise.theory.depth_law: ${dp.law.kind})`]);
  if (dp.depthHere) items.push(['dash', COLORS.grey, `this stack: L = ${dp.depthHere}`]);
  legend($('ratio-legend'), items);
  const missing = dp.exact.findIndex(f => !f);
  $('law-text').textContent = `Layer type of row ${dp.row + 1} (${itemText(Object.assign({}, row, {rep: 1, s: 1}), state.padding)}`
    + `${row.s !== 1 ? ', its stride set to 1' : ''}) on ${dp.n} positions. Law: ${dp.law.formula}.`
    + (missing >= 0 ? ` From L = ${missing + 1} on the ratio is undefined (the stack has no output, or no path reaches an edge).` : '');
}

/* ------------------------------------------------------------------ the clicked unit */

function describeUnit() {
  const m = model, u = m.unit, name = u.level ? m.ops[u.level - 1].name : 'input', axesNames = state.dims === 2 ? ['rows (y)', 'columns (x)'] : ['positions'];
  const lines = [];
  m.fields.forEach((f, a) => {
    const fl = f[u.level], {box, clipped} = m.boxes[a], n = state.size[a];
    const inside = Math.max(0, Math.min(box[1], n - 1) - Math.max(box[0], 0) + 1);
    const reach = m.unitCounts[a][0].map((c, i) => (c > 0n ? i : -1)).filter(i => i >= 0);
    lines.push(`<b>${axesNames[a]}</b>: field ${fl.size} input ${state.dims === 2 ? 'pixels' : 'positions'} wide, from ${box[0]} to ${box[1]}`
      + ` (clipped to the input: ${clipped[0]} … ${clipped[1]}); ${Math.round(100 * inside / fl.size)}% of it inside the image;`
      + ` neighbouring units ${fl.jump} apart; inputs with a path to the unit: `
      + (reach.length ? `${reach[0]} … ${reach[reach.length - 1]} (${reach.length})` : 'none'));
  });
  $('rf-text').innerHTML = `<p>Unit <b>${name}[${u.pos.join(', ')}]</b> (level ${u.level} of ${m.top}). `
    + 'Click a neuron in the diagram, or focus the diagram and use the arrow keys, to pick another.</p>'
    + lines.map(s => `<p>${s}</p>`).join('');
  const table = $('rf-table');
  const head = '<tr><th>layer</th><th>output size</th><th>field size</th><th>jump</th><th>start (centre of unit 0)</th></tr>';
  const body = m.fields[0].map((_, l) => {
    const nm = l ? m.ops[l - 1].name : 'input', cls = l === u.level ? ' class="here"' : '';
    const cell = g => m.fields.map(f => g(f[l])).join(' × ');
    return `<tr${cls} data-level="${l}"><td>${nm}</td><td>${m.sizes.map(s => s[l]).join(' × ')}</td>`
      + `<td>${cell(f => f.size)}</td><td>${cell(f => f.jump)}</td><td>${m.fields.map(f => f[l].start2 / 2).join(', ')}</td></tr>`;
  }).join('');
  table.innerHTML = head + body;
}

/* ------------------------------------------------------------------ controls */

function option(value, label, selected) {
  const o = document.createElement('option');
  o.value = value; o.textContent = label; o.selected = selected;
  return o;
}

function numberInput(value, min, max, label, onChange) {
  const el = document.createElement('input');
  Object.assign(el, {type: 'number', min, max, step: 1, value});
  el.setAttribute('aria-label', label);
  el.addEventListener('input', () => {
    const v = Number(el.value);
    if (Number.isInteger(v) && v >= min && v <= max) { el.classList.remove('bad'); onChange(v); } else el.classList.add('bad');
  });
  return el;
}

/* the layer list: one row per spec item, bottom of the network first */
function renderRows() {
  const list = $('layers');
  list.replaceChildren();
  state.rows.forEach((row, r) => {
    const li = document.createElement('li');
    li.className = r === state.sel ? 'sel' : '';
    li.dataset.row = r;
    const kind = document.createElement('select');
    kind.setAttribute('aria-label', `layer ${r + 1} kind`);
    KINDS.forEach(k => kind.append(option(k, {conv: 'conv', maxpool: 'max pool', avgpool: 'avg pool', gap: 'global avg pool', gmp: 'global max pool'}[k], row.kind === k)));
    kind.addEventListener('change', () => {
      row.kind = kind.value;
      if (row.kind === 'conv') row.s = 1;
      else if (row.kind !== 'gap' && row.kind !== 'gmp') { row.s = row.k; row.d = 1; row.pad = null; }
      else { row.k = 1; row.s = 1; row.d = 1; row.pad = null; }
      renderRows(); update();
    });
    const field = (label, el) => { const w = document.createElement('label'); w.append(label, el); return w; };
    li.append(field('layer', kind));
    li.append(field('×', numberInput(row.rep, 1, LIMITS.repeat, `layer ${r + 1} repeat`, v => { row.rep = v; update(); })));
    if (row.kind !== 'gap' && row.kind !== 'gmp') {
      li.append(field('kernel', numberInput(row.k, 1, LIMITS.kernel, `layer ${r + 1} kernel`, v => { row.k = v; update(); })));
      li.append(field('stride', numberInput(row.s, 1, LIMITS.stride, `layer ${r + 1} stride`, v => { row.s = v; update(); })));
    }
    if (row.kind === 'conv') {
      li.append(field('dilation', numberInput(row.d, 1, LIMITS.dilation, `layer ${r + 1} dilation`, v => { row.d = v; update(); })));
      const pad = document.createElement('select');
      pad.setAttribute('aria-label', `layer ${r + 1} padding`);
      pad.append(option('', 'global', !row.pad));
      PADDING_NAMES.forEach(p => pad.append(option(p, p, row.pad === p)));
      pad.addEventListener('change', () => { row.pad = pad.value || null; update(); });
      li.append(field('padding', pad));
    }
    const dup = document.createElement('button');
    dup.type = 'button'; dup.textContent = 'copy'; dup.title = 'duplicate this layer'; dup.setAttribute('aria-label', `duplicate layer ${r + 1}`);
    dup.addEventListener('click', () => { state.rows.splice(r + 1, 0, Object.assign({}, row)); state.sel = r + 1; renderRows(); update(); });
    const del = document.createElement('button');
    del.type = 'button'; del.textContent = '✕'; del.title = 'remove this layer'; del.setAttribute('aria-label', `remove layer ${r + 1}`);
    del.disabled = state.rows.length === 1;
    del.addEventListener('click', () => { state.rows.splice(r, 1); state.sel = Math.min(state.sel, state.rows.length - 1); renderRows(); update(); });
    li.append(dup, del);
    li.addEventListener('focusin', () => selectRow(r));
    li.addEventListener('click', () => selectRow(r));
    list.append(li);
  });
}

function selectRow(r) {
  if (state.sel === r) return;
  state.sel = r;
  for (const li of $('layers').children) li.classList.toggle('sel', Number(li.dataset.row) === r);
  update();
}

function addRow(kind) {
  const row = kind === 'conv' ? {kind, k: 3, s: 1, d: 1, rep: 1, pad: null}
    : kind === 'maxpool' ? {kind, k: 2, s: 2, d: 1, rep: 1, pad: null} : {kind, k: 1, s: 1, d: 1, rep: 1, pad: null};
  state.rows.push(row);
  state.sel = state.rows.length - 1;
  renderRows();
  update();
}

function setter() {
  const active = document.activeElement;
  return (id, v) => { const el = $(id); if (el !== active && String(el.value) !== String(v)) el.value = v; };
}

/* the controls that depend on the state but not on a successful computation: shown even when it failed */
function syncLayout() {
  const set = setter();
  set('dims', state.dims);
  set('padding', state.padding);
  set('n0', state.size[0]);
  if (state.dims === 2) set('n1', state.size[1]);
  $('n1-wrap').hidden = state.dims === 1;
  $('n0-label').textContent = state.dims === 1 ? 'input length' : 'height';
  $('n0').max = state.dims === 1 ? LIMITS.length : LIMITS.side;
  set('to', state.to);
  $('to-pos').hidden = state.to !== 'pos';
  $('to-y-wrap').hidden = state.dims === 1;
  $('unit-y-wrap').hidden = state.dims === 1;
  document.body.classList.toggle('two-d', state.dims === 2);
}

/* the inputs that mirror the computed state (spec box, the range of positions, the unit) */
function syncControls() {
  const set = setter();
  set('spec', state.rows.map(r => itemText(r, null)).join(', '));
  const topSize = model.sizes.map(s => s[model.top]);
  $('to-x').max = topSize[state.dims - 1] - 1;
  if (state.dims === 2) $('to-y').max = topSize[0] - 1;
  if (state.to === 'pos') { set('to-x', state.toPos[state.dims - 1]); if (state.dims === 2) set('to-y', state.toPos[0]); }
  const lv = $('unit-level');
  if (lv.options.length !== model.top + 1 || lv.dataset.spec !== hashOf().split('&')[0] + state.size) {
    lv.replaceChildren(...[{name: 'input'}].concat(model.ops).map((op, l) => option(l, `${op.name} (${model.sizes.map(s => s[l]).join('×')})`, false)));
    lv.dataset.spec = hashOf().split('&')[0] + state.size;
  }
  set('unit-level', model.unit.level);
  set('unit-x', model.unit.pos[state.dims - 1]);
  $('unit-x').max = model.sizes[state.dims - 1][model.unit.level] - 1;
  if (state.dims === 2) { set('unit-y', model.unit.pos[0]); $('unit-y').max = model.sizes[0][model.unit.level] - 1; }
}

function bindControls() {
  $('spec').addEventListener('keydown', e => { if (e.key === 'Enter') applySpec(); });
  $('spec-apply').addEventListener('click', applySpec);
  $('dims').addEventListener('change', () => {
    const dims = Number($('dims').value);
    if (dims === state.dims) return;
    state.size = dims === 2 ? [Math.min(state.size[0], LIMITS.side), Math.min(state.size[0], LIMITS.side)] : [state.size[1]];
    state.toPos = dims === 2 ? [0, state.toPos[0]] : [state.toPos[1]];
    state.dims = dims;
    state.unit = null;
    update();
  });
  $('padding').addEventListener('change', () => { state.padding = $('padding').value; update(); });
  const size = (id, a) => $(id).addEventListener('input', () => {
    const v = Number($(id).value), max = state.dims === 1 ? LIMITS.length : LIMITS.side;
    if (!Number.isInteger(v) || v < 1 || v > max) { $(id).classList.add('bad'); return; }
    $(id).classList.remove('bad');
    state.size[a] = v;
    update();
  });
  size('n0', 0);
  size('n1', 1);
  $('to').addEventListener('change', () => { state.to = $('to').value; update(); });
  $('to-x').addEventListener('input', () => { state.toPos[state.dims - 1] = Number($('to-x').value) || 0; update(); });
  $('to-y').addEventListener('input', () => { state.toPos[0] = Number($('to-y').value) || 0; update(); });
  $('unit-level').addEventListener('change', () => moveUnit(Number($('unit-level').value) - model.unit.level, 0));
  $('unit-x').addEventListener('input', () => { state.unit.pos[state.dims - 1] = Number($('unit-x').value) || 0; update(); });
  $('unit-y').addEventListener('input', () => { state.unit.pos[0] = Number($('unit-y').value) || 0; update(); });
  $('add-conv').addEventListener('click', () => addRow('conv'));
  $('add-pool').addEventListener('click', () => addRow('maxpool'));
  $('add-gap').addEventListener('click', () => addRow('gap'));
  $('exact').addEventListener('toggle', () => writeNumbers($('error').hidden ? null : $('error').textContent));
  document.querySelectorAll('[data-preset]').forEach(a => a.addEventListener('click', e => {
    e.preventDefault();
    loadHash(a.getAttribute('href'));
  }));
  const diagram = $('diagram');
  diagram.addEventListener('click', e => {
    const r = diagram.getBoundingClientRect(), hit = neuronAtPoint(e.clientX - r.left, e.clientY - r.top);
    if (!hit) return;
    const pos = model.unit.pos.slice();
    pos[state.dims - 1] = hit.p;
    if (state.dims === 2 && hit.level !== model.unit.level) pos[0] = Math.floor((model.sizes[0][hit.level] - 1) / 2);
    state.unit = {level: hit.level, pos};
    diagram.focus();
    update();
  });
  diagram.addEventListener('keydown', diagramKey);
  diagram.addEventListener('mousemove', e => {
    const r = diagram.getBoundingClientRect(), hit = neuronAtPoint(e.clientX - r.left, e.clientY - r.top);
    if (!hit) return tip(null);
    const row = view.rows[hit.level], c = model.counts[view.axis][hit.level][hit.p];
    tip(e, `${row.name}[${hit.p}]: ${c} paths to ${describeTo()}${state.dims === 2 ? ' (along the columns)' : ''} · click to see its receptive field`);
  });
  diagram.addEventListener('mouseleave', () => tip(null));
  $('counts').addEventListener('mousemove', countsHover);
  $('counts').addEventListener('mouseleave', () => tip(null));
  $('ratio').addEventListener('mousemove', ratioHover);
  $('ratio').addEventListener('mouseleave', () => tip(null));
  $('rf-table').addEventListener('click', e => {
    const tr = e.target.closest('tr[data-level]');
    if (!tr) return;
    const l = Number(tr.dataset.level);
    state.unit = {level: l, pos: model.sizes.map(s => Math.floor((s[l] - 1) / 2))};
    update();
  });
  document.addEventListener('keydown', globalKey);
  window.addEventListener('hashchange', () => loadHash(location.hash));
  window.addEventListener('resize', () => { if (model) update(); });
  window.addEventListener('pagehide', writeHash);
}

function applySpec() {
  try {
    state.rows = parseSpec($('spec').value);
    state.sel = 0;
    state.unit = null;
    $('spec-error').textContent = '';
    $('spec').classList.remove('bad');
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    $('spec-error').textContent = e.message;
    $('spec').classList.add('bad');
    return;
  }
  renderRows();
  update();
}

function loadHash(hash) {
  try {
    const s = stateFromHash(hash);
    if (!s) return;
    setState(s);
    $('spec-error').textContent = '';
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    $('spec-error').textContent = `the address holds a configuration the explorer cannot draw: ${e.message}`;
    return;
  }
  renderRows();
  update();
}

/* move the clicked unit: dl levels up (positive) or down, dp positions along the drawn axis */
function moveUnit(dl, dp, dy = 0) {
  const u = model.unit, axis = state.dims - 1, level = Math.min(model.top, Math.max(0, u.level + dl));
  const pos = u.pos.slice();
  if (level !== u.level) {  /* the unit of the new row nearest to the old one's place */
    const rows = view.rows || diagramRows(axis), from = rows[u.level], to = rows[level];
    pos[axis] = Math.round((from.x0 + u.pos[axis] * from.jump - to.x0) / to.jump);
    if (state.dims === 2) pos[0] = Math.round(u.pos[0] * model.sizes[0][level] / model.sizes[0][u.level]);
  }
  pos[axis] += dp;
  if (state.dims === 2) pos[0] += dy;
  state.unit = {level, pos: pos.map((p, a) => Math.min(model.sizes[a][level] - 1, Math.max(0, p)))};
  update();
}

function diagramKey(e) {
  if (!model) return;
  const moves = {ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [1, 0], ArrowDown: [-1, 0]};
  if (e.shiftKey && state.dims === 2 && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
    moveUnit(0, 0, e.key === 'ArrowUp' ? -1 : 1);
  } else if (moves[e.key]) {
    moveUnit(...moves[e.key]);
  } else if (e.key === 'Home' || e.key === 'End') {
    const n = model.sizes[state.dims - 1][model.unit.level];
    moveUnit(0, (e.key === 'Home' ? 0 : n - 1) - model.unit.pos[state.dims - 1]);
  } else {
    return;
  }
  e.preventDefault();
}

/* keys that work anywhere outside a text field: + add a conv, - remove the last layer, p next padding */
function globalKey(e) {
  const t = e.target;
  if (!model && e.key !== '-' || e.ctrlKey || e.metaKey || e.altKey) return;
  if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
  if (e.key === '+' || e.key === '=') addRow('conv');
  else if (e.key === '-' && state.rows.length > 1) { state.rows.pop(); state.sel = Math.min(state.sel, state.rows.length - 1); renderRows(); update(); }
  else if (e.key === 'p') { state.padding = PADDING_NAMES[(PADDING_NAMES.indexOf(state.padding) + 1) % PADDING_NAMES.length]; update(); }
  else return;
  e.preventDefault();
}

function tip(e, s) {
  const el = $('tip');
  if (!e) { el.hidden = true; return; }
  el.textContent = s;
  el.hidden = false;
  el.style.left = `${Math.min(e.clientX + 14, window.innerWidth - el.offsetWidth - 8)}px`;
  el.style.top = `${e.clientY + 16}px`;
}

function countsHover(e) {
  if (!model) return;
  const r = $('counts').getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
  if (state.dims === 1 && view.curve) {
    const {box, n} = view.curve, i = Math.round((x - box.x) / box.w * n - 0.5);
    if (i < 0 || i >= n || y < box.y || y > box.y + box.h) return tip(null);
    return tip(e, `input ${i}: ${model.counts[0][0][i]} paths to ${describeTo()} · ${model.unitCounts[0][0][i]} to the clicked unit`);
  }
  if (state.dims === 2 && view.map) {
    const {box, cell, h, w} = view.map, cx = Math.floor((x - box.x) / cell), cy = Math.floor((y - box.y) / cell);
    if (cx < 0 || cy < 0 || cx >= w || cy >= h) return tip(null);
    return tip(e, `pixel (y ${cy}, x ${cx}): ${model.counts[0][0][cy] * model.counts[1][0][cx]} paths to ${describeTo()}`);
  }
  return undefined;
}

function ratioHover(e) {
  if (!model || !model.depth || !view.depth) return;
  const r = $('ratio').getBoundingClientRect(), {box} = view.depth, x = e.clientX - r.left;
  const L = Math.round((x - box.x) / box.w * (DEPTHS + 1));
  if (L < 1 || L > DEPTHS) return tip(null);
  const f = model.depth.exact[L - 1], law = model.depth.law.curve(L);
  tip(e, `L = ${L}: exact ${f ? `${fmt(f.value, 6)} = ${f.num}/${f.den}` : 'undefined'}`
         + (model.depth.law.kind !== 'numeric' ? ` · closed form ${fmt(law, 6)}` : ''));
}

/* ------------------------------------------------------------------ start */

function start() {
  const select = $('padding');
  PADDING_NAMES.forEach(p => select.append(option(p, p, false)));
  bindControls();
  const config = JSON.parse($('ew-config').textContent);
  setState(configFromObject(config));
  if (location.hash) {
    try {
      const s = stateFromHash(location.hash);
      if (s) setState(s);
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      $('spec-error').textContent = `the address holds a configuration the explorer cannot draw: ${e.message}`;
    }
  }
  renderRows();
  update();
}

window.edgewiseExplorer = {
  state, update, timings, loadHash, writeHash,
  /* the CSS-pixel point of a neuron of the diagram, relative to the viewport (for tests and scripts) */
  neuronAt(level, p) {
    const r = $('diagram').getBoundingClientRect(), row = view.rows[level];
    return {x: r.left + view.X(row, p), y: r.top + view.Y(level), cx: view.X(row, p), cy: view.Y(level)};
  },
};
document.addEventListener('DOMContentLoaded', start);
