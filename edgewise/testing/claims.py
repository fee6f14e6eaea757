"""Read a written report back and check every claim on it against the data saved beside it.

Independent of :mod:`edgewise.facts` (which decides the words): this module re-derives each fact from the saved
maps (``data/MODEL/*.npy``) and tables, so a wrong word on the page is caught even if the facts layer is wrong.

- Every ``<span class="num" data-field="F">`` of the verdict shows the value of field ``F`` of
  ``data/MODEL/verdict.json`` (to the digits shown).
- Every ``<span class="claim" data-claim="C" data-of="X">`` is true of X's saved map or numbers: ``uniform``
  (max = min, every position read), ``unread`` (some position has no path), ``over-corrects`` (centre/border
  ratio below 1), ``flat``/``changes`` (a pool layer keeps/changes the per-layer ratio), ``law:KIND`` (the
  depth law :func:`edgewise.theory.depth_law` gives that padding), ``unread-centre`` and ``unread-corners`` (the
  centre, or the number of corners shown, have no path in X's map), ``zero-gradient`` (the saved sensitivity map
  is zero everywhere) and ``zero-readout`` (the saved result names layer X as its readout, with the bias alone
  in every initialisation), ``silent`` ("N of M": N of the saved sensitivity map's M positions are exactly zero),
  ``zero-scales`` (the saved result names that many normalisation layers started at weight 0), ``no-path`` ("N of
  M": N of the M positions of the saved count of the paths that avoid those layers have none), ``same-zeros``
  (those are exactly the positions of zero sensitivity), ``live-uniform`` (that count is the same at every
  position), ``small-scales`` and ``small-scale-max`` (how many parameters that multiply a layer's output the
  saved result names as starting tiny, and the largest of them as shown), ``zero-at`` (the
  saved sensitivity map is 0 at the centre, at every corner, or both, as ``of`` says), ``more-even``/``less-even``/``as-even`` (X's map spreads its counts less, more or as
  much as the model's: max/min over positions all read, to the three figures shown), ``periodic`` (each of the
  comma-separated X's map, every position read, repeats with the period the words give, wrapping round, and is
  not uniform: no border effect); of the weighted paths beside the sensitivity (the saved ``weighted_pathways``
  and ``sensitivity_init`` maps): ``weighted-inits`` (its initialisations), ``weighted-all-zero`` (zero everywhere),
  ``weighted-uniform`` (max = min),
  ``weighted-ratio`` and ``measured-ratio`` (each map's centre/border ratio, as shown), ``weighted-zeros`` and
  ``weighted-same-zeros`` (its zeros: that many, and, for the second, exactly where the sensitivity's are) and
  ``weighted-r`` (the correlation of the two log maps, as shown).
- No correlation with the path counts is quoted where they are uniform (max = min): it would be rounding noise.
- Figure captions: each variant named as uniform is uniform, each said to never read N positions has N
  unread, each said to repeat has that period, each said to over-correct has ratio < 1 and no period; and every
  variant with unread positions, or whose counts repeat, is said to.
- Remedy tables' notes: each variant said to leave its centre or some corners without a path does, and every
  variant that does is said to.
- The perturbation experiment: a model has its figure or a note saying why it was not run, never both; the
  note's numbers are those of ``data/MODEL/perturbation_skipped.json``, its positions those of the saved
  sensitivity map, its forward passes one per sign pattern and one per position (or the share of a pass its
  forward cone takes), its totals their product with one pass's operations and layer outputs, and the limits it
  says are passed exactly those the totals pass.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import numpy as np

__all__ = ["check_report", "check_verdict", "check_trained", "check_captions", "check_anchor_notes",
           "check_remedy_table", "check_remedies_output", "check_perturbation_note"]

_SPAN = re.compile(r'<span class="(num|claim)" data-(?:field|claim)="([^"]*)"(?: data-of="([^"]*)")?>(.*?)</span>',
                   re.S)
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _field(doc: dict, path: str):
    """The value at a dotted ``path`` of ``doc``; a `` (inverse)`` suffix means 1/value, `` (points)`` 100×."""
    path, _, unit = path.partition(" (")
    value = doc
    for part in _split(path, doc):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return {"inverse)": lambda v: 1 / v, "points)": lambda v: 100 * v}.get(unit, lambda v: v)(value)


def _split(path: str, doc: dict) -> list[str]:
    """A dotted path's keys; keys may hold dots themselves (task names, "border-digits:same"), so the longest key
    present at each level wins."""
    parts, keys, value = path.split("."), [], doc
    while parts:
        for n in range(len(parts), 0, -1):
            key = ".".join(parts[:n])
            if (isinstance(value, dict) and key in value) or (isinstance(value, list) and n == 1):
                keys.append(key)
                value = value[int(key)] if isinstance(value, list) else value[key]
                parts = parts[n:]
                break
        else:
            raise KeyError(path)
    return keys


def _close(shown: str, value: float) -> bool:
    """Whether ``shown`` (as printed, e.g. '3.33', '6.99e+05', '12') is ``value`` to the digits shown."""
    x = float(shown)
    if "e" in shown:
        mantissa = shown.split("e")[0]
        digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
        return math.isclose(x, value, rel_tol=0.51 * 10 ** -digits + 1e-12)
    digits = len(shown.split(".")[1]) if "." in shown else 0
    # three significant figures (ratio_text) or the decimals shown, whichever is looser
    return abs(x - value) <= max(0.51 * 10 ** -digits, 0.006 * abs(value)) + 1e-12


def _check_number(text: str, value) -> bool:
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    shown = _NUMBER.findall(text.replace("−", "-"))
    values = value if isinstance(value, list) else [value]
    if text.strip() == "∞":  # (a ratio over a border that is exactly 0)
        return len(values) == 1 and isinstance(values[0], (int, float)) and values[0] == math.inf
    if "%" in text:
        values = [100 * v for v in values]
    if len(shown) != len(values):
        return False
    return all(_close(s, float(v)) for s, v in zip(shown, values))


def _map(data: Path, of: str, stem: str = "remedies") -> np.ndarray | None:
    """The saved log10 map of ``of`` (a variant, or ``model``); ``stem``: the comparison's file stem (the report's
    ``remedies``, ``edgewise remedies --out``'s ``remedy_comparison``)."""
    path = data / ("pathways.log10.npy" if of == "model" else f"{stem}.log10_{of}.npy")
    if not path.exists() and of != "model":  # the model's own padding is the original
        path = data / f"{stem}.log10_original.npy"
    return np.load(path) if path.exists() else None


