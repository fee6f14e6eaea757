"""``apply(model, remedy, **options)``: a remedied deep copy of any model, with a record of what changed."""

from __future__ import annotations

import copy
import difflib
import zlib

import torch
import torch.nn as nn

from .._axis import Window
from .._trace import _module_op, _Unsupported, parse_shape
from ..errors import EdgewiseError
from ..limits import forward_costs, input_spec
from .registry import COMMON_OPTIONS, get
from .pools import padded_pool
from .transforms import _per_axis, describe, geometry

__all__ = ["apply", "changes"]

def _model_name(model: nn.Module) -> str:
    spec = getattr(model, "spec", None)
    return f"spec net {spec!r}" if isinstance(spec, str) else type(model).__name__


def _pad_layer(m: nn.Module, nd: int):
    """(per-axis pads, mode) of a padding layer that a convolution can absorb, else None.

    The tracer's own reading of the layer decides (one mapping of padding layers to modes)."""
    if getattr(m, "value", 0) != 0 or isinstance(m, nn.modules.conv._ConvNd):  # (a non-zero constant is not zero
        return None  # padding; a convolution, perhaps one this rewrite has just replaced, is no padding layer)
    try:
        kind, axes = _module_op(m, nd)
    except _Unsupported:
        return None
    if kind != "pool" or len(axes) != nd or not all(isinstance(a, Window) and a.kernel == 1 and a.stride == 1
                                                    for a in axes):
        return None
    return tuple(a.pad for a in axes), axes[0].mode


def _previous_pad(parent: nn.Module, key: str, conv: nn.Module):
    """The padding layer right before ``conv`` in an nn.Sequential, when the conv itself pads nothing."""
    if not isinstance(parent, nn.Sequential):
        return None
    keys = list(parent._modules)
    i = keys.index(key)
    pads, _ = geometry(conv)
    if i == 0 or any(pads_ != (0, 0) for pads_ in pads):
        return None
    found = _pad_layer(parent._modules[keys[i - 1]], len(conv.kernel_size))
    return (keys[i - 1], *found) if found else None


def _change_text(old: dict, new: dict) -> str:
    parts = []
    for key in dict.fromkeys([*old, *new]):
        a, b = old.get(key, "none"), new.get(key, "none")
        if a == b:
            continue
        if key == "padding" and a.rsplit(" ", 1)[0] == b.rsplit(" ", 1)[0]:
            b = b.rsplit(" ", 1)[1]  # same amounts: "padding (1, 1) zeros → symmetric"
        parts.append(f"{key} {a} → {b}")
    return "; ".join(parts) or f"padding {old['padding']} unchanged"


def _check_options(remedy, options: dict) -> dict:
    allowed = {**COMMON_OPTIONS, **remedy.options}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise EdgewiseError(f"remedy {remedy.name!r} takes no option {', '.join(map(repr, unknown))}; "
                            f"its options: {', '.join(f'{k} (default {v[0]!r}): {v[1]}' for k, v in allowed.items())}")
    return {k: options.get(k, v[0]) for k, v in remedy.options.items()}


def _probe(model: nn.Module, shape, remedy: str, name: str, keep: bool = False, original: nn.Module | None = None
           ) -> None:
    """Run the rewritten model once (eval mode, no grad: no statistics move) to check that shapes still fit; the
    pass measures its cost too (:func:`edgewise.limits.forward_costs` remembers it for the comparison). Where it
    does not fit, the sliding windows of a second pass (and of ``original``'s) say where, for the message
    (``keep``: it may suggest ``amount='keep'``)."""
    try:
        forward_costs(model, shape)
        return
    except EdgewiseError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure: the pass below says where, with this error
        first = e
    windows, error = _window_pass(model, shape)
    if error is None:  # the plain pass runs, the measuring one did not: its error, without a place
        raise EdgewiseError(_misfit(remedy, name, shape, [], {}, first)) from first
    before = {n: out for n, _, _, out in _window_pass(original, shape)[0]} if original is not None else {}
    raise EdgewiseError(_misfit(remedy, name, shape, windows, before, error, keep)) from error


_WINDOWS = (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)


