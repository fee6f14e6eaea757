"""The result of a sweep: every run's metrics, and per remedy each test split's mean and 95 % interval."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EdgewiseError
from ..results import Result

__all__ = ["Experiment", "interval", "rows_csv"]

# two-sided 95 % Student t quantiles by degrees of freedom (1–30); beyond that the normal 1.96 is close enough
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def interval(values) -> tuple[float, float]:
    """Mean and half-width of the 95 % Student-t interval of ``values`` (half-width nan for one value)."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    if v.size == 1:
        return float(v[0]), math.nan
    df = v.size - 1
    t = _T975[df - 1] if df <= len(_T975) else 1.96
    return float(v.mean()), float(t * v.std(ddof=1) / math.sqrt(v.size))


@dataclass
class Experiment(Result):
    """A sweep of one task over remedies × seeds.

    Attributes:
        task, size: the task's name and size (``quick`` or ``full``).
        config: the resolved configuration every run used.
        remedies, seeds: the sweep's axes, in order; ``axis`` names what the remedies axis varies.
        splits: the test splits, in the task's order.
        contrast: two splits whose paired per-seed difference the table adds (or None).
        notes: the task's own findings beyond accuracy, one line each.
        runs: one dict per run: ``remedy``, ``seed``, ``key`` (the cache key), ``seconds`` and either
            ``metrics`` or ``error`` (for a remedy that does not fit the model).
    """

    task: str
    size: str
    config: dict
    remedies: list[str]
    seeds: list[int]
    splits: list[str]
    runs: list[dict] = field(repr=False)
    axis: str = "remedy"
    contrast: tuple[str, str] | None = None
    notes: list[str] = field(default_factory=list)
    kind = "experiment"

    def accuracies(self, remedy: str, split: str) -> list[float]:
        """The accuracy of every seed's run of ``remedy`` on ``split`` (failed runs left out)."""
        return [r["metrics"]["accuracy"][split] for r in self.runs
                if r["remedy"] == remedy and "metrics" in r and split in r["metrics"]["accuracy"]]

    def errors(self) -> dict[str, str]:
        """remedy → the error of its first failed run."""
        out: dict[str, str] = {}
        for r in self.runs:
            if "error" in r:
                out.setdefault(r["remedy"], r["error"])
        return out

    def table(self) -> dict[str, dict[str, dict]]:
        """remedy → split → ``mean``, ``interval`` [low, high] (95 %, Student t over seeds) and ``n``."""
        out = {}
        for remedy in self.remedies:
            row = {}
            for split in self.splits:
                acc = self.accuracies(remedy, split)
                mean, half = interval(acc)
                row[split] = {"mean": mean, "interval": [mean - half, mean + half], "n": len(acc)}
            out[remedy] = row
        return out

    def differences(self) -> dict[str, dict]:
        """remedy → ``mean``, ``interval`` and ``n`` of the paired per-seed difference ``a − b`` of the contrast."""
        if not self.contrast:
            return {}
        a, b = self.contrast
        out = {}
        for remedy in self.remedies:
            pairs = [r["metrics"]["accuracy"] for r in self.runs if r["remedy"] == remedy and "metrics" in r]
            mean, half = interval([p[a] - p[b] for p in pairs])
            out[remedy] = {"mean": mean, "interval": [mean - half, mean + half], "n": len(pairs)}
        return out

    def text(self, markdown: bool = False) -> str:
        """The table as aligned text (or a Markdown table): mean ± 95 % half-width, in percent."""
        table, errors, diffs = self.table(), self.errors(), self.differences()
        head = [self.axis] + self.splits + ([f"{self.contrast[0]} − {self.contrast[1]} (paired)"] if diffs else [])
        rows = []
        for remedy in self.remedies:
            if remedy in errors and not any(c["n"] for c in table[remedy].values()):
                rows.append([remedy, f"does not fit: {errors[remedy].splitlines()[0]}"] + [""] * (len(head) - 2))
                continue
            rows.append([remedy] + [_cell(table[remedy][s]) for s in self.splits]
                        + ([_cell(diffs[remedy], signed=True)] if diffs else []))
        if markdown:
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
        widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
        fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
        return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])

    def to_dict(self) -> dict:
        doc = {"task": self.task, "size": self.size, "axis": self.axis, "config": self.config,
               "remedies": self.remedies, "seeds": self.seeds, "splits": self.splits,
               "table": self.table(), "errors": self.errors(), "notes": self.notes}
        if self.contrast:
            doc["contrast"] = {"splits": list(self.contrast), "table": self.differences()}
        return {**doc, "runs": self.runs}

    @classmethod
    def from_dict(cls, doc: dict, source: str = "the experiment document") -> "Experiment":
        """Rebuild from :meth:`to_dict`'s output (e.g. a saved ``experiment.json``, see :meth:`load`).

        A document that is not one (damaged, hand-edited) is an EdgewiseError naming ``source`` and the fault."""
        problem = _doc_problem(doc)
        if problem:
            raise EdgewiseError(f"{source} is not an edgewise experiment ({problem}); run the experiment again to "
                                "rewrite it (edgewise experiment TASK --out DIR)")
        contrast = doc.get("contrast")
        return cls(doc["task"], doc["size"], doc["config"], doc["remedies"], doc["seeds"], doc["splits"],
                   doc["runs"], doc.get("axis", "remedy"), tuple(contrast["splits"]) if contrast else None,
                   list(doc.get("notes", [])))

    @classmethod
    def load(cls, path) -> "Experiment":
        """Read a saved ``experiment.json`` (``path``: the file or its folder); a missing, unreadable or damaged
        file is an EdgewiseError naming it."""
        path = Path(path)
        if path.is_dir():
            path = path / "experiment.json"
        try:
            doc = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise EdgewiseError(f"cannot read the experiment {path}: {e}; run the experiment again to rewrite it "
                                "(edgewise experiment TASK --out DIR)") from None
        return cls.from_dict(doc, source=str(path))


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _doc_problem(doc) -> str | None:
    """What makes ``doc`` not an :meth:`Experiment.to_dict` document, or None."""
    if not isinstance(doc, dict):
        return f"a JSON {type(doc).__name__}, not an object"
    kinds = {"task": str, "size": str, "config": dict, "remedies": list, "seeds": list, "splits": list, "runs": list}
    for key, kind in kinds.items():
        if not isinstance(doc.get(key), kind):
            return f"{key!r} is missing or not a {'JSON object' if kind is dict else kind.__name__}"
    if not all(isinstance(r, str) for r in doc["remedies"] + doc["splits"]):
        return "'remedies' and 'splits' must be lists of names"
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in doc["seeds"]):
        return "'seeds' must be a list of integers"
    if not isinstance(doc.get("axis", "remedy"), str) or not isinstance(doc.get("notes", []), list):
        return "'axis' must be a name and 'notes' a list"
    contrast = doc.get("contrast")
    needed: list = []
    if contrast is not None:
        pair = contrast.get("splits") if isinstance(contrast, dict) else None
        if not (isinstance(pair, list) and len(pair) == 2 and all(p in doc["splits"] for p in pair)):
            return "'contrast' must name two of its splits"
        needed = pair
    for i, run in enumerate(doc["runs"]):
        if not isinstance(run, dict) or run.get("remedy") not in doc["remedies"] or not isinstance(run.get("seed"), int):
            return f"run {i} names no remedy of the sweep or no seed"
        if "metrics" in run:
            acc = run["metrics"].get("accuracy") if isinstance(run["metrics"], dict) else None
            if not isinstance(acc, dict) or not all(_is_num(v) for v in acc.values()):
                return f"run {i}'s accuracies are not finite numbers"
            if any(s not in acc for s in needed):
                return f"run {i} has no accuracy on {', '.join(s for s in needed if s not in acc)}"
        elif not isinstance(run.get("error"), str):
            return f"run {i} has neither metrics nor an error"
    return None


def _cell(c: dict, signed: bool = False) -> str:
    if not c["n"]:
        return "–"
    mean, high = c["mean"], c["interval"][1]
    value = f"{100 * mean:+.1f}" if signed else f"{100 * mean:.1f}"
    return value if math.isnan(high) else f"{value} ± {100 * (high - mean):.1f}"


def rows_csv(exp: Experiment) -> str:
    """The table as CSV: one row per remedy and split (mean, 95 % interval, number of seeds)."""
    lines = [f"{exp.axis},split,mean,low,high,n"]
    for remedy, row in exp.table().items():
        for split, c in row.items():
            lines.append(",".join([remedy, split] + [f"{v:.6g}" for v in (c["mean"], *c["interval"])] + [str(c["n"])]))
    return "\n".join(lines) + "\n"
