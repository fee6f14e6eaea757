"""Facts before prose: the qualitative words the report and CLI use about a model, each decided from data by
one function, so a test can check every word against the numbers it describes.

- :func:`spread`: how unequal a path-count map is (max/min over *all* positions) and which positions are
  never read (zero paths); ``uniform`` means max = min with no unread position, never "ratio ≈ 1".
- :func:`correction`: what a remedy does to the centre/border ratio (uniform, periodic, over-corrects, …).
- :func:`period` and :func:`period_words`: the shift that leaves a map unchanged, when there is one: a map with no
  border effect, whose centre and border differ only by their places in a repeating pattern.
- :func:`law_words`: the depth law of a stack in words, from :func:`edgewise.theory.depth_law`.
- :class:`Words`: the vocabulary of a 1-D signal (samples, start/end) or a 2-D image (px, corners).
- :func:`anchor_words`: the clauses that say a centre/border ratio's mean has unread points in it.
- :func:`correlation_words`: the correlation of a sensitivity map with the path counts, or why none can be taken.
- :func:`even_spread` and :func:`narrower`: how widely the paths to the centre unit would spread if spread evenly
  over the positions it reads, and whether they spread less on every axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .report._format import LOG10_TIE  # (two counts this close in log10 are equal)

__all__ = ["spread", "map_spread", "period", "period_words", "correction", "law_words", "Words", "words_for",
           "unread_where", "sup", "and_list", "anchor_words", "even_spread", "narrower", "as_shown", "many",
           "correlation_words", "no_border", "silent_words", "scaled_words", "live_words",
           "theory_words", "weighted_words", "sentences"]


@dataclass(frozen=True)
class Words:
    """How to speak about positions of a 1-D signal or a 2-D image."""

    ndim: int

    @property
    def unit(self) -> str:
        return "samples" if self.ndim == 1 else "px"

    @property
    def border(self) -> str:
        """Where the ratios are taken: the ends of a signal, the corners of an image."""
        return "end" if self.ndim == 1 else "corner"


def words_for(shape) -> Words:
    """:class:`Words` for an input shape ``(C, L)`` or ``(C, H, W)``."""
    return Words(len(shape) - 1)


def _runs(indices) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for i in sorted(int(v) for v in indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def unread_where(mask: np.ndarray) -> str:
    """Where the ``True`` positions of a 1-D or 2-D mask lie, in words (``"the last 31 samples (225–255)"``)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return "nowhere"
    if mask.ndim == 1:
        n, parts = mask.size, []
        if len(_runs(np.flatnonzero(mask))) > MAX_RUNS:  # (the count is the caller's: "never reads 10 samples")
            return f"scattered between {np.flatnonzero(mask)[0]} and {np.flatnonzero(mask)[-1]}"
        for a, b in _runs(np.flatnonzero(mask)):
            size = b - a + 1
            span = f"{a}" if a == b else f"{a}–{b}"
            if a == 0 and b == n - 1:
                parts.append("every sample")
            elif a == 0:
                parts.append(f"the first {_how_many(size)}, {span}")
            elif b == n - 1:
                parts.append(f"the last {_how_many(size)}, {span}")
            else:
                parts.append(f"sample{'s' * (size > 1)} {span}")
        return ", ".join(parts)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    full_rows = [int(r) for r in rows if mask[r].all()]
    full_cols = [int(c) for c in cols if mask[:, c].all()]
    if len(full_rows) * mask.shape[1] + len(full_cols) * mask.shape[0] - len(full_rows) * len(full_cols) \
            == int(mask.sum()):  # whole rows and columns: say which
        said = [_lines("row", full_rows)] * bool(full_rows) + [_lines("column", full_cols)] * bool(full_cols)
        return " and ".join(said)
    return f"{_lines('row', rows)}, {_lines('column', cols)}"


#: runs of positions listed one by one; beyond it, a count and the span they lie in
MAX_RUNS = 4


def _scattered(word: str, values) -> str:
    """``31 rows scattered between 8 and 223``."""
    return f"{len(values)} {word}s scattered between {values[0]} and {values[-1]}"