def _window_pass(model: nn.Module, shape) -> tuple[list, Exception | None]:
    """The sliding-window layers one pass of a zero input enters, in order, as ``[name, module, input size, output
    size]`` (None: it did not finish), and the exception that stopped the pass (None if it ran). Eval mode, no
    grad; the modes are restored."""
    entered, open_ = [], {}

    def pre(mod, args, n):
        open_.setdefault(id(mod), []).append(len(entered))
        entered.append([n, mod, tuple(args[0].shape[2:]), None])

    def post(mod, args, out):
        entered[open_[id(mod)].pop()][3] = tuple(out.shape[2:])

    handles = []
    for n, m in model.named_modules():
        if isinstance(m, _WINDOWS):
            handles += [m.register_forward_pre_hook(lambda mod, args, n=n: pre(mod, args, n)),
                        m.register_forward_hook(post)]
    modes = [(m, m.training) for m in model.modules()]
    dtype, device = input_spec(model)
    x = torch.zeros((1, *shape), dtype=dtype, device=device)
    model.eval()
    try:
        with torch.no_grad():
            model(x)
        return entered, None
    except Exception as e:  # noqa: BLE001 - the caller says what failed
        return entered, e
    finally:
        for h in handles:
            h.remove()
        for m, training in modes:
            m.training = training


def _misfit(remedy: str, name: str, shape, windows: list, before: dict, error: Exception, keep: bool = False) -> str:
    """One plain sentence for a remedy whose model no longer runs: which layer, what size, why; ``windows``: the
    rewritten model's :func:`_window_pass`, ``before``: the original's output size by layer; with ``keep``, that a
    padding mode may keep each layer's own amount (the size then stays)."""
    unit = "samples" if len(shape) == 2 else "px"
    size = "×".join(map(str, shape[1:]))
    head = f"remedy {remedy!r} does not fit {name} on the {size}-{unit[:-1] if unit == 'samples' else 'px'} input"
    if not windows:
        return f"{head}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    layer, mod, n, out = windows[-1]
    k = _per_axis(getattr(mod, "kernel_size", 1), len(n))
    d = _per_axis(getattr(mod, "dilation", 1), len(n))
    pad = _per_axis(getattr(mod, "padding", 0), len(n)) if not isinstance(getattr(mod, "padding", 0), str) else \
        (0,) * len(n)
    extent = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
    if out is None and any(nn_ + 2 * pp < e for nn_, pp, e in zip(n, pad, extent)):
        what = "-tap kernel" if isinstance(mod, nn.modules.conv._ConvNd) else " window"
        return (f"{head}: it shrinks the feature map to {'×'.join(map(str, n))} {unit} before {layer}, "
                f"less than its {'×'.join(map(str, extent))}{what}")
    also = ("; or pass amount='keep' (edgewise remedies --amount keep) to pad each layer by its own amount in "
            "this mode (the unpadded ones then keep their edge)") if keep else ""
    first = next(((w, o) for w, _, _, o in windows if o is not None and w in before and before[w] != o), None)
    where = f"at {layer}" if first is None else (
        f"at {first[0]} ({'×'.join(map(str, first[1]))} {unit} where the original has "
        f"{'×'.join(map(str, before[first[0]]))})")
    stops = "" if first is None or first[0] == layer else f"; the pass stops after {layer}"
    return (f"{head}: it changes the feature-map size {where}, but a later layer needs that size "
            f"(a residual sum, a concatenation or a dense head{stops}); use a size-keeping remedy or pass "
            "layers=[...]" + also)


