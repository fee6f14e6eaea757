"""Side by side: what each remedy does to a model's pathway map, receptive fields, size and cost."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from .._init import shared_draws
from .._trace import parse_shape, trace
from ..errors import EdgewiseError
from ..facts import map_spread
from ..geometry import receptive_field
from ..limits import forward_costs
from ..models import describe, load
from ..pathways import pathways
from ..results import Result
from .registry import get, names
from .rewrite import apply, changes
from .transforms import check_amount

__all__ = ["compare", "Comparison", "multiply_adds"]


@dataclass
class Comparison(Result):
    """One row per variant (``"original"`` first, then each remedy) and its log10 pathway map.

    Row keys: ``name``, ``center_edge_ratio``, ``center_corner_ratio`` (2-D), the map's
    :func:`edgewise.facts.spread` (``max_over_min``, ``unread``, ``uniform``, …), ``rf_size`` (output
    layer, per axis), ``uneven_layers`` (layers that read their padding on one side only),
    ``parameters`` and ``multiply_adds`` (absolute and relative to the original), ``changed_layers``,
    ``output_shape``, ``sensitivity_center_*_ratio`` with ``n_inits``, ``error`` when the remedy does
    not fit this model, ``unchanged`` when every layer it rewrote computes what it did (the row then
    repeats the original's numbers), ``amount`` for a padding mode measured with another amount than its
    default (``compare(..., amount="keep")``), and ``edge_pools`` for a padding mode that pads pools too: the pools
    that still read −∞ or zeros past the input (:func:`edge_pools`), with what each is (``edge_pool_ops``: a
    function's name, ``F.max_pool2d``, or a layer's class).
    """

    model: str
    input_shape: tuple
    rows: list
    maps: dict = field(default_factory=dict)
    sensitivity: dict = field(default_factory=dict)
    norm_stats: str = "ignore"

    kind = "remedy_comparison"

    def to_dict(self) -> dict:
        return {"model": self.model, "input_shape": list(self.input_shape), "rows": self.rows,
                "norm_stats": self.norm_stats}

    def without(self, name) -> "Comparison":
        """This comparison less the variant ``name`` (e.g. the model's own padding, which is the original)."""
        return Comparison(self.model, self.input_shape, [r for r in self.rows if r["name"] != name],
                          {n: m for n, m in self.maps.items() if n != name},
                          {n: m for n, m in self.sensitivity.items() if n != name}, self.norm_stats)

    def arrays(self) -> dict:
        return {**{f"log10_{name}": m for name, m in self.maps.items()},
                **{f"sensitivity_{name}": m for name, m in self.sensitivity.items()}}


def multiply_adds(model: nn.Module, input_shape) -> int:
    """Multiply-adds of one forward pass of a single input: every weight (``*weight`` parameter of a
    convolution or linear layer, extra coordinate and global weights included) times the output
    positions that use it (:func:`edgewise.limits.forward_costs`)."""
    return forward_costs(model, input_shape).multiply_adds


def _row(name: str, module: nn.Module, shape, base: dict | None, n_inits: int,
         seed: int = 0, measured=None, on_chunk=None, disposable: bool = False,
         norm_stats: str = "ignore") -> tuple[dict, np.ndarray, np.ndarray | None]:
    graph = trace(module, shape, name=name, norm_stats=norm_stats)
    p = pathways(graph)
    rf = receptive_field(graph)
    spatial = [l for l in rf.layers if l.spatial]
    last = spatial[-1] if spatial else rf.layers[-1]
    s = p.summary
    row = {"name": name, "center_edge_ratio": s["center_edge_ratio"],
           "center_corner_ratio": s.get("center_corner_ratio") if len(shape) == 3 else None,
           "rf_size": [float(v) for v in last.size], "rf_layer": last.name,
           "uneven_layers": [l.name for l in rf.layers if l.unread and any(l.unread)],
           "parameters": sum(t.numel() for t in module.parameters()),
           "multiply_adds": multiply_adds(module, shape),
           "changed_layers": len(changes(module)), "output_shape": list(graph[graph.output].shape),
           **map_spread(p)}
    if base is not None:
        row["parameters_change"] = row["parameters"] / base["parameters"] - 1
        row["multiply_adds_change"] = row["multiply_adds"] / base["multiply_adds"] - 1
    sens = None
    if n_inits:
        from ..sensitivity import init_sensitivity

        # the first n of a run's initialisations are a run of n (the seeds are drawn in order)
        result = measured.first(n_inits) if _reusable(measured, n_inits, seed) else \
            init_sensitivity(module, shape, n_inits=n_inits, seed=seed, on_chunk=on_chunk, in_place=disposable)
        sens, row["n_inits"] = result.map, n_inits
        for k in ("center_edge_ratio", "center_corner_ratio"):
            if k in result.summary and (k == "center_edge_ratio" or len(shape) == 3):
                row[f"sensitivity_{k}"] = result.summary[k]
    return row, p.log10, sens


def edge_pools(graph) -> list[str]:
    """The pools of ``graph`` that read −∞ or zeros past their input along some axis: a zero-mode window that pads,
    or whose last window (``ceil_mode``) runs past the input. After a padding mode's rewrite, the pools it could not
    reach: those a model's forward calls as functions (``F.avg_pool2d``), and pool layers of a class it does not
    rewrite (timm's ``MaxPool2dSame``, a pool that returns indices)."""
    from .._axis import Window

    out = []
    for nd in graph:
        if nd.kind != "pool" or nd.is_padding:
            continue
        for a, n_in, n_out in zip(nd.axes, *graph.grid(nd.name)):
            if type(a) is Window and a.mode == "zeros" and a.kernel > 1 and (
                    any(a.pad) or (n_out - 1) * a.stride + a.extent > n_in):
                out.append(nd.name)
                break
    return out


def _reusable(measured, n_inits: int, seed: int) -> bool:
    """Whether ``measured`` holds the original's row: ``init_sensitivity`` as compare runs it (every output unit,
    the model's own initialisation), with this seed and at least ``n_inits`` initialisations."""
    return (measured is not None and measured.method == "init" and measured.n_inits >= n_inits
            and measured.seed == seed and measured.to == "all" and measured.layer == "output"
            and measured.std is None)


def _own_tensors(variant: nn.Module, module: nn.Module) -> bool:
    """Whether ``variant`` has parameters ``module`` lacks (coordconv's and global's weights)."""
    mine = {k for k, _ in module.named_parameters()}
    return any(k not in mine for k, _ in variant.named_parameters())


def _same_as(base: dict, name: str, changed: int) -> dict:
    """The row of a remedy that left the model computing what it did: the original's numbers."""
    return {**base, "name": name, "changed_layers": changed, "unchanged": True, "parameters_change": 0.0,
            "multiply_adds_change": 0.0}


LARGE_BYTES = 1 << 24  # 16 MiB of parameters (ResNet-18 has 45)
LARGE_INPUT = 1 << 16  # input values per example (3x224x224 has 150 528)


def _trim() -> None:
    """Hand freed heap back to the system (glibc keeps it otherwise, and the next variant's peak adds up)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def compare(model, input_shape=None, remedies=None, *, padding: str = "same", n_inits: int = 0, seed: int = 0,
            progress: bool = True, original=None, step=None, norm_stats: str = "ignore",
            amount: str | None = None) -> Comparison:
    """Apply each remedy to ``model`` and measure it beside the original.

    Args:
        model: an ``nn.Module`` or model reference (spec string, ``torchvision:NAME``, …).
        input_shape: C×L or C×H×W.
        remedies: names from :func:`edgewise.remedies.names` (default: all of them).
        padding: padding of spec nets.
        n_inits: also measure the expected squared input gradient over this many random
            initialisations of each variant (:func:`edgewise.sensitivity.init_sensitivity`; rows get
            ``sensitivity_center_*_ratio``, ``sensitivity`` holds the maps); 0 skips it.
        seed: seeds those initialisations (the same draws as ``init_sensitivity(..., seed=seed)``).
        original: the original's :class:`~edgewise.sensitivity.Sensitivity` when already measured as compare
            measures it (``to="all"``, the model's own initialisation) with this ``seed`` and at least ``n_inits``
            initialisations (its first ``n_inits`` are used, not measured again; anything else is measured).
        step: ``step(text)`` before each variant and after each chunk of its initialisations (a progress
            hook: ``"same (2/12)"``, ``"same (2/12), initialisations 8/32"``).
        norm_stats: whether normalisation statistics are connections in the path counts (see
            :func:`edgewise.trace`); recorded in the result.
        amount: how much the padding modes pad (their ``amount`` option: ``"same"`` by default, ``"keep"`` each
            layer's own amount, ``"full"``, ``"valid"``); the other remedies have no such option.

    Returns:
        :class:`Comparison`; a remedy that does not fit the model (e.g. ``valid`` shrinking a
        ResNet's maps below a stride) gets a row with ``error`` instead of numbers. A remedy whose every
        rewritten layer computes what it did (``same`` on a ResNet, whose layers already pad that way) is the
        original: its row repeats the original's numbers, with ``unchanged`` set, and is not measured again.
    """
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
    if input_shape is None:
        raise EdgewiseError("compare needs input_shape (C×L or C×H×W, e.g. (3, 224, 224))")
    shape = parse_shape(input_shape)
    if amount is not None:
        check_amount(amount)
    chosen = [get(r).name for r in remedies] if remedies is not None else names()  # get: names the valid ones
    module = load(model, shape, padding=padding)
    from tqdm.auto import tqdm

    import gc

    # a full collection costs ~0.15 s once a report has drawn its figures: worth it only where a variant's copy
    # and passes are big enough for their peaks to add up (ResNet-scale weights or inputs)
    large = (sum(p.numel() * p.element_size() for p in module.parameters()) >= LARGE_BYTES
             or math.prod(shape) >= LARGE_INPUT)

    def hook(text):
        if step is None:
            return None
        step(text)
        return lambda done, total: step(f"{text}, initialisations {done}/{total}")

    from ..sensitivity import _init_seeds

    # a padding remedy's copy gets the original's weights, seed for seed: each is drawn once, then copied
    with shared_draws(_init_seeds(seed, n_inits)) as store:
        base, base_map, base_sens = _row("original", module, shape, None, n_inits, seed, original,
                                         hook(f"original (1/{len(chosen) + 1})"), norm_stats=norm_stats)
        rows, maps, sens = [base], {"original": base_map}, {"original": base_sens}
        for i, name in enumerate(tqdm(chosen, desc="remedies", disable=None if progress else True, leave=False)):
            on_chunk = hook(f"{name} ({i + 2}/{len(chosen) + 1})")
            try:
                own = {"amount": amount} if amount is not None and "amount" in get(name).options else {}
                variant = apply(module, name, input_shape=shape, **own)
                if n_inits and _own_tensors(variant, module):  # (global's passes need the memory more)
                    store.close()
                if all(c["unchanged"] for c in changes(variant)[len(changes(module)):]):
                    row, log10, s = _same_as(base, name, len(changes(variant))), base_map, base_sens
                else:
                    row, log10, s = _row(name, variant, shape, base, n_inits, seed, on_chunk=on_chunk,
                                         disposable=True,  # the rewritten copy is ours to reinitialise
                                         norm_stats=norm_stats)
                    if "pools" in get(name).options:  # (a mode that pads pools too: those it could not reach)
                        g = trace(variant, shape, norm_stats=norm_stats)
                        row["edge_pools"] = edge_pools(g)
                        row["edge_pool_ops"] = [g[n].op for n in row["edge_pools"]]
                del variant
            except EdgewiseError as e:
                rows.append({"name": name, "error": str(e).splitlines()[0], **own})
                continue
            finally:
                if large:  # the rewritten model and its passes go before the next one is built
                    gc.collect()
                    _trim()
            rows.append({**row, **own})
            maps[name], sens[name] = log10, s
    return Comparison(describe(model), shape, rows, maps, sens if n_inits else {}, norm_stats)