def _lines(word: str, values) -> str:
    """``rows 223``, ``columns 0–3, 220–223``, or (more than :data:`MAX_RUNS` runs) :func:`_scattered`."""
    values = [int(v) for v in values]
    return _scattered(word, values) if len(_runs(values)) > MAX_RUNS else f"{word}s {_span(values)}"


def _how_many(size: int) -> str:
    """``sample`` (the last sample), ``31 samples``."""
    return "sample" if size == 1 else f"{size} samples"


def _span(values) -> str:
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in _runs(values))


def spread(counts=None, log10=None, exact: bool | None = None) -> dict:
    """How unequal a path-count map is, over all positions.

    Args:
        counts: the counts (exact integers, or floats); log10: their base-10 logarithms (−inf where zero).
            Either may be omitted. exact: whether ``counts`` are exact (default: integers, or floats below 2⁵³).

    Returns:
        ``max_over_min`` (over the positions that are read; 1.0 exactly when they are all equal),
        ``log10_max_over_min``, ``unread`` (positions with no path), ``positions``, ``unread_where`` (words),
        ``uniform`` (every position read and max = min), ``unread_anchors`` (how many of the centre, edge and
        corner points of :func:`edgewise.maps.anchor_points`, whose means the centre/border ratios divide, are
        unread), ``period`` (:func:`period` of a map that reads every position: a list per axis, or None).
    """
    from .maps import anchor_points

    if log10 is None:
        with np.errstate(divide="ignore"):
            log10 = np.log10(np.asarray(counts, dtype=np.float64))
    log10 = np.asarray(log10, dtype=np.float64)
    zero = ~np.isfinite(log10) & (log10 < 0)
    read = log10[~zero]
    out = {"positions": int(log10.size), "unread": int(zero.sum()), "unread_where": unread_where(zero),
           "unread_anchors": {k: sum(bool(zero[p]) for p in points) for k, points in anchor_points(zero.shape).items()}}
    if read.size == 0:
        return {**out, "max_over_min": math.nan, "log10_max_over_min": math.nan, "uniform": False, "period": None}
    if counts is not None:
        c = np.asarray(counts)
        vals = c[~zero]
        if exact is None:
            exact = c.dtype == object or np.issubdtype(c.dtype, np.integer) or \
                (np.issubdtype(c.dtype, np.floating) and float(np.max(np.abs(vals))) < 2.0 ** 53
                 and bool(np.all(vals == np.round(vals))))
    d = float(read.max() - read.min())
    ratio = 10.0 ** d if d < 308 else math.inf
    if counts is not None and exact:
        hi, lo = max(vals.tolist()), min(vals.tolist())
        equal = hi == lo
        if hi / lo < 1e300:
            ratio = float(Fraction(hi) / Fraction(lo)) if not equal else 1.0
    else:
        equal = d < LOG10_TIE
    uniform = bool(equal and not zero.any())
    return {**out, "max_over_min": 1.0 if equal else ratio, "log10_max_over_min": 0.0 if equal else d,
            "uniform": uniform,
            "period": None if uniform or zero.any() else period(log10, counts if exact else None)}


def _shift_equal(log10: np.ndarray, counts, shift: int, axis: int) -> bool:
    if counts is not None:
        return bool(np.all(counts == np.roll(counts, shift, axis)))
    other = np.roll(log10, shift, axis)
    with np.errstate(invalid="ignore"):
        return bool(np.all((log10 == other) | (np.abs(log10 - other) < LOG10_TIE)))


def period(log10: np.ndarray, counts=None) -> list[int] | None:
    """The smallest shift along each axis that leaves a map unchanged (wrapping round), when every axis has one
    shorter than itself: the counts then depend only on each position's place in a pattern that repeats (a
    strided net with circular padding: every 8th sample alike), and the border is no different from any other
    place. None when some axis has none, or the map is uniform (period 1 everywhere). ``counts``: the exact counts,
    compared exactly (else ``log10`` within :data:`LOG10_TIE`)."""
    log10 = np.asarray(log10, dtype=np.float64)
    counts = None if counts is None else np.asarray(counts)
    out = []
    for axis, n in enumerate(log10.shape):
        # the shifts that leave a cyclic sequence unchanged are the multiples of the smallest, which divides n
        step = next((d for d in range(1, n) if n % d == 0 and _shift_equal(log10, counts, d, axis)), n)
        if step == n and n > 1:
            return None
        out.append(step)
    return out if max(out, default=1) > 1 else None