def _uniform(log10: np.ndarray) -> bool:
    return bool(np.isfinite(log10).all() and float(log10.max() - log10.min()) < 1e-12)


def _unread(log10: np.ndarray) -> int:
    return int((~np.isfinite(log10)).sum())


def _period(log10: np.ndarray) -> list[int] | None:
    """The smallest wrap-around shift per axis that maps ``log10`` onto itself (to 1e-12), or None when an axis
    longer than 1 has none shorter than itself, or every shift is 1 (a uniform map)."""
    level = np.where(np.isfinite(log10), log10, -1e300)
    shifts = []
    for axis, n in enumerate(level.shape):
        same = [d for d in range(1, n + 1) if n % d == 0 and
                float(np.max(np.abs(np.roll(level, d, axis) - level), initial=0.0)) <= 1e-12]
        shifts.append(same[0])
    if any(d == n > 1 for d, n in zip(shifts, level.shape)) or all(d == 1 for d in shifts):
        return None
    return shifts


_PERIOD = re.compile(r"repeat every (\d+) (?:px|samples?)(?: down and (\d+) px across| (down and across|across|down))?")


def _said_period(text: str) -> list[int] | None:
    """The period that words of :func:`edgewise.facts.period_words` give, or None."""
    m = _PERIOD.search(html.unescape(re.sub(r"<[^>]+>", "", text)))
    if m is None:
        return None
    first, across, how = m.groups()
    if across:
        return [int(first), int(across)]
    return {None: [int(first)], "down and across": [int(first)] * 2, "across": [1, int(first)],
            "down": [int(first), 1]}[how]


def _rows(data: Path, stem: str = "remedies") -> dict:
    doc = json.loads((data / f"{stem}.json").read_text())
    return {r["name"]: r for r in doc["rows"]}


def _ratio(row: dict) -> float:
    """A row's centre/border ratio (JSON keeps a NaN, 0/0 where neither has a path, as the string "nan")."""
    return float(row["center_corner_ratio"] if row.get("center_corner_ratio") is not None
                 else row["center_edge_ratio"])


def _check_numbers(block: str, doc: dict, label: str) -> list[str]:
    problems = []
    for kind, key, _, text in _SPAN.findall(block):
        if kind != "num":
            continue
        try:
            value = _field(doc, key)
        except (KeyError, IndexError, TypeError, ValueError):
            problems.append(f"{label}: {text!r} names {key}, which the data does not have")
            continue
        if not _check_number(text, value):
            problems.append(f"{label}: shows {html.unescape(text)!r} for {key} = {value!r}")
    return problems


def check_trained(paragraph: str, numbers: dict) -> list[str]:
    """Problems with the verdict's trained-networks paragraph against ``report.json``'s numbers."""
    return _check_numbers(paragraph, numbers, "trained networks")


def check_verdict(block: str, data: Path) -> list[str]:
    """Problems with one model's verdict HTML ``block`` against ``data`` (its ``data/MODEL`` folder)."""
    facts = json.loads((data / "verdict.json").read_text())
    problems = _check_numbers(block, facts, data.name)
    # (a ratio is read from the data in a number span, or in a claim whose check reads it from the saved maps)
    bare = re.sub(r'<span class="num"[^>]*>.*?</span>|<span class="claim" data-claim="(?:weighted|measured)-ratio"'
                  r'[^>]*>.*?</span>', "", block, flags=re.S)
    for m in re.finditer(r"\d+(?:\.\d+)?(?:e[-+]\d+)?×(?!\d)", html.unescape(re.sub(r"<[^>]+>", " ", bare))):
        problems.append(f"{data.name}: a ratio {m.group(0)} not read from verdict.json")
    if 'data-field="q4.correlation"' in block and _uniform(np.load(data / "pathways.log10.npy")):
        problems.append(f"{data.name}: a correlation with the path counts quoted where they are uniform (max = min)")
    rows = _rows(data)
    for kind, key, of, text in _SPAN.findall(block):
        if kind == "claim":
            problems += [f"{data.name}: {p}" for p in _check_claim(key, of, data, rows, facts, text)]
    return problems


