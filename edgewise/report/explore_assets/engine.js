/* edgewise explorer, part 1 of 3: the arithmetic (no drawing, no DOM).
 *
 * Exact path counts of a chain of convolutions and pools along one axis, in BigInt, with the conventions of
 * edgewise.pathways (edgewise/_axis.py: Window.matrix, mirror; edgewise/nets.py: padding_amounts, PADDINGS).
 * A separable 2-D stack is two such axes: the count of pixel (y, x) is rows[y] * cols[x], because every layer
 * connects (o1, o2) to (i1, i2) by M1[o1, i1] * M2[o2, i2] taps and the selected units are a product too.
 * Receptive fields follow edgewise.geometry (AxisField.through / with_units), the depth curves
 * edgewise.theory (counts, center_edge_ratio, depth_law).
 *
 * Comments use the block form only: the page holds no double slash at all, so a test can check that it
 * references nothing outside itself.
 */
'use strict';

/* padding scheme -> [mode of out-of-image taps, amount]: edgewise.nets.PADDINGS */
const PADDINGS = {
  valid: ['zeros', 'none'], same: ['zeros', 'same'], full: ['zeros', 'full'], circular: ['circular', 'same'],
  reflect: ['reflect', 'same'], replicate: ['replicate', 'same'], symmetric: ['symmetric', 'same'],
};
const PADDING_NAMES = Object.keys(PADDINGS);
const KINDS = ['conv', 'maxpool', 'avgpool', 'gap', 'gmp'];
/* what the page accepts: a deep or wide request is refused with a message, never a frozen tab */
const LIMITS = {length: 4096, side: 1024, layers: 256, kernel: 257, stride: 64, dilation: 64, repeat: 256};
const DEPTHS = 64;  /* the ratio-vs-depth panel: L = 1 ... 64 */

class SpecError extends Error {}