def period_words(p: list[int], unit: str) -> str:
    """``repeat every 8 samples``, ``repeat every 32 px down and across``, ``repeat every 4 px down and 8 px
    across``, ``repeat every 8 px across (the same down each column)``: a map's :func:`period` in words."""
    if len(p) == 1:
        return f"repeat every {many(p[0], unit)}"
    down, across = p[-2:]
    if down == across:
        return f"repeat every {down} {unit} down and across"
    if down == 1:
        return f"repeat every {across} {unit} across (the same down each column)"
    if across == 1:
        return f"repeat every {down} {unit} down (the same along each row)"
    return f"repeat every {down} {unit} down and {across} {unit} across"


def no_border(period: list[int], unit: str, names=None, counts: str = "its counts") -> str:
    """``no border effect: its counts repeat every 8 samples`` (``counts``: the subject), or, with ``names``,
    ``full and circular leave no border effect: their counts repeat every 8 samples``."""
    if names is None:
        return f"no border effect: {counts} {period_words(period, unit)}"
    one = len(names) == 1
    return f"{and_list(names)} leave{'s' * one} {no_border(period, unit, counts='its counts' if one else 'their counts')}"


def map_spread(paths) -> dict:
    """:func:`spread` of a :class:`edgewise.PathCounts` (exact where its counts are)."""
    if paths.exact:
        return spread(paths.counts, paths.log10, exact=True)
    return spread(paths.counts if paths.scale == 0 else None, paths.log10)


def correction(ratio: float, s: dict) -> str:
    """One word for a map with centre/border ``ratio`` and :func:`spread` ``s``: ``uniform``, ``unread``
    (some positions have no path at all), ``periodic`` (no border effect: the counts repeat, see :func:`period`;
    the centre/border ratio then only compares two places in the pattern), ``over-corrects`` (the border gets more
    paths than the centre), ``balanced at the anchors`` (centre = border but positions still differ) or
    ``centre-heavy``."""
    if s["uniform"]:
        return "uniform"
    if s["unread"]:
        return "unread"
    if s.get("period"):
        return "periodic"
    if ratio is not None and math.isfinite(ratio) and ratio < 1:
        return "over-corrects"
    if ratio == 1:
        return "balanced at the anchors"
    return "centre-heavy"


def law_words(law) -> str:
    """A :class:`edgewise.theory.DepthLaw` in words with its key number."""
    p = law.params
    if law.kind == "uniform":
        return "exactly uniform at every depth"
    if law.kind == "exponential":
        return f"exponential: centre/{'edge'} grows like {p['base']}^{{L}}"
    if law.kind == "sqrt-then-saturating":
        return (f"like √(πL)/{p['C']:.3g} (√L growth), saturating at {p['limit']:.3g}"
                if math.isfinite(p["limit"]) else f"like √(πL)/{p['C']:.3g} (√L growth)")
    if law.kind == "bounded":
        return f"bounded, tending to {float(p['limit']):.3g}"
    if "limit" in p:
        return (f"no closed form (exact counts only), tending to {float(p['limit']):.3g} as L → ∞ (the Perron vector "
                "of one layer's matrix)")
    return "no closed form (exact counts only)"


def sup(text: str, html: bool = True) -> str:
    """``^{…}`` marks in ``text`` as HTML superscripts (or left as ``^…`` for plain text)."""
    import re

    return re.sub(r"\^\{([^{}<>]{1,24})\}", (r"<sup>\1</sup>" if html else r"^\1"), text)