def _check_claim(claim: str, of: str, data: Path, rows: dict, facts: dict, text: str = "") -> list[str]:
    if claim == "periodic":
        problems = []
        for name in of.split(","):
            log10 = _map(data, name)
            if log10 is None:
                problems.append(f"claims {claim} of {name!r}, which has no saved map")
            elif _unread(log10) or _period(log10) != _said_period(text):
                problems.append(f"says {name}'s counts repeat with period {_said_period(text)}, its map's period is "
                                f"{_period(log10)}{' with positions unread' if _unread(log10) else ''}")
        return problems
    if claim in ("uniform", "unread", "over-corrects"):
        log10 = _map(data, of)
        if log10 is None:
            return [f"claims {claim} of {of!r}, which has no saved map"]
        if claim == "uniform" and not _uniform(log10):
            return [f"says {of} is uniform, but its map's max ≠ min or it leaves positions unread"]
        if claim == "unread" and not _unread(log10):
            return [f"says {of} never reads some positions, but every position of its map has a path"]
        if claim == "over-corrects":
            row = rows.get(of) or rows["original"]
            repeats = _period(log10)
            if not _ratio(row) < 1 or repeats:
                return [f"says {of} over-corrects, but its centre/border ratio is {_ratio(row):.3g}"
                        + (f" and its counts repeat every {repeats}" if repeats else "")]
        return []
    if claim in ("unread-centre", "unread-corners"):
        log10 = _map(data, of)
        if log10 is None:
            return [f"claims {claim} of {of!r}, which has no saved map"]
        centre, corners, n = _unread_anchors(log10)
        said = int(re.match(r"\d+", html.unescape(re.sub(r"<[^>]+>", "", text))).group(0)) \
            if claim == "unread-corners" else None
        if claim == "unread-centre" and not centre:
            return [f"says {of}'s centre has no path, but its map has one there"]
        if claim == "unread-corners" and said != corners:
            return [f"says {said} of {of}'s {n} corners have no path, its map has {corners}"]
        return []
    if claim in ("zero-gradient", "zero-readout"):
        init = json.loads((data / "sensitivity_init.json").read_text())
        if claim == "zero-gradient" and np.any(np.load(data / "sensitivity_init.map.npy") != 0):
            return ["says every input gradient is zero, but the saved sensitivity map is not"]
        if claim == "zero-readout" and (init["readout"] != of or
                                        sorted(init["bias_only_inits"]) != list(range(init["n_inits"]))):
            return [f"says {of} starts at zero weights in every initialisation, but the saved result names "
                    f"{init['readout']!r} with bias only in {len(init['bias_only_inits'])} of {init['n_inits']}"]
        return []
    if claim == "zero-at":  # the sensitivity exactly 0 at the centre, the border or both (no ratio to quote)
        with np.errstate(divide="ignore"):
            log10 = np.log10(np.abs(np.load(data / "sensitivity_init.map.npy")))
        centre, corners, n = _unread_anchors(log10)
        held = {"both": centre and corners == n, "centre": centre and corners < n, "border": corners == n}.get(of)
        return [] if held else [f"says the sensitivity is exactly 0 at {of!r}, but its map's centre is "
                                f"{'0' if centre else 'positive'} and {corners} of its {n} corners are 0"]
    if claim in ("silent", "zero-scales"):
        said = [int(v) for v in re.findall(r"\d+", html.unescape(re.sub(r"<[^>]+>", "", text)))]
        if claim == "silent":
            saved = np.load(data / "sensitivity_init.map.npy")
            if said != [int(np.count_nonzero(saved == 0)), saved.size]:
                return [f"says {' of '.join(map(str, said))} positions have zero sensitivity, the saved map has "
                        f"{int(np.count_nonzero(saved == 0))} of {saved.size}"]
            return []
        names = json.loads((data / "sensitivity_init.json").read_text()).get("zero_scale_layers") or []
        if said != [len(names)]:
            return [f"says {said} normalisation layers start at weight 0, the saved result names {len(names)}"]
        return []
    if claim in ("small-scales", "small-scale-max"):  # parameters that multiply a layer's output and start tiny
        small = json.loads((data / "sensitivity_init.json").read_text()).get("small_scale_parameters") or {}
        shown = html.unescape(re.sub(r"<[^>]+>", "", text)).strip()
        saved = str(len(small)) if claim == "small-scales" else format(max(small.values(), default=math.nan), ".3g")
        return [] if shown == saved else [f"says {shown} for {claim}, the saved result gives {saved}"]
    if claim == "live-uniform":
        log10 = np.load(data / "pathways_live.log10.npy")
        return [] if _uniform(log10) else [f"says every position has the same number of paths that avoid the silent "
                                           f"layers, but the saved count spans 10^{float(log10.max() - log10.min()):.3g}"]
    if claim.startswith("weighted-") or claim == "measured-ratio":  # the weighted paths beside the sensitivity
        return _check_weighted(claim, data, html.unescape(re.sub(r"<[^>]+>", "", text)).strip())
    if claim in ("no-path", "same-zeros"):  # the paths that avoid the norms that start silent
        none = ~(np.load(data / "pathways_live.log10.npy") > -np.inf)
        if claim == "no-path":
            said = [int(v) for v in re.findall(r"\d+", html.unescape(re.sub(r"<[^>]+>", "", text)))]
            return [] if said == [int(none.sum()), none.size] else [
                f"says {' of '.join(map(str, said))} positions have no path that avoids the silent layers, the saved "
                f"map has {int(none.sum())} of {none.size}"]
        zero = np.load(data / "sensitivity_init.map.npy") == 0
        return [] if np.array_equal(none, zero) else [
            f"says the positions without such a path are those of zero sensitivity, but {int(np.sum(none != zero))} "
            "positions differ"]
    if claim in ("more-even", "less-even", "as-even"):
        mine, model = _map(data, of), _map(data, "model")
        if mine is None or model is None:
            return [f"compares {of!r} with the model, but a map is missing"]
        if _unread(mine) or _unread(model):
            return [f"compares the spread of {of!r} with the model's, but one leaves positions unread"]
        spread, own = (float(f"{10 ** float(m.max() - m.min()):.3g}") for m in (mine, model))  # max/min as shown
        word = "more-even" if spread < own else "less-even" if spread > own else "as-even"
        if word != claim:
            return [f"says {of} is {claim.replace('-', ' ')} than the model, but its maps' max/min are "
                    f"{spread:.3g} and {own:.3g}"]
        return []
    if claim in ("flat", "changes"):
        pools = {p["layer"]: p for p in facts["q2"]["pools"]}
        layers = json.loads((data.parent.parent / "report.json").read_text())["numbers"]["depth"]
        depth = next(v for v in layers.values() if of in v.get("layers", []))
        i = depth["layers"].index(of)
        before = depth.get("pool_inputs", {}).get(of, depth["layer_ratios"][i - 1] if i else 1.0)
        flat = f"{depth['layer_ratios'][i]:.3g}" == f"{before:.3g}"  # the same to the three figures shown
        if (claim == "flat") != flat or of not in pools:
            return [f"says pool {of} is {claim}, but the ratio goes {before:.6g} → {depth['layer_ratios'][i]:.6g}"]
        return []
    if not claim.startswith("law:"):
        return [f"an unknown claim {claim!r} about {of!r}"]
    from ..theory import depth_law

    q1 = facts["q1"]
    law = depth_law(of, q1["k"], q1["n"], q1["dilation"])
    if law.kind != claim.removeprefix("law:"):
        return [f"says the {of} law is {claim.removeprefix('law:')}, theory says {law.kind}"]
    said = _TENDS.search(text)
    if said and law.kind == "numeric":
        deep = _deep_ratio(of, q1["k"], q1["n"], q1["dilation"])
        if said.group(1) != f"{deep:.3g}":
            return [f"says the {of} stack's ratio tends to {said.group(1)}, its deep limit is {deep:.6g}"]
    return []