/* (before, after) padding of one axis: valid 0, same (k-1)d split with the extra tap after, full (k-1)d each side */
function padAmounts(padding, k, d) {
  const total = (k - 1) * d, amount = PADDINGS[padding][1];
  if (amount === 'none') return [0, 0];
  if (amount === 'full') return [total, total];
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/* input index read by (possibly out-of-range) position x, or -1 for a constant zero: edgewise._axis.mirror */
function mirror(x, n, mode) {
  if (x >= 0 && x < n) return x;
  if (mode === 'zeros') return -1;
  if (mode === 'replicate') return Math.min(Math.max(x, 0), n - 1);
  if (mode === 'circular') return ((x % n) + n) % n;
  if (n === 1) return 0;
  if (mode === 'reflect') {  /* edge sample not repeated: ... 2 1 | 0 1 2 ... n-1 | n-2 ... */
    const period = 2 * (n - 1), y = ((x % period) + period) % period;
    return y < n ? y : period - y;
  }
  const period = 2 * n, y = ((x % period) + period) % period;  /* symmetric: edge repeated */
  return y < n ? y : period - 1 - y;
}

/* ------------------------------------------------------------------ spec strings */

/* Parse the subset of the edgewise.nets grammar the explorer draws: [N*]convK[/sS][/dD], [N*]maxpoolK[/sS],
 * [N*]avgpoolK[/sS], gap, gmp; and, beyond nets, a per-layer padding written convK@reflect. */
function parseSpec(text) {
  const src = String(text || '').trim();
  if (!src) throw new SpecError('empty spec: give layers such as 8*conv3 or 2*conv3, maxpool2, conv5/s2');
  const paren = src.match(/([A-Za-z]*)\s*\(/);
  if (paren) {
    throw new SpecError(`'${paren[1] || ''}(...)' is not supported by the explorer: it draws a chain of conv and `
                        + 'pool layers (residual blocks branch); give the layers one after another');
  }
  const rows = [];
  for (const raw of src.split(',')) {
    const part = raw.replace(/\s+/g, '');
    if (!part) throw new SpecError('an empty layer between two commas');
    let item = part, rep = 1;
    const star = part.match(/^(\d+)\*(.+)$/);
    if (star) {
      rep = Number(star[1]);
      item = star[2];
      if (rep < 1) throw new SpecError(`'${part}': the repeat count must be at least 1`);
    }
    let pad = null;
    const at = item.indexOf('@');
    if (at >= 0) {
      pad = item.slice(at + 1).toLowerCase();
      item = item.slice(0, at);
      if (!PADDINGS[pad]) throw new SpecError(`'${part}': unknown padding '${pad}'; choose one of ${PADDING_NAMES.join(', ')}`);
    }
    const low = item.toLowerCase();
    if (low === 'gap' || low === 'gmp') {
      if (pad) throw new SpecError(`'${part}': a global pool reads every position and takes no padding`);
      rows.push({kind: low, k: 1, s: 1, d: 1, rep, pad: null});
      continue;
    }
    const m = low.match(/^(conv|maxpool|avgpool|fc)(\d+)((?:\/[sdc]\d+)*)$/);
    if (!m) {
      throw new SpecError(`unknown layer '${item}': the explorer supports convK[/sS][/dD], maxpoolK[/sS], `
                          + 'avgpoolK[/sS], gap and gmp (e.g. 8*conv3 or 2*conv3, maxpool2, conv5/s2)');
    }
    if (m[1] === 'fc') {
      throw new SpecError(`'${item}' (a dense layer) is not supported by the explorer: its units have no position `
                          + 'to draw; leave it out, or use gap/gmp for a global pool');
    }
    const opts = {s: null, d: 1, c: null};
    for (const o of m[3].matchAll(/\/([sdc])(\d+)/g)) opts[o[1]] = Number(o[2]);
    if (opts.c !== null) {
      throw new SpecError(`'${item}': the explorer counts one channel per layer (width 1), so /c${opts.c} is not `
                          + 'supported; leave /c out');
    }
    if (m[1] !== 'conv' && opts.d !== 1) throw new SpecError(`'${item}': ${m[1]} takes no /d option`);
    if (m[1] !== 'conv' && pad) throw new SpecError(`'${part}': pools are not padded in edgewise spec nets`);
    const k = Number(m[2]), s = opts.s === null ? (m[1] === 'conv' ? 1 : k) : opts.s;
    if (k < 1 || s < 1 || opts.d < 1) throw new SpecError(`'${item}': sizes, strides and dilations must be at least 1`);
    rows.push({kind: m[1], k, s, d: opts.d, rep, pad});
  }
  checkRows(rows);
  return rows;
}

function checkRows(rows) {
  let layers = 0;
  for (const r of rows) {
    layers += r.rep;
    for (const [what, v, top] of [['kernel', r.k, LIMITS.kernel], ['stride', r.s, LIMITS.stride],
                                  ['dilation', r.d, LIMITS.dilation], ['repeat count', r.rep, LIMITS.repeat]]) {
      if (!Number.isInteger(v) || v < 1 || v > top) {
        throw new SpecError(`${itemText(r, null)}: the ${what} must be a whole number from 1 to ${top}`);
      }
    }
  }
  if (!rows.length) throw new SpecError('the stack has no layer: add one');
  if (layers > LIMITS.layers) throw new SpecError(`${layers} layers: the explorer draws at most ${LIMITS.layers}`);
}

/* one spec item, as edgewise.nets writes it (plus @padding where a row overrides the global padding) */
function itemText(r, padding) {
  let t = (r.rep > 1 ? `${r.rep}*` : '');
  if (r.kind === 'gap' || r.kind === 'gmp') return t + r.kind;
  t += r.kind + r.k;
  if (r.kind === 'conv') {
    if (r.s !== 1) t += `/s${r.s}`;
    if (r.d !== 1) t += `/d${r.d}`;
    if (r.pad && r.pad !== padding) t += `@${r.pad}`;
  } else if (r.s !== r.k) {
    t += `/s${r.s}`;
  }
  return t;
}

function specText(rows, padding) {
  return rows.map(r => itemText(r, padding)).join(', ');
}

/* ------------------------------------------------------------------ layers and sizes */

/* The layers one after another, named as edgewise.nets names modules (conv1, conv2, maxpool1, gap1, ...). */
function expand(rows, padding) {
  const ops = [], counters = {};
  rows.forEach((row, r) => {
    for (let j = 0; j < row.rep; j++) {
      counters[row.kind] = (counters[row.kind] || 0) + 1;
      const name = row.kind + counters[row.kind];
      if (row.kind === 'gap' || row.kind === 'gmp') {
        ops.push({name, kind: row.kind, row: r, global: true, k: 1, s: 1, d: 1, lo: 0, hi: 0, mode: 'zeros',
                  padding: null});
      } else if (row.kind === 'conv') {
        const p = row.pad || padding, [lo, hi] = padAmounts(p, row.k, row.d);
        ops.push({name, kind: 'conv', row: r, global: false, k: row.k, s: row.s, d: row.d, lo, hi,
                  mode: PADDINGS[p][0], padding: p});
      } else {  /* pools: never padded (nets builds MaxPool/AvgPool(k, s)) */
        ops.push({name, kind: row.kind, row: r, global: false, k: row.k, s: row.s, d: 1, lo: 0, hi: 0,
                  mode: 'zeros', padding: null});
      }
    }
  });
  return ops;
}

function opDetail(op) {
  if (op.global) return 'global pool';
  const parts = [`k${op.k}`];
  if (op.s !== 1) parts.push(`s${op.s}`);
  if (op.d !== 1) parts.push(`d${op.d}`);
  if (op.lo || op.hi || op.mode !== 'zeros') parts.push(`pad ${op.lo},${op.hi}` + (op.mode !== 'zeros' ? ` ${op.mode}` : ''));
  return parts.join(' ');
}

/* sizes[axis][level], level 0 the input; refuses what edgewise.nets (or PyTorch) refuses, with its words */
function layerSizes(ops, input) {
  const sizes = input.map(n => [n]);
  ops.forEach(op => {
    const before = sizes.map(s => s[s.length - 1]);
    const after = before.map(n => op.global ? 1 : Math.floor((n + op.lo + op.hi - (op.k - 1) * op.d - 1) / op.s) + 1);
    if (Math.min(...after) < 1) {
      throw new SpecError(`${op.name} gets a ${before.join('x')} input, too small for its ${(op.k - 1) * op.d + 1}-wide `
                          + `window` + (op.padding ? ` with padding '${op.padding}'` : '')
                          + ' (use fewer layers, a larger input or padding same)');
    }
    if (!op.global && op.lo === op.hi && op.lo > 0 && (op.mode === 'reflect' || op.mode === 'circular')) {
      /* nets passes equal pads to Conv's own padding_mode, and PyTorch refuses wider reflections / wraps */
      const bad = before.find(n => (op.mode === 'reflect' ? op.lo >= n : op.lo > n));
      if (bad !== undefined) {
        throw new SpecError(`${op.name}: PyTorch refuses ${op.mode} padding of ${op.lo} on an input of ${bad} positions `
                            + `(it needs ${op.mode === 'reflect' ? 'more than' : 'at least'} ${op.lo}); `
                            + 'use a larger input or fewer layers');
      }
    }
    after.forEach((n, a) => sizes[a].push(n));
  });
  return sizes;
}

/* ------------------------------------------------------------------ exact counts (BigInt) */

function zeros(n) { return new Array(n).fill(0n); }

/* Counts on the n_in inputs of one layer given counts w on its outputs: the adjoint A^T w of the integer matrix
 * A[o, i] = taps of output o that read input i (repeats count twice, as in Window.matrix). Interior windows are
 * added through a difference array along each residue class mod d; windows that touch the padding tap by tap. */
function adjoint(op, w, nIn) {
  const out = zeros(nIn);
  if (op.global) {  /* adaptive pooling to one unit: it reads every input once */
    return out.fill(w[0]);
  }
  const {k, s, d, lo, mode} = op, span = (k - 1) * d;
  const diff = zeros(nIn + d + 1);
  for (let o = 0; o < w.length; o++) {
    const v = w[o];
    if (v === 0n) continue;
    const a = o * s - lo;
    if (a >= 0 && a + span < nIn) {
      diff[a] += v;
      diff[a + k * d] = (diff[a + k * d] || 0n) - v;
    } else {
      for (let t = 0; t < k; t++) {
        const i = mirror(a + t * d, nIn, mode);
        if (i >= 0) out[i] += v;
      }
    }
  }
  for (let j = 0; j < nIn; j++) {
    if (j >= d) diff[j] += diff[j - d];
    if (diff[j] !== 0n) out[j] += diff[j];
  }
  return out;
}

/* a to= selector along one axis of the top layer: 'all' ones, 'center' floor((n-1)/2), else that position */
function selectAxis(to, n, pos) {
  if (to === 'all') return new Array(n).fill(1n);
  const out = zeros(n);
  out[to === 'center' ? Math.floor((n - 1) / 2) : pos] = 1n;
  return out;
}

/* counts[level] along one axis: paths from each unit of each level to the selected units of level `top` */
function countLevels(ops, sizes, top, sel) {
  const levels = new Array(top + 1);
  levels[top] = sel;
  for (let l = top - 1; l >= 0; l--) levels[l] = adjoint(ops[l], levels[l + 1], sizes[l]);
  return levels;
}

/* log10 of a non-negative BigInt (-Infinity for 0), without losing range beyond float64 */
function log10Big(x) {
  if (x <= 0n) return -Infinity;
  const f = Number(x);
  if (Number.isFinite(f)) return Math.log10(f);
  const bits = x.toString(16).length * 4, shift = BigInt(bits - 60);
  return Math.log10(Number(x >> shift)) + Number(shift) * Math.LOG10_2;
}

/* greatest common divisor of two non-negative BigInts */
function gcdBig(a, b) {
  while (b > 0n) [a, b] = [b, a % b];
  return a;
}

/* an exact ratio a/b of BigInts in lowest terms as {num, den, value, log10}; null when b is 0 */
function fraction(a, b) {
  if (b === 0n) return null;
  const g = gcdBig(a, b) || 1n;
  const l = log10Big(a) - log10Big(b);
  return {num: a / g, den: b / g, log10: l, value: Math.pow(10, l)};
}

/* centre/edge and centre/corner of a count map (edgewise.maps.anchor_points: centre floor((n-1)/2) per axis; 1-D edges
 * are the two ends; 2-D edges the four mid-edges and corners the four corners), each a mean, as exact fractions */
function anchorRatios(axes) {
  const at = (a, i) => axes[a][i], c = axes.map(v => Math.floor((v.length - 1) / 2));
  if (axes.length === 1) {
    const v = axes[0], ends = v[0] + v[v.length - 1];
    const r = fraction(2n * v[c[0]], ends);
    return {center: v[c[0]], edge: r, corner: r};
  }
  const [h, w] = axes.map(v => v.length), centre = at(0, c[0]) * at(1, c[1]);
  const edge = at(0, 0) * at(1, c[1]) + at(0, h - 1) * at(1, c[1]) + at(0, c[0]) * at(1, 0) + at(0, c[0]) * at(1, w - 1);
  const corner = (at(0, 0) + at(0, h - 1)) * (at(1, 0) + at(1, w - 1));
  return {center: centre, edge: fraction(4n * centre, edge), corner: fraction(4n * centre, corner)};
}

/* ------------------------------------------------------------------ receptive fields (edgewise.geometry) */

/* Per level: size, jump, start and cover of one axis. Starts and covers are kept doubled (start2 = 2*start) so
 * that the half pixels of even windows stay whole numbers. */
function axisFields(ops, sizes) {
  const n = sizes[0];
  let f = {size: 1, jump: 1, start2: 0, cover2: [0, 2 * (n - 1)], n};
  const out = [f];
  ops.forEach((op, l) => {
    const nIn = sizes[l], nOut = sizes[l + 1];
    /* a global pool is Window(n_in, n_in) (edgewise.geometry: Adaptive with an affine form) */
    const ext = op.global ? nIn : (op.k - 1) * op.d + 1, stride = op.global ? nIn : op.s, lo = op.lo;
    const size = f.size + (ext - 1) * f.jump, jump = f.jump * stride;
    const start2 = f.start2 + ((ext - 1) - 2 * lo) * f.jump;
    /* with_units: clip the cover to what these units' boxes span */
    const lo2 = start2 - (size - 1), hi2 = start2 + 2 * (nOut - 1) * jump + (size - 1);
    f = {size, jump, start2, cover2: [Math.max(f.cover2[0], lo2), Math.min(f.cover2[1], hi2)], n: nOut};
    out.push(f);
  });
  return out;
}

/* unclipped and clipped (lo, hi) input coordinates of unit p: ReceptiveField.box / clipped_box */
function unitBox(f, p) {
  const c2 = f.start2 + 2 * p * f.jump;
  const box = [(c2 - (f.size - 1)) / 2, (c2 + (f.size - 1)) / 2];
  return {box, clipped: [Math.max(box[0], f.cover2[0] / 2), Math.min(box[1], f.cover2[1] / 2)]};
}

/* ------------------------------------------------------------------ centre/edge against depth (edgewise.theory) */

/* exact centre/edge of L = 1..DEPTHS identical stride-1 layers on n positions: theory.counts / center_edge_ratio */
function depthCurve(padding, k, d, n) {
  const [lo, hi] = padAmounts(padding, k, d), mode = PADDINGS[padding][0], W = (k - 1) * d;
  const c = Math.floor((n - 1) / 2), out = [];
  if (lo + hi === W) {  /* every layer keeps n positions: the counts are (A^T)^L 1, one product per depth */
    const op = {k, s: 1, d, lo, mode, global: false};
    let w = new Array(n).fill(1n);
    for (let L = 1; L <= DEPTHS; L++) {
      w = adjoint(op, w, n);
      out.push(fraction(2n * w[c], w[0] + w[n - 1]));
    }
    return out;
  }
  /* valid or full: zero padding that never truncates a path, so a position's count is a window sum of g_L, the
   * number of tap sequences of L layers with each offset sum (the L-fold dilated box) */
  let g = [1n];
  for (let L = 1; L <= DEPTHS; L++) {
    const m = n + L * (lo + hi) - L * W;  /* output positions of L layers */
    if (m < 1) { out.push(null); continue; }
    g = boxConv(g, k, d);
    const prefix = [0n];
    for (const v of g) prefix.push(prefix[prefix.length - 1] + v);
    const at = i => {  /* sum of g[j] for j = i + L*lo - o, o = 0 .. m-1 */
      const top = Math.min(i + L * lo, g.length - 1), bottom = Math.max(i + L * lo - m + 1, 0);
      return top < bottom ? 0n : prefix[top + 1] - prefix[bottom];
    };
    out.push(fraction(2n * at(c), at(0) + at(n - 1)));
  }
  return out;
}

/* g convolved with k taps spaced d apart: h[j] = sum_t g[j - t*d], as a running sum per residue class */
function boxConv(g, k, d) {
  const W = (k - 1) * d, h = zeros(g.length + W), G = j => (j >= 0 && j < g.length ? g[j] : 0n);
  for (let j = 0; j < h.length; j++) h[j] = (j >= d ? h[j - d] : 0n) + G(j) - G(j - k * d);
  return h;
}

/* edgewise.theory.is_uniform: every input read by exactly k taps per layer */
function isUniform(padding, k, d) {
  if (k === 1 || padding === 'full' || padding === 'circular') return true;
  if (padding === 'symmetric') return ((k - 1) * d) % 2 === 0;
  if (padding === 'replicate') return (k - 1) * d === 2;
  return false;
}

/* edgewise.theory.depth_law: the closed form drawn beside the exact curve, or kind 'numeric' when none exists */
function depthLaw(padding, k, n, d) {
  if (isUniform(padding, k, d)) {
    return {kind: 'uniform', params: {ratio: 1}, curve: () => 1,
            formula: 'uniform: k^L paths at every position, ratio 1'};
  }
  if (padding === 'valid') {
    const maxDepth = Math.floor((n - 1) / (d * (k - 1))), exactDepth = Math.floor((n - 1) / (2 * d * (k - 1)));
    return {kind: 'exponential', params: {base: k, max_depth: maxDepth, exact_depth: exactDepth},
            curve: L => (L <= maxDepth ? Math.pow(k, L) : NaN),
            formula: `k^L = ${k}^L, exact for L ≤ ${exactDepth} (n ≥ 2L·d(k−1)+1); the exact ratio falls below it up to `
                     + `L = ${maxDepth}, where the output vanishes`};
  }
  if (padding === 'same' && k % 2) {
    const C = survivalConstant(k), limit = sameRatioLimit(k, n, d);
    return {kind: 'sqrt-then-saturating', params: {C, limit},
            curve: L => Math.max(1, Math.min(Math.sqrt(Math.PI * L) / C, limit)),
            formula: `√(πL)/C_k with C_${k} = ${fmt(C, 5)}, capped at the limit ${fmt(limit, 5)} (Perron vector)`};
  }
  if (padding === 'reflect' && k % 2 && d === 1 && (k - 1) / 2 <= n - 1 && n >= 2) {
    const limit = (k === 1 || n <= 2) ? 1 : 2;
    return {kind: 'bounded', params: {limit}, curve: () => limit, formula: `bounded: → ${limit} as L grows`};
  }
  const block = `conv${k}` + (d !== 1 ? `/d${d}` : '');
  return {kind: 'numeric', params: {}, curve: () => NaN,
          formula: 'no closed form for this layer (even kernel, dilated reflect, wide replicate...): exact counts '
                   + `only; where the ratio tends as L → ∞: edgewise scaling ${block} --padding ${padding} --input 1x${n}`};
}

function fmt(x, digits) {
  if (!Number.isFinite(x)) return x > 0 ? '∞' : String(x);
  return Number(x.toPrecision(digits)).toString();
}

/* Gauss-Legendre nodes and weights on [-1, 1] (Newton on the Legendre recurrence) */
const _gauss = {};
function gaussLegendre(m) {
  if (_gauss[m]) return _gauss[m];
  const x = new Float64Array(m), w = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let z = Math.cos(Math.PI * (i + 0.75) / (m + 0.5)), dp = 1;
    for (let it = 0; it < 100; it++) {
      let p0 = 1, p1 = z;
      for (let j = 2; j <= m; j++) { const p2 = ((2 * j - 1) * z * p1 - (j - 1) * p0) / j; p0 = p1; p1 = p2; }
      dp = m * (z * p1 - p0) / (z * z - 1);
      const dz = p1 / dp;
      z -= dz;
      if (Math.abs(dz) < 1e-16) break;
    }
    x[i] = z;
    w[i] = 2 / ((1 - z * z) * dp * dp);
  }
  return (_gauss[m] = {x, w});
}

/* The Sparre Andersen constant C_k (edgewise.theory.survival_constant, its 'integral' evaluation):
 * log C_k = -(1/2π) ∫_0^π log(1 - φ(θ)) dθ, φ the characteristic function of uniform steps in {-r..r}; the
 * log θ² singularity integrated in closed form, the smooth rest by 256-point Gauss-Legendre. */
const _survival = {};
function survivalConstant(k) {
  if (_survival[k]) return _survival[k];
  const r = (k - 1) / 2, s2 = (k * k - 1) / 12, {x, w} = gaussLegendre(256);
  let smooth = 0;
  for (let i = 0; i < x.length; i++) {
    const th = (x[i] + 1) * Math.PI / 2;
    let sum = 0;
    for (let s = 1; s <= r; s++) sum += Math.sin(s * th / 2) ** 2;
    smooth += w[i] * Math.PI / 2 * Math.log((4 / k) * sum / (s2 * th * th / 2));
  }
  const logC = -smooth / (2 * Math.PI) - 0.5 * Math.log(s2 / 2) - (Math.log(Math.PI) - 1);
  return (_survival[k] = Math.exp(logC));
}

/* Perron value and unit positive eigenvector of the m x m banded 0/1 matrix B (|i-j| <= r): sin for k = 3,
 * else inverse iteration on kI - B (positive definite: B's rows sum to at most k) by banded Cholesky. */
const _perron = {};
function perron(k, m) {
  const key = `${k},${m}`;
  if (_perron[key]) return _perron[key];
  const r = (k - 1) / 2;
  let v;
  if (k === 3) {
    v = Array.from({length: m}, (_, i) => Math.sin(Math.PI * (i + 1) / (m + 1)));
  } else if (m <= r + 1) {
    v = new Array(m).fill(1);
  } else {
    const chol = bandedCholesky(m, r, i => k - 1, () => -1);
    v = new Array(m).fill(1);
    for (let it = 0; it < 500; it++) {
      const next = chol.solve(v), norm = Math.hypot(...next);
      let change = 0;
      for (let i = 0; i < m; i++) { next[i] /= norm; change = Math.max(change, Math.abs(next[i] - v[i])); }
      v = next;
      if (change < 1e-15) break;
    }
  }
  const norm = Math.hypot(...v);
  v = v.map(x => x / norm);
  /* Rayleigh quotient v'Bv through prefix sums (B sums a window of 2r+1) */
  const prefix = [0];
  for (const x of v) prefix.push(prefix[prefix.length - 1] + x);
  let lambda = 0;
  for (let i = 0; i < m; i++) lambda += v[i] * (prefix[Math.min(m, i + r + 1)] - prefix[Math.max(0, i - r)]);
  if (k === 3) lambda = 1 + 2 * Math.cos(Math.PI / (m + 1));
  return (_perron[key] = {lambda, v});
}

function bandedCholesky(m, r, diag, off) {
  const L = Array.from({length: m}, () => new Float64Array(r + 1));  /* L[i][q] = L(i, i - r + q) */
  const get = (i, j) => (j < i - r || j > i ? 0 : L[i][j - i + r]);
  for (let i = 0; i < m; i++) {
    for (let j = Math.max(0, i - r); j <= i; j++) {
      let sum = i === j ? diag(i) : off(i, j);
      for (let p = Math.max(0, i - r); p < j; p++) sum -= get(i, p) * get(j, p);
      L[i][j - i + r] = i === j ? Math.sqrt(sum) : sum / get(j, j);
    }
  }
  return {
    solve(b) {
      const y = new Float64Array(m), x = new Array(m).fill(0);
      for (let i = 0; i < m; i++) {
        let s = b[i];
        for (let p = Math.max(0, i - r); p < i; p++) s -= get(i, p) * y[p];
        y[i] = s / get(i, i);
      }
      for (let i = m - 1; i >= 0; i--) {
        let s = y[i];
        for (let p = i + 1; p <= Math.min(m - 1, i + r); p++) s -= get(p, i) * x[p];
        x[i] = s / get(i, i);
      }
      return x;
    },
  };
}

/* edgewise.theory.same_ratio_limit: centre/edge of same padding as L -> ∞, a ratio of Perron-vector entries; with
 * dilation the residue classes are separate chains, weighted by (v·1) v[index] */
function sameRatioLimit(k, n, d) {
  if (k === 1 || n === 1) return 1;
  const c = Math.floor((n - 1) / 2);
  if (d === 1) {
    const {v} = perron(k, n);
    return v[c] / v[0];
  }
  const term = pos => {
    const m = Math.ceil((n - (pos % d)) / d), {lambda, v} = perron(k, m);
    return [lambda, v.reduce((a, b) => a + b, 0) * v[Math.floor(pos / d)]];
  };
  const [lc, tc] = term(c), ends = [term(0), term(n - 1)];
  const top = Math.max(...ends.map(e => e[0]));
  const close = (a, b) => Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b));
  if (!close(lc, top)) return lc > top ? Infinity : 0;
  const edge = ends.filter(e => close(e[0], top)).reduce((a, e) => a + e[1], 0) / 2;
  return tc / edge;
}