def and_list(items) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def anchor_words(unread: dict, border: str, mark=lambda text, claim: text, key: str = "corner",
                 n: int | None = None) -> list[str]:
    """The clauses that say a centre/border ratio divides by a mean with unread points in it, from a map's
    ``unread_anchors`` (:func:`spread`): ``["its centre has no path", "3 of its 4 corners have no path, zeros in
    the ratio's mean"]``; ``border``: ``corner`` or ``end`` (the ``key`` points of ``unread``, ``n`` of them: an
    image's 4 corners, a signal's 2 ends by default); ``mark(text, claim)`` wraps the part a claim checker reads
    back (``unread-centre``, ``unread-corners``)."""
    from .maps import anchor_count

    parts = [mark("its centre has no path", "unread-centre")] if unread.get("center") else []
    k = unread.get(key)
    if k:
        n = n or anchor_count(2 if border == "corner" else 1)
        parts.append(mark(f"{k} of its {n} {border}s", "unread-corners")
                     + (" has" if k == 1 else " have") + " no path, zeros in the ratio's mean")
    return parts


def even_spread(rf_size, spatial, global_via) -> list[float]:
    """Per axis, the standard deviation √((n² − 1)/12) of positions spread evenly over the ``n`` a unit reads:
    those its receptive field (``rf_size``) covers of the input's ``spatial`` sizes, or all of them where it reads every
    position (``global_via``: the layer through which it does, or None)."""
    return [math.sqrt((n * n - 1) / 12) for n in
            (int(m) if global_via else int(min(size, m)) for size, m in zip(rf_size, spatial))]


def narrower(sigma, even, by: float = 0.1) -> bool:
    """Whether the spread ``sigma`` is narrower than ``even`` on every axis by a tenth (``by``) or more: the
    measure of "only" (RegNet-Y's 36.4 px against an even 36.9 px is not "only")."""
    return all(s <= (1 - by) * e for s, e in zip(sigma, even))


def as_shown(ratio: float) -> float:
    """A ratio as the page writes it, to three significant figures (``9.0001`` and ``9.00006`` are both ``9×``): two
    ratios are compared in words only as far as a reader can see them differ."""
    return float(f"{ratio:.3g}") if math.isfinite(ratio) else ratio


def many(n: int, unit: str) -> str:
    """``1 sample``, ``31 samples``, ``447 px``: a count of positions in a unit's words."""
    return f"{n} {unit[:-1] if n == 1 and unit.endswith('s') else unit}"


def correlation_words(r: float, uniform: bool, subject: str = "its log map", num=lambda text: text,
                      claim=lambda text: text) -> str:
    """``"; its log map correlates with the log path counts at r = 0.74"``, or why no r can be taken: the counts are
    the same at every position (``uniform``: timm's ViT), or one map is constant where both are positive. ``num``
    marks the r shown, ``claim`` the words that say the counts are uniform (the report's checker reads both)."""
    if math.isfinite(r):
        return f"; {subject} correlates with the log path counts at r = {num(format(r, '.2f'))}"
    if uniform:
        return f"; {claim('the path counts are the same at every position')}, so no correlation with them can be taken"
    return (f"; no correlation of {subject} with the log path counts can be taken (one is constant where both are "
            "positive)")


def short_list(items, most: int = 4) -> str:
    """:func:`and_list` of at most ``most`` items; beyond, the first three and how many more."""
    items = [str(i) for i in items]
    return and_list(items) if len(items) <= most else f"{', '.join(items[:3])} and {len(items) - 3} more"


def silent_words(zero: int, total: int, unit: str, scales: list[str], mark=lambda text, claim: text,
                 name=lambda n: n, over: str = "initialisation") -> str:
    """What starts silent in a Monte-Carlo sensitivity, from its data: ``zero`` of ``total`` positions whose mean
    squared gradient is exactly 0 (so in every initialisation), and the normalisation layers ``scales`` that every
    initialisation starts at weight 0 (:func:`edgewise._init.zero_scales`); "" when neither. ``mark(text,
    claim)`` wraps the counts a checker reads back (``silent``, ``zero-scales``), ``name`` each layer name; ``over``:
    what the mean is over (``"input"`` for the model's own weights)."""
    parts = []
    if zero:
        parts.append(f"{mark(f'{zero} of {total}', 'silent')} {unit} ({100 * zero / total:.1f} %) have exactly zero "
                     f"sensitivity: no {over}'s gradient reaches them")
    if scales:
        k = len(scales)
        layers = f"{mark(str(k), 'zero-scales')} normalisation layer{'s' * (k != 1)}"
        parts.append((f"its builder starts {layers} at weight 0 in each initialisation" if over == "initialisation"
                      else f"its weights hold {layers} at weight 0")
                     + f" ({short_list([name(n) for n in scales])}), so {'each' if k != 1 else 'it'} outputs its bias "
                       "whatever its input")
    return "; ".join(parts)