_TENDS = re.compile(r"tending to ([^ ]+) as L → ∞")


def _check_weighted(claim: str, data: Path, shown: str) -> list[str]:
    """A ``weighted-*`` claim (or ``measured-ratio``) against the saved weighted and sensitivity maps."""
    from ..maps import log_correlation, position_summary
    from ..report._format import fmt_ratio

    path = data / "weighted_pathways.map.npy"
    if not path.exists():
        return [f"claims {claim}, but no weighted map is saved"]
    w, m = np.load(path), np.load(data / "sensitivity_init.map.npy")
    key = "corner" if w.ndim == 2 else "edge"
    if claim == "weighted-inits":
        saved = str(json.loads((data / "weighted_pathways.json").read_text())["n_inits"])
    elif claim == "weighted-uniform":
        return [] if w.max() == w.min() else [f"says the weighted map is the same everywhere; it spans "
                                              f"{float(w.min()):.3g} … {float(w.max()):.3g}"]
    elif claim == "weighted-all-zero":
        return [] if not w.any() else [f"says the weighted map is zero everywhere; {int((w != 0).sum())} positions "
                                       "are not"]
    elif claim in ("weighted-ratio", "measured-ratio"):
        saved = fmt_ratio(position_summary(w if claim == "weighted-ratio" else m)[f"log10_center_{key}_ratio"])
    elif claim in ("weighted-zeros", "weighted-same-zeros"):  # ("zero at exactly the N px where the sensitivity is")
        said = [int(v) for v in re.findall(r"\d+", shown)]
        exact = claim == "weighted-same-zeros"
        if said != [int((w == 0).sum())] or (exact and not np.array_equal(w == 0, m == 0)):
            return [f"says the weighted map is zero at {said}{' (exactly where the sensitivity is)' if exact else ''}; "
                    f"the saved one is zero at {int((w == 0).sum())}, the sensitivity at {int((m == 0).sum())}"]
        return []
    else:  # weighted-r
        saved = format(log_correlation(m, w), ".2f")
    return [] if shown == saved else [f"says {shown} for {claim}, the saved maps give {saved}"]


