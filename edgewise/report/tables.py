"""Results as rows of formatted cells: the same tables for the terminal, the HTML report and CSV files."""

from __future__ import annotations

import math

from ..maps import anchor_count
from ._format import fmt_axes, fmt_ratio

__all__ = ["Rows", "receptive_field_rows", "remedy_rows", "ranked", "effect_text", "short_count", "ratio_text"]


class Rows:
    """A table: ``headers``, ``rows`` of strings, ``notes`` explaining the columns, ``flagged`` row indices."""

    def __init__(self, headers, rows, notes=(), flagged=()):
        self.headers, self.rows, self.notes, self.flagged = list(headers), list(rows), list(notes), set(flagged)

    def csv(self) -> str:
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.headers)
        writer.writerows(self.rows)
        return buf.getvalue()


def short_count(n: int) -> str:
    """12345678 → '12.3M'."""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def ratio_text(v) -> str:
    """A ratio as ``26.2×`` (``1.15e+7×`` when large); 0/0 as "0/0", a zero centre as "0", a zero border as "∞";
    negative or missing values as they are."""
    if isinstance(v, float) and math.isnan(v):
        return fmt_ratio(v)  # zero at the centre and at the border: no ratio
    if isinstance(v, (int, float)) and (v == 0 or v == math.inf):
        return fmt_ratio(math.inf if v else -math.inf)
    return fmt_ratio(math.log10(v)) if isinstance(v, (int, float)) and v > 0 and math.isfinite(v) else str(v)