def theory_words(layers, num=lambda text, field: text) -> str:
    """The linear-network theory in words, and what it says of a model whose paths pass ``layers`` = (fewest,
    most, all) weighted layers (:meth:`edgewise.graph.Graph.path_layers`); ``num(text, field)`` marks each count
    (``fewest``, ``most``, ``all``)."""
    lo, hi, total = layers
    text = ("In a linear network whose weights are independent with mean 0, the expected squared gradient from input "
            "p to an output unit is the sum, over the paths from p, of the product of the weight variances along each "
            "path: σ^{2L} × paths(p) where every path passes L layers of variance σ² (tested exactly in edgewise's "
            "suite). ")
    if lo == hi == total:
        return text + (f"Every path of this model passes the same {num(str(total), 'all')} weighted layers "
                       "(convolutions and Linear layers), so for its linear version, where each layer's weights share "
                       "one variance, that expectation is proportional to the path counts.")
    return text + (f"This model's paths pass {num(str(lo), 'fewest')} to {num(str(hi), 'most')} of its "
                   f"{num(str(total), 'all')} weighted layers (convolutions and Linear layers), so they do not all "
                   "weigh the same, and for its linear version that expectation need not follow the path counts.")


def scaled_words(small: dict, mark=lambda text, claim: text, name=lambda n: n, over: str = "initialisation") -> str:
    """What the parameters that multiply a layer's output and start tiny do (``small``: name → largest magnitude,
    :func:`edgewise.live.small_scales`; a layer scale of 1e-6), or "". ``mark(text, claim)`` wraps what a checker
    reads back (``small-scales``: how many, ``small-scale-max``: the largest); ``over``: ``"initialisation"`` or
    ``"input"`` (the model's own weights)."""
    if not small:
        return ""
    k, top = len(small), max(small.values())
    where = "in every initialisation" if over == "initialisation" else "in its weights"
    return (f"{where}, {mark(str(k), 'small-scales')} parameter{'s' * (k != 1)} that multipl{'y' if k != 1 else 'ies'} "
            f"a layer's output ({short_list([name(n) for n in small])}) {'are' if k != 1 else 'is'} at most "
            f"{mark(format(top, '.3g'), 'small-scale-max')} in magnitude, so a gradient through "
            f"{'any of them' if k != 1 else 'it'} is scaled by that or less")


def live_words(live: dict | None, unit: str, mark=lambda text, claim: text, num=lambda text: text) -> str:
    """What the paths that avoid the layers that start silent say (:func:`edgewise.live.live_facts` ``live``): how
    many positions have none, whether those are exactly the positions of zero sensitivity, and the correlation
    of the sensitivity with the paths left; "" without ``live``. ``mark(text, claim)`` wraps what a checker reads
    back (``no-path``, ``same-zeros``), ``num`` the r shown."""
    if not live:
        return ""
    n, total = live["no_path"], live["positions"]
    them = "them" if len({c.split("#")[0] for c in live["cut"]}) != 1 else "it"  # (a layer called twice: one)
    if n:
        text = (f"counting only the paths that avoid {them}, {mark(f'{n} of {total}', 'no-path')} {unit} "
                f"{'has' if n == 1 else 'have'} none")
        if live["same_zeros"]:
            text += f": {mark('exactly the positions whose sensitivity is zero', 'same-zeros')}"
        elif live["zero_sensitivity"]:
            text += f", against {live['zero_sensitivity']} with zero sensitivity"
    elif live.get("uniform"):
        text = (f"counting only the paths that avoid {them}, "
                f"{mark(f'the same number reach every {_one(unit)} (max = min)', 'live-uniform')}")
    else:
        text = f"every {_one(unit)} has a path that avoids {them}"
    r = live["log_correlation"]
    if math.isfinite(r):
        text += (f"; the sensitivity's log map correlates with those paths' log counts at r = "
                 f"{num(format(r, '.2f'))}")
    return text