def _deep_ratio(padding: str, k: int, n: int, dilation: int) -> float:
    """centre/edge of a deep stack of 1-D layers, apart from the theory (which squares one layer's matrix): the
    eigenvector of the largest eigenvalue of its transpose, by numpy; where that vector's smallest entry is below
    1e-6 of its largest (an eigen-solver's absolute error would show there), the ratio of 2**40 layers, the matrix
    squared 40 times (scaled to a largest entry of 1 each time) and applied to ones."""
    from ..theory import transfer_matrix

    a = transfer_matrix(padding, k, n, dilation).T.astype(np.float64)
    values, vectors = np.linalg.eig(a)
    v = np.abs(vectors[:, int(np.argmax(values.real))].real)
    if v.min() < 1e-6 * v.max():
        for _ in range(40):
            a = a @ a
            a /= a.max()
        v = a.sum(axis=1)
    return float(v[(n - 1) // 2] / ((v[0] + v[-1]) / 2))


_UNIFORM_LIST = re.compile(r"(?:Uniform \(max = min over all positions\)|Every position gets the same count with|"
                           r"Uniform with):? ?([^.]+)\.")
_NEVER = re.compile(r"((?:\w+, )*\w+(?: and \w+)?) never reads? (\d+)")
_OVER = re.compile(r"(\w+) over-corrects")
_REPEATS = re.compile(r"((?:\w+, )*\w+(?: and \w+)?) leaves? no border effect: (?:its|their) counts "
                      r"(repeat every [^.]*)")
_ANCHORS = re.compile(r"((?:\w+, )*\w+(?: and \w+)?): (its centre|their centres)?(?: and )?"
                      r"(?:(\d+) of (?:its|their) (\d+) (?:corner|edge)s)? ha(?:s|ve) no path")
_MOST = re.compile(r"Most uneven: ([^(]+) \(max/min ([^,)]+)(, as the original)?\)")


def _each_named(pattern: re.Pattern, text: str):
    """(name, the rest of the match) for each name of each sentence ``pattern`` finds, whose first group lists
    names ("same, reflect and partial never read 447")."""
    for names, rest in pattern.findall(text):
        for name in re.split(r", | and ", names):
            yield name, rest


def check_captions(text: str, data: Path) -> list[str]:
    """Problems with the claims of one model's figure captions (plain ``text``) against ``data``."""
    problems = []
    for m in _UNIFORM_LIST.finditer(text):
        for name in (n.strip() for n in m.group(1).split(",")):
            log10 = _map(data, name)
            if log10 is not None and not _uniform(log10):
                problems.append(f"{data.name}: a caption calls {name} uniform, but its map is not (max ≠ min)")
    said: dict[str, set] = {"unread": set(), "repeat": set()}  # the names each kind of grouped sentence covers
    grouped = (("unread", _NEVER, lambda m, n: _unread(m) == int(n),
                lambda name, n, m: f"says {name} never reads {n}, its map has {_unread(m)}"),
               ("repeat", _REPEATS, lambda m, words: _period(m) == _said_period(words),
                lambda name, words, m: f"says {name}'s counts {words}; its map's period is {_period(m)}"))
    for kind, pattern, holds, wrong in grouped:
        for name, detail in _each_named(pattern, text):
            said[kind].add(name)
            log10 = _map(data, name)
            if log10 is not None and not holds(log10, detail):
                problems.append(f"{data.name}: a caption {wrong(name, detail, log10)}")
    rows = _rows(data)
    for name in _OVER.findall(text):
        if name in rows and not _ratio(rows[name]) < 1:
            problems.append(f"{data.name}: a caption says {name} over-corrects, its ratio is {_ratio(rows[name]):.3g}")
        log10 = _map(data, name) if name in rows else None
        if log10 is not None and _period(log10):
            problems.append(f"{data.name}: a caption says {name} over-corrects, but its counts repeat (no border)")
    for names, shown, as_given in _MOST.findall(text):
        for name in re.split(r", | and ", names.strip()):
            if name in rows and not _check_number(shown, rows[name]["max_over_min"]):
                problems.append(f"{data.name}: a caption says {name} is most uneven at max/min {shown}, its max/min "
                                f"is {rows[name]['max_over_min']:.3g}")
            if as_given and name in rows and not math.isclose(rows[name]["max_over_min"],
                                                             rows["original"]["max_over_min"], rel_tol=1e-9):
                problems.append(f"{data.name}: a caption says {name} is as uneven as the original, it is not")
    for path in data.glob("remedies.log10_*.npy"):
        name = path.name.removeprefix("remedies.log10_").removesuffix(".npy")
        log10 = np.load(path)
        if _unread(log10) and name not in said["unread"] and not (name == "original" and "model" in said["unread"]):
            problems.append(f"{data.name}: {name} leaves positions unread, but no caption says so")
        elif name != "original" and _period(log10) and name not in said["repeat"] and name in rows \
                and not rows[name].get("unchanged"):
            problems.append(f"{data.name}: {name}'s counts repeat (no border effect), but no caption says so")
    return problems


def _unread_anchors(log10: np.ndarray) -> tuple[bool, int, int]:
    """Whether the centre is unread, and how many of the corners (an image's four, a signal's two ends) are, of
    how many: re-derived here, not read from the facts layer."""
    unread = ~np.isfinite(log10)
    centre = tuple((n - 1) // 2 for n in log10.shape)
    ends = [(0, n - 1) for n in log10.shape]
    corners = [tuple(c) for c in np.stack(np.meshgrid(*ends, indexing="ij"), -1).reshape(-1, log10.ndim)]
    return bool(unread[centre]), sum(bool(unread[c]) for c in corners), len(corners)


def check_anchor_notes(text: str, data: Path, stem: str = "remedies") -> list[str]:
    """Problems with the remedy tables' notes on unread anchor points (plain ``text``) against ``data``: each is
    true of its variant's saved map, and every measured variant with an unread centre or corner has one."""
    problems, said = [], set()
    for names, centre, k, n in _ANCHORS.findall(text):
        for name in re.split(r", | and ", names):
            log10 = _map(data, name, stem)
            if log10 is None:
                continue
            said.add(name)
            truth = _unread_anchors(log10)
            if (bool(centre), int(k or 0), int(n or truth[2])) != truth:
                problems.append(f"{data.name}: a note says {name}'s centre unread={bool(centre)} and {k or 0} "
                                f"corners unread, its map has {truth[0]} and {truth[1]} of {truth[2]}")
    for name, row in _rows(data, stem).items():
        log10 = None if row.get("unchanged") or "error" in row else _map(data, name, stem)
        if log10 is not None and any(_unread_anchors(log10)[:2]) and name not in said:
            problems.append(f"{data.name}: {name}'s centre or a corner has no path, but no note says so")
    return problems


def check_remedy_table(headers: list[str], cells: list[list[str]], data: Path, stem: str = "remedies") -> list[str]:
    """Problems with a remedy table (its ``headers`` and rows of plain ``cells``) against the comparison saved in
    ``data``: each row's ratio and max/min are its saved numbers, and its effect is true of its saved map
    (``uniform``: max = min and every position read; ``never reads N``: N positions without a path;
    ``over-corrects (R× at the …)``: centre/border ratio 1/R < 1; ``centre-heavy``: above 1; ``balanced at the
    anchors``: 1, the map not uniform); a variant whose map has unread positions must say so."""
    rows, problems = _rows(data, stem), []
    col = {h: i for i, h in enumerate(headers)}
    for row in cells:
        name = row[col["remedy"]]
        saved = rows.get(name)
        if saved is None:
            problems.append(f"{data.name}: a table row names {name!r}, which the saved comparison does not have")
            continue
        if "error" in saved:
            if any(row[i] != "—" for i in range(1, len(row))):
                problems.append(f"{data.name}: {name} does not fit, but its row shows numbers")
            continue
        log10 = _map(data, name, stem)
        if log10 is None:
            continue
        ratio, effect = _ratio(saved), row[col["effect"]]
        spread = float(np.ptp(log10[np.isfinite(log10)])) if np.isfinite(log10).any() else math.nan
        truth = ("uniform" if _uniform(log10) else "unread" if _unread(log10) else "periodic" if _period(log10) else
                 "over-corrects" if ratio < 1 else "balanced" if ratio == 1 else "centre-heavy")
        said = effect.split(" ")[0]
        said = {"never": "unread"}.get(said, said)
        if said != truth:
            problems.append(f"{data.name}: the table says {name} is {effect!r}; its map and ratio say {truth}")
        elif truth == "unread" and int(_NUMBER.findall(effect)[0]) != _unread(log10):
            problems.append(f"{data.name}: the table says {name} {effect!r}; its map has {_unread(log10)} unread")
        elif truth == "periodic" and [int(v) for v in re.findall(r"\d+", effect)] != _period(log10):
            problems.append(f"{data.name}: the table says {name} {effect!r}; its map's period is {_period(log10)}")
        elif truth == "over-corrects" and not _close(_NUMBER.findall(effect)[0], 1 / ratio):
            problems.append(f"{data.name}: the table says {name} {effect!r}; its ratio is {ratio:.4g}")
        for column, value in (("paths", ratio), ("max/min", 10 ** spread)):
            shown = row[col[column]].rstrip("×")
            if (not (_NUMBER.fullmatch(shown) and _close(shown, value)) if math.isfinite(value)
                    else bool(_NUMBER.fullmatch(shown))):  # (no number stands for a 0/0 or a missing one)
                problems.append(f"{data.name}: the table shows {name}'s {column} as {row[col[column]]!r}; the saved "
                                f"data gives {value:.4g}")
    return problems


def _text_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """The tables a terminal shows (rich's box drawing): (headers, rows of cells) each."""
    tables, headers = [], None
    for line in text.splitlines():
        if line.startswith("┃"):
            headers = [c.strip() for c in line.strip("┃").split("┃")]
            tables.append((headers, []))
        elif line.startswith("│") and headers:
            tables[-1][1].append([c.strip() for c in line.strip("│").split("│")])
    return tables


def check_remedies_output(text: str, out) -> list[str]:
    """Every problem found in what ``edgewise remedies … --out OUT`` printed (``text``) against what it saved in
    ``out``: the table (:func:`check_remedy_table`), the notes on unread anchor points, and the line naming the
    padding modes measured with another amount (``--amount``)."""
    out, problems = Path(out), []
    for headers, cells in _text_tables(text):
        problems += check_remedy_table(headers, cells, out, "remedy_comparison")
    rows = json.loads((out / "remedy_comparison.json").read_text())["rows"]
    return problems + check_anchor_notes(text, out, "remedy_comparison") + check_amount_notes(text, rows) \
        + check_edge_pool_notes(text, rows)


_AMOUNT_LINE = re.compile(r"((?:\w+, )*\w+(?: and \w+)?): (?:each layer's own padding amount|padding amount '\w+') "
                          r"\(--amount (\w+)\)")


def check_amount_notes(text: str, rows: list[dict]) -> list[str]:
    """Problems with the line naming the padding modes measured with another amount (``--amount``) against the
    comparison's saved ``rows``: exactly the rows with an ``amount``, each with the amount said."""
    amounts = {r["name"]: r["amount"] for r in rows if "amount" in r}
    said = {name: amount for names, amount in _AMOUNT_LINE.findall(text) for name in re.split(r", | and ", names)}
    if said != amounts:
        return [f"the --amount line names {said or 'nothing'}, the saved rows were measured with {amounts}"]
    return []


_EDGE_POOLS = re.compile(r"((?:\w+, )*\w+(?: and \w+)?): (\d+) pools? still reads? −∞ or zeros past the input "
                         r"\(([^()]*)\)")


def check_edge_pool_notes(text: str, rows: list[dict]) -> list[str]:
    """Problems with the notes on pools a padding mode could not reach (plain ``text``) against the comparison's
    saved ``rows``: each named variant has that many such pools, the first of them named, and every variant with
    some has a note."""
    problems, said = [], set()
    pools = {r["name"]: r.get("edge_pools") or [] for r in rows}
    for names, count, shown in _EDGE_POOLS.findall(text):
        listed = [p for p in re.split(r", | and ", shown) if not re.fullmatch(r"\d+ more", p)]
        for name in re.split(r", | and ", names):
            said.add(name)
            truth = pools.get(name, [])
            if int(count) != len(truth) or truth[:len(listed)] != listed:
                problems.append(f"a note says {name} leaves {count} pools reading past the input ({shown}); its "
                                f"saved row has {len(truth)}: {truth}")
    problems += [f"{name} leaves pools reading past the input ({truth}), but no note says so"
                 for name, truth in pools.items() if truth and name not in said]
    return problems


def _html_tables(block: str) -> list[tuple[list[str], list[list[str]]]]:
    """The remedy tables of an HTML ``block``: (headers, rows of plain cells) each."""
    def plain(cell):
        return html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()

    tables = []
    for table in re.findall(r"<table.*?</table>", block, re.S):
        headers = [plain(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", table, re.S)]
        if headers[:1] != ["remedy"]:
            continue
        cells = [[plain(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
                 for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]
        tables.append((headers, [c for c in cells if c]))
    return tables


_SKIP_POSITIONS = re.compile(r"not run: the input has (\d+) positions, over the limit of (\d+) ")
_SKIP_COST = re.compile(r"not run: it would take (up to the work of )?(\d+) float64 forward passes \((\d+) nudged "
                        r"positions(?:, each on its forward cone, at most (\S+) % of a pass,)? and (\d+) sign "
                        r"patterns(?:, for each of (\d+) inputs)?\) of (\S+) GFLOP and (\S+) MB of layer outputs "
                        r"each, (\S+) TFLOP and (\S+) GB in all: (.*?) it may take unasked")
_OVER_LIMIT = re.compile(r"more (operations|layer outputs) than the (\S+) (?:TFLOP|GB)")


def check_perturbation_note(block: str, data: Path) -> list[str]:
    """Problems with the perturbation experiment in one model's section-5 HTML ``block`` against ``data``."""
    notes = re.findall(r'<div class="note">(The perturbation experiment was not run:.*?)</div>', block, re.S)
    saved = data / "perturbation_skipped.json"
    ran = (data / "perturbation.json").exists()
    if ran or not saved.exists():
        said = "ran" if ran else "has no record of why it was left out"
        return [f"{data.name}: the perturbation experiment {said}, and a note says it was not run"] if notes else []
    if len(notes) != 1:
        return [f"{data.name}: the perturbation experiment was left out, and {len(notes)} notes say so"]
    skipped, note = json.loads(saved.read_text()), html.unescape(notes[0])
    positions = int(np.load(data / "sensitivity_init.map.npy").size)
    problems = [] if skipped["positions"] == positions else [f"{data.name}: {skipped['positions']} positions saved "
                                                                f"for a map of {positions}"]
    if skipped["why"] == "positions":
        m = _SKIP_POSITIONS.search(note)
        if not m or (int(m[1]), int(m[2])) != (positions, skipped["limit"]) or not positions > int(m[2]):
            problems.append(f"{data.name}: the note {note!r} is not {positions} positions over {skipped['limit']}")
        return problems
    m = _SKIP_COST.search(note)
    if not m:
        return problems + [f"{data.name}: the note {note!r} does not give the experiment's cost"]
    forwards, shown_positions, signs, samples = int(m[2]), int(m[3]), int(m[5]), int(m[6] or 1)
    cone = skipped["cone"]
    if (shown_positions, signs, samples) != (positions, skipped["signs"], skipped["samples"]) or \
            forwards != math.ceil(samples * (positions * (1 if cone is None else cone) + signs)):
        problems.append(f"{data.name}: {forwards} passes is not {samples} × ({positions} nudges at "
                        f"{1 if cone is None else cone} of a pass + {skipped['signs']} sign patterns)")
    if {cone is None, m[1] is None, m[4] is None} != {cone is None} or \
            (cone is not None and not _close(m[4], 100 * cone)):
        problems.append(f"{data.name}: the note's forward cones ({m[4]} %) are not the saved {cone}")
    totals = {"operations": (forwards * skipped["flops"], skipped["flop_limit"], 1e12),
              "layer outputs": (forwards * skipped["bytes"], skipped["byte_limit"], 1e9)}
    if not all(_close(shown, value) for shown, value in zip(m.group(7, 8, 9, 10), (
            skipped["flops"] / 1e9, skipped["bytes"] / 1e6, totals["operations"][0] / 1e12,
            totals["layer outputs"][0] / 1e9))):
        problems.append(f"{data.name}: the note shows {m.group(7, 8, 9, 10)} (GFLOP, MB, TFLOP, GB) for {skipped}")
    named = {what: limit for what, limit in _OVER_LIMIT.findall(m[11])}
    over = {what for what, (total, limit, _) in totals.items() if total > limit}
    if set(named) != over or not over or any(not _close(named[w], totals[w][1] / totals[w][2]) for w in named):
        problems.append(f"{data.name}: the note says it is over {named}, the data over {sorted(over)}")
    return problems


def _section_block(page: str, section: str, slug: str) -> str:
    """The part of section ``section`` of the page about the model whose figures are named ``slug-…``."""
    start = page.find(f'<section id="{section}">')
    inner = page[start:page.find("</section>", start)] if start >= 0 else ""
    return next((b for b in inner.split("<h3>") if f'id="{slug}-' in b), "")


def check_report(out) -> list[str]:
    """Every problem found on ``out/index.html`` (empty: every checked claim holds)."""
    out = Path(out)
    page = (out / "index.html").read_text()
    problems = []
    verdict = page[page.index('id="verdict"'):page.index("</section>", page.index('id="verdict"'))]
    verdict, _, trained = verdict.partition('<p class="verdict-trained">')
    numbers = json.loads((out / "report.json").read_text())["numbers"]
    problems += check_trained(trained, numbers)
    blocks = re.split(r"<h3>", verdict)[1:]
    for block in blocks:
        slug = re.search(r'href="data/([^/"]+)/verdict.json"', block)
        if slug:
            problems += check_verdict(block, out / "data" / slug.group(1))
    for slug_dir in sorted((out / "data").iterdir()):
        if not (slug_dir / "remedies.json").exists():
            continue
        ids = re.findall(rf'<figure id="{re.escape(slug_dir.name)}-[^"]*">.*?<figcaption>(.*?)</figcaption>', page,
                         re.S)
        problems += check_captions(html.unescape(" ".join(ids)), slug_dir)
        problems += check_perturbation_note(_section_block(page, "sensitivity", slug_dir.name), slug_dir)
        tables = re.findall(rf'<figure id="{re.escape(slug_dir.name)}-(?:remedies|padding-modes)">.*?</figure>(.*?)'
                            r'(?=<figure|<h3>|</section>)', page, re.S)
        notes = html.unescape(re.sub(r"<[^>]+>", " ", " ".join(tables)))
        problems += check_anchor_notes(notes, slug_dir)
        rows = json.loads((slug_dir / "remedies.json").read_text()).get("rows", [])
        for table in tables:  # each table's notes against the rows it shows (the padding-mode table shows fewer)
            shown = {cells[0] for _, body in _html_tables(table) for cells in body}
            text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", table)))
            mine = [r for r in rows if r["name"] in shown]
            problems += [f"{slug_dir.name}: {p}" for p in check_edge_pool_notes(text, mine)
                         + check_amount_notes(text, mine)]
        for headers, cells in _html_tables(" ".join(tables)):
            problems += check_remedy_table(headers, cells, slug_dir)
    return problems