def _shape(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


def receptive_field_rows(rf) -> Rows:
    """One row per layer that changes the field (per-unit layers are counted in a note)."""
    rows, flagged, hidden = [], [], 0
    glob = any(layer.global_via for layer in rf.layers)
    inexact = False
    for layer in rf.layers:
        if layer.kind == "identity":
            hidden += 1
            continue
        uneven = bool(layer.unread and any(layer.unread))
        if uneven:
            flagged.append(len(rows))
        inexact |= not layer.exact
        rows.append([layer.name + (" *" if uneven else ""), layer.op, _shape(layer.shape),
                     ("" if layer.exact else "≈") + fmt_axes(layer.size),
                     fmt_axes(layer.jump), fmt_axes(layer.start), f"{100 * layer.fraction_off:.0f}%"]
                    + ([layer.global_via or "–"] if glob else []))
    two_d = len(rf.input_shape) == 3
    notes = ["size, jump, start: input " + ("pixels, rows×columns" if two_d else "samples")
             + "; start: centre of the first unit's field. off-image: share of the layer's units whose field "
             "reaches past the " + ("image border." if two_d else "start or end of the signal.")]
    if flagged:
        notes.append("*: the layer never reads its last padded positions (uneven padding).")
    if inexact:
        notes.append("≈: the field is not one window per unit (uneven adaptive pooling, fixed connection lists, "
                     "attention windows): the widest field and the mean jump are shown.")
    if glob:
        notes.append("global via: the first layer through which every unit reads every input position (a global "
                     "pool, a squeeze-excitation gate, attention, a Linear); size, jump and start are the local "
                     "field through the windows alone.")
    if hidden:
        notes.append(f"{hidden} per-unit layer(s) (activations, normalisation) not shown: they keep the field of "
                     "their input.")
    return Rows(["layer", "op", "shape", "size", "jump", "start", "off-image"] + (["global via"] if glob else []),
                rows, notes, flagged)


def effect_text(row: dict, where: str) -> str:
    """A comparison row's effect in words (:func:`edgewise.facts.correction`), with its number."""
    from ..facts import correction

    ratio = row[f"center_{where}_ratio"]
    word = correction(ratio, row)
    if word == "unread":
        return f"never reads {row['unread']}"
    if word == "over-corrects":
        return f"over-corrects ({ratio_text(1 / ratio)} at the {where})"
    if word == "periodic":
        return f"periodic ({'×'.join(map(str, row['period']))} {'px' if where == 'corner' else 'samples'})"
    return word


def unread_anchor_notes(rows: list[dict], where: str, columns: int = 1) -> list[str]:
    """One sentence per kind of rows (in order) whose centre or ``where`` points (an image's corners, a signal's
    two ends) include unread positions: their centre/border ratios take the mean over those points, zeros
    included. Rows alike share a sentence ("same, reflect and partial: 3 of their 4 corners have no path; …")."""
    from ..facts import and_list

    n = anchor_count(2 if where == "corner" else 1)
    groups: dict[tuple, list[str]] = {}
    for r in rows:
        counts = r.get("unread_anchors") or {}
        key = (bool(counts.get("center")), counts.get(where, 0))
        if any(key):
            groups.setdefault(key, []).append(r["name"])
    notes = []
    for (centre, k), names in groups.items():
        one = len(names) == 1
        its = "its" if one else "their"
        parts = [f"{its} centre{'' if one else 's'}"] * centre + [f"{k} of {its} {n} {where}s"] * bool(k)
        has = "has" if len(parts) == 1 and (centre and one or k == 1) else "have"
        plural = "s" if columns > 1 or not one else ""
        notes.append(f"{and_list(names)}: {' and '.join(parts)} {has} no path; {its} centre/{where} ratio{plural} "
                     f"compare{'' if plural else 's'} the centre with the mean of the {n} {where}s, zeros included.")
    return notes


def ranked(rows: list[dict]) -> list[dict]:
    """``original`` first, then the variants from uniform to most uneven (max/min over all positions; an
    over-correction is as far off as its inverse), those that leave positions unread, then misfits."""
    def distance(r):
        if "error" in r:
            return (3, 0.0)
        return (2 if r["unread"] else 1, abs(math.log(r["max_over_min"])) if r["max_over_min"] > 0 else math.inf)

    first = [r for r in rows if r["name"] == "original"]
    return first + sorted((r for r in rows if r["name"] != "original"), key=distance)


def remedy_rows(comparison, padding: str | None = None) -> Rows:
    """One row per variant of a :class:`edgewise.remedies.Comparison`, ranked by :func:`ranked`; remedies that
    do not fit get dashes (their reasons are in ``notes``). ``padding``: the model's own, named in a note."""
    where = "corner" if len(comparison.input_shape) == 3 else "edge"
    sens = any(f"sensitivity_center_{where}_ratio" in r for r in comparison.rows)
    n_inits = next((r["n_inits"] for r in comparison.rows if "n_inits" in r), None)
    headers = ["remedy", "paths", "max/min", "effect"] + (["sens."] if sens else []) + \
        ["RF", "uneven", "params", "MACs", "edits"]
    rows, flagged, misfits, same = [], [], [], []
    order = ranked(comparison.rows)
    for r in order:
        if r.get("unchanged"):
            n = r["changed_layers"]
            same.append(f"{r['name']}: its {n} rewritten layer{'s compute' if n != 1 else ' computes'} what "
                        f"{'they' if n != 1 else 'it'} did, so its numbers are the original's.")
        if "error" in r:
            flagged.append(len(rows))
            rows.append([r["name"]] + ["—"] * (len(headers) - 1))
            misfits.append(f"does not fit — {r['name']}: {r['error'].split('. Feature-map')[0]}")
            continue
        ratios = [r[f"center_{where}_ratio"]] + ([r.get(f"sensitivity_center_{where}_ratio")] if sens else [])
        size = (lambda k: short_count(r[k]) if r["name"] == "original" else f"{r[k + '_change']:+.0%}")
        rf = r["rf_size"]
        rows.append([r["name"], ratio_text(ratios[0]), ratio_text(r["max_over_min"]), effect_text(r, where),
                     *map(ratio_text, ratios[1:]),
                     f"{rf[0]:g}" if len(set(rf)) == 1 else "×".join(f"{v:g}" for v in rf),
                     str(len(r["uneven_layers"])), size("parameters"), size("multiply_adds"),
                     str(r["changed_layers"])])
    n = anchor_count(len(comparison.input_shape) - 1)
    notes = [f"paths: the centre's path count over the mean of the {n} {where}s' counts; max/min: over all "
             "positions that are read; effect: uniform (max = min), periodic (no border effect: the counts repeat "
             "with that period, wrapping round), over-corrects (the border gets more paths), never reads N (positions "
             "with no path at all); "
             + (f"sens.: the centre/{where} ratio of the expected squared gradient over "
                f"{n_inits or 'several'} random initialisations"
                + _zero_ends_legend([row[headers.index("sens.")] for row in rows if len(row) == len(headers)],
                                    where) + "; "
                if sens else "")
             + f"RF: receptive field of the last spatial layer ({'px' if where == 'corner' else 'samples'}); "
             "uneven: layers reading padding on one side only; "
             "params, MACs (multiply-adds): the original's, then the change; edits: layers rewritten."
             + (f" original: the model as given ({padding} padding)." if padding else ""),
             *unread_anchor_notes([r for r in order if "error" not in r and not r.get("unchanged")], where,
                                  2 if sens else 1), *same, *_amount_notes(order), *_edge_pool_notes(order),
             *misfits]
    return Rows(headers, rows, notes, flagged)


def _zero_ends_legend(cells: list[str], where: str) -> str:
    """" (0: exactly 0 at the centre; 0/0: …)" for the sens. cells that are no ratio, those shown only."""
    said = {"0": "exactly 0 at the centre", "0/0": f"exactly 0 at the centre and at every {where}",
            "∞": f"exactly 0 at every {where}"}
    shown = [f"{c}: {w}" for c, w in said.items() if c in cells]
    return f" ({'; '.join(shown)})" if shown else ""


def _amount_notes(rows: list[dict]) -> list[str]:
    """"circular and reflect: each layer's own padding amount (--amount keep), in their mode." for the padding modes
    measured with another amount than their default."""
    from ..facts import and_list

    by_amount: dict[str, list[str]] = {}
    for r in rows:
        if "amount" in r:
            by_amount.setdefault(r["amount"], []).append(r["name"])
    return [f"{and_list(names)}: {amount_words(amount)} (--amount {amount}), in {'their' if len(names) > 1 else 'its'} "
            "mode." for amount, names in by_amount.items()]


def amount_words(amount: str) -> str:
    """How a padding mode measured with ``amount`` pads: "each layer's own padding amount" for ``"keep"``."""
    return "each layer's own padding amount" if amount == "keep" else f"padding amount {amount!r}"


def _edge_pool_notes(rows: list[dict]) -> list[str]:
    """One sentence per set of padding modes that left the same pools reading −∞ or zeros past the input."""
    from ..facts import and_list, short_list

    groups: dict[tuple, list[str]] = {}
    for r in rows:
        if r.get("edge_pools"):
            groups.setdefault((tuple(r["edge_pools"]), tuple(r.get("edge_pool_ops", ()))), []).append(r["name"])
    notes = []
    for (pools, ops), names in groups.items():
        shown = short_list(pools)
        calls = sum("." in op for op in ops)  # (a function's qualified name; a layer's class has no dot)
        layers = sorted({op for op in ops if "." not in op})
        why = ([f"{calls} called as function{'s' * (calls != 1)} in forward (as modules they would read the mode too)"]
               if calls else []) \
            + ([f"layers of a class it does not rewrite ({and_list(layers)}: its own padding, or indices returned)"]
               if layers else [])
        notes.append(f"{and_list(names)}: {len(pools)} pool{'s' * (len(pools) != 1)} still read{'s' * (len(pools) == 1)} "
                     f"−∞ or zeros past the input ({shown}), which {'its' if len(names) == 1 else 'their'} rewrite "
                     f"cannot reach: {'; '.join(why)}.")
    return notes