def _one(unit: str) -> str:
    """``px``, ``sample``: the unit of one position (:func:`many`'s word for one, without the number)."""
    return many(1, unit).partition(" ")[2]


def zero_ends(ratio, where: str) -> tuple[str, str] | None:
    """Words for a centre/border ratio with an end exactly 0, and which end (``"both"``, ``"centre"``, ``"border"``):
    0/0 (NaN), 0 or ∞; None for a ratio to quote (both ends positive). ``where``: ``corner`` (an image's 4, averaged)
    or ``end`` (a signal's 2)."""
    if isinstance(ratio, (int, float)) and ratio > 0 and math.isfinite(ratio):
        return None
    n = 4 if where == "corner" else 2
    if isinstance(ratio, (int, float)) and ratio == 0:
        return f"exactly 0 at the centre and positive on average over the {n} {where}s", "centre"
    if isinstance(ratio, (int, float)) and ratio == math.inf:
        return f"exactly 0 at every {where} and positive at the centre", "border"
    return f"exactly 0 at the centre and at every {where}", "both"



def sentences(*texts: str) -> str:
    """Each non-empty text as a sentence: capitalised, a full stop, a space."""
    return "".join(f"{t[0].upper()}{t[1:]}. " for t in texts if t)


def weighted_words(weighted: dict | None, unit: str, key: str, mark=lambda text, claim: text,
                   refused: str | None = None, escape=lambda text: text, interval=None,
                   num=lambda text, end: text) -> str:
    """What the weighted paths say beside a Monte-Carlo sensitivity (:func:`edgewise.weighted.weighted_facts`
    ``weighted``): their centre/``key`` ratio against the measured one, where either is zero, and how their log
    maps correlate; without them, why not (``refused``, passed through ``escape``), or "". ``mark(text, claim)``
    wraps what a checker reads back (``weighted-inits``, ``weighted-all-zero``, ``weighted-uniform``,
    ``weighted-ratio``, ``measured-ratio``, ``weighted-zeros``, ``weighted-same-zeros``, ``weighted-r``);
    ``interval``: the measured ratio's 95 % interval (lo, hi), said beside it, each end through ``num(text, 0|1)``."""
    from .report._format import fmt_ratio

    if not weighted:
        return f"weighted paths are not computed for this model: {escape(refused)}" if refused else ""
    head = (f"weighting each path by its layers' mean squared weights and by the squared slopes, gates and scales "
            f"along it (the expectation over fresh weights with those held, at "
            f"{mark(str(weighted['n_inits']), 'weighted-inits')} of the same initialisations) gives ")
    if weighted["uniform"] and weighted["zeros"]:  # (a head of zero weights: every path weighs 0)
        return head + mark("zero at every position", "weighted-all-zero") + (
            ", as the sensitivity is" if weighted["same_zeros"] else
            f" (the sensitivity at {many(weighted['measured_zeros'], unit)})")
    if weighted["uniform"]:
        return head + mark("the same value at every position (max = min)", "weighted-uniform")
    text = (head + f"a map whose centre/{key} ratio is {mark(fmt_ratio(weighted['log10_ratio']), 'weighted-ratio')}, "
            f"against {mark(fmt_ratio(weighted['measured_log10_ratio']), 'measured-ratio')} measured")
    if interval is not None and all(0 < v < math.inf for v in interval):
        ends = [num(fmt_ratio(math.log10(v)), end) for end, v in enumerate(interval)]
        text += f" (95 % interval {ends[0]} … {ends[1]})"
    zeros, measured = weighted["zeros"], weighted["measured_zeros"]
    if zeros or measured:
        text += (f", zero at {mark(f'exactly the {many(zeros, unit)}', 'weighted-same-zeros')} where the "
                 "sensitivity is zero" if weighted["same_zeros"] else
                 f", zero at {mark(many(zeros, unit), 'weighted-zeros')} (the sensitivity at {many(measured, unit)})")
    r = weighted["log_correlation"]
    return text + (f", and whose log correlates with the sensitivity's at r = {mark(format(r, '.2f'), 'weighted-r')}"
                   if math.isfinite(r) else
                   ", and no correlation of the log maps can be taken (one is constant where both are positive)")