def apply(model: nn.Module, remedy: str, **options) -> nn.Module:
    """A deep copy of ``model`` with every nn.Conv1d / nn.Conv2d replaced by the ``remedy`` layer.

    Weights are shared by value: every original state_dict key keeps its value; coordconv and global add
    their own parameters. The input model is never changed and train/eval modes are kept. A padding layer
    (``edgewise.nets.Pad``, nn.ZeroPad2d, …) right before a non-padding convolution in an nn.Sequential is
    folded into it (and replaced by nn.Identity) for every remedy but ``nonoverlapping``.

    Args:
        model: any module (a spec net from :func:`edgewise.nets.from_spec`, a torchvision model, a bare conv).
        remedy: a name from :data:`edgewise.remedies.REMEDIES`.
        **options: :data:`~edgewise.remedies.registry.COMMON_OPTIONS` and the remedy's own options.

    Returns:
        The new module, with ``remedy_changes``: one dict per changed layer (``layer``, ``remedy``, ``old``,
        ``new`` class names, ``change``, and ``unchanged``: the layer computes what it did, e.g. ``same`` on a
        layer that already pads that way), appended to the input's own record. Spec nets keep ``spec`` and
        ``input_shape``; a padding remedy sets ``padding`` to its name.

    Example:
        >>> from edgewise import nets
        >>> net = apply(nets.from_spec("4*conv3", (1, 32, 32)), "symmetric")
        >>> changes(net)[0]["change"]
        'padding (1, 1) zeros → symmetric'
    """
    entry = get(remedy)
    own = _check_options(entry, options)
    pools = own.pop("pools", False)
    if not isinstance(model, nn.Module):
        raise EdgewiseError(f"apply expects an nn.Module, got {type(model).__name__}")
    name = _model_name(model)
    new = copy.deepcopy(model)
    convs = {n: m for n, m in new.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))}
    if not convs:
        raise EdgewiseError(f"{name} has no nn.Conv1d/nn.Conv2d layer for remedy {entry.name!r} to change")
    chosen = options.get("layers")
    if chosen is not None:
        chosen = [chosen] if isinstance(chosen, str) else list(chosen)
        for n in chosen:
            if n not in convs:
                close = difflib.get_close_matches(n, convs, n=3)
                raise EdgewiseError(f"layers: {name} has no convolution {n!r}" + (
                    f"; did you mean {', '.join(map(repr, close))}?" if close else "")
                    + f" Its convolutions: {', '.join(list(convs)[:12])}{', …' if len(convs) > 12 else ''}")
    skip = options.get("skip_pointwise")
    if skip is None:  # layers named explicitly are changed even when 1×1
        skip = entry.skip_pointwise and chosen is None
    skip = bool(skip)
    targets = [n for n in (chosen if chosen is not None else convs)
               if not (skip and all(k == 1 for k in convs[n].kernel_size))]
    if not targets:
        raise EdgewiseError(f"{name}: every convolution remedy {entry.name!r} would change is 1×1, where it is a "
                            "no-op; pass skip_pointwise=False to replace them anyway")
    records = []
    for n in targets:
        conv = convs[n]
        parent_name, _, key = n.rpartition(".")
        parent = new.get_submodule(parent_name) if n else None
        pads, mode = geometry(conv)
        folded = _previous_pad(parent, key, conv) if parent is not None and entry.kind != "stride" else None
        if folded:
            pad_key, pads, mode = folded
        before = describe(conv, pads, mode)
        kwargs = dict(own)
        if "seed" in kwargs:  # each layer its own stream, stable under adding or removing other layers
            kwargs["seed"] = zlib.crc32(f"{kwargs['seed']}:{n}".encode())
        layer = entry.transform(conv, name=n, pads=pads, current_mode=mode, **kwargs)
        after = describe(layer)
        text = _change_text(before, after)
        if folded:
            setattr(parent, pad_key, nn.Identity())
            text = f"folds {'.'.join(filter(None, [parent_name, pad_key]))} into it; {text}"
        if hasattr(layer, "n_global"):
            layer.remedy_name = n
        if parent is None:
            new = layer
        elif layer is not conv:
            setattr(parent, key, layer)
        records.append({"layer": n, "remedy": entry.name, "old": type(conv).__name__, "new": type(layer).__name__,
                        "change": text, "unchanged": before == after})
    if pools and chosen is None:
        records += _pad_pools(new, entry.name)
    if entry.kind == "padding" and isinstance(getattr(model, "spec", None), str):
        new.padding = entry.name
    new.remedy_changes = list(getattr(model, "remedy_changes", [])) + records
    shape = options.get("input_shape") or getattr(model, "input_shape", None)
    if shape is not None:  # (last: the cost it measures is remembered for the finished model)
        keep = "amount" in own and own["amount"] != "keep"  # (a padding mode may keep each layer's own amount)
        _probe(new, parse_shape(shape), entry.name, name, keep, model)
    return new


def _pad_pools(model: nn.Module, mode: str) -> list[dict]:
    """Every max/average pool of ``model`` that reads past its input (its padding, or a last window ``ceil_mode``
    adds) made to read ``mode`` there (:func:`.pools.padded_pool`), in place; their change records."""
    records = []
    for n, pool in list(model.named_modules()):
        layer = padded_pool(pool, mode)
        if layer is None:
            continue
        parent_name, _, key = n.rpartition(".")
        setattr(model.get_submodule(parent_name), key, layer)
        most = "−∞" if "Max" in type(pool).__name__ else None  # (an average pool: zeros it counts, or nothing)
        past = [f"padding {layer.padding} ({most or ('zeros' if pool.count_include_pad else 'nothing')})"] \
            if any(layer.padding) else []
        if layer.ceil_mode and any(s != 1 for s in layer.stride):
            past.append(f"the last windows ceil_mode adds ({most or 'nothing'} past the input)")
        records.append({"layer": n, "remedy": mode, "old": type(pool).__name__, "new": type(layer).__name__,
                        "change": f"{' and '.join(past)} → {mode}", "unchanged": False})
    return records


def changes(model: nn.Module) -> list[dict]:
    """What :func:`apply` changed in ``model`` (every call's records, oldest first); [] for an untouched model."""
    return list(getattr(model, "remedy_changes", []))
