"""The remedies by name: what each does, its per-layer transform and the options it accepts."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import unknown_name
from .transforms import to_coordconv, to_global, to_nonoverlapping, to_padding

__all__ = ["Remedy", "REMEDIES", "COMMON_OPTIONS", "get", "names"]


@dataclass(frozen=True)
class Remedy:
    """One registry entry.

    Attributes:
        name: the registry key.
        description: one line.
        transform: ``transform(conv, *, name, pads, current_mode, **options) -> nn.Module``, one layer.
        options: option → (default, one-line meaning), beyond :data:`COMMON_OPTIONS`.
        kind: ``padding``, ``stride``, ``coordconv`` or ``global``.
        changes_shape: whether the output size of a layer can change.
        skip_pointwise: default of the ``skip_pointwise`` option (True where a 1×1 layer is left as it is).
    """

    name: str
    description: str
    transform: Callable[..., Any] = field(repr=False)
    options: dict[str, tuple[Any, str]]
    kind: str
    changes_shape: bool = False
    skip_pointwise: bool = True


#: options every remedy accepts: option → (default, meaning)
COMMON_OPTIONS: dict[str, tuple[Any, str]] = {
    "layers": (None, "dotted names of the convolutions to change (default: all nn.Conv1d/nn.Conv2d)"),
    "skip_pointwise": (None, "leave 1×1 convolutions alone (default: True where the remedy is a no-op for them)"),
    "input_shape": (None, "C×L or C×H×W: run the result once to check shapes (and draw global connections); "
                          "spec nets use their own"),
}

#: padding modes that copy real values, which a pool's own padding (−∞ or zeros: an edge) is not
COPYING = ("circular", "reflect", "replicate", "symmetric")
_AMOUNT = {"amount": ("same", "how much to pad: 'same' ((k−1)·d split), 'full', 'valid' or 'keep' the layer's own")}
_SEED = "seed of the new weights when zero_init=False"


_POOLS = {"pools": (True, "max/average pools read this mode too wherever they read past the input (the padding of "
                          "ResNet's 3×3/2 max pool, the last windows ceil_mode adds to GoogLeNet's), so no layer keeps "
                          "an edge; False: the convolutions only")}


def _padding(name: str, mode: str, description: str, amount: str | None = None, shape: bool = False) -> Remedy:
    fixed = amount is not None
    transform = functools.partial(to_padding, mode=mode, **({"amount": amount} if fixed else {}))
    options = ({} if fixed else dict(_AMOUNT)) | (dict(_POOLS) if mode in COPYING else {})
    return Remedy(name, description, transform, options, "padding", changes_shape=shape)


REMEDIES: dict[str, Remedy] = {r.name: r for r in [
    _padding("valid", "zeros", "no padding: only windows inside the input (the output shrinks by (k−1)·d)",
             "valid", True),
    _padding("same", "zeros", "zero padding of (k−1)·d split over both sides (the output keeps its size)", "same"),
    _padding("full", "zeros", "zero padding of (k−1)·d on each side: every tap of every input is used "
                              "(the output grows by (k−1)·d)", "full", True),
    _padding("circular", "circular", "wrap-around padding: the input is a torus, every position is alike"),
    _padding("reflect", "reflect", "mirror padding without repeating the edge sample (numpy 'reflect')"),
    _padding("replicate", "replicate", "padding that repeats the edge sample (numpy 'edge')"),
    _padding("symmetric", "symmetric", "half-sample mirror padding, edge sample repeated (numpy 'symmetric')"),
    _padding("partial", "partial", "partial-convolution padding (Liu et al. 2018): zero padding, each output "
                                   "re-weighted by taps in window / taps inside the image"),
    Remedy("nonoverlapping", "stride = kernel size (a larger stride is kept): windows do not overlap, each input "
                             "feeds at most one output per layer (the output shrinks)", to_nonoverlapping, {}, "stride", changes_shape=True),
    Remedy("coordconv", "CoordConv (Liu et al. 2018): row/column coordinate channels in [−1, 1] concatenated to "
                        "each convolution's input", to_coordconv,
           {"with_r": (False, "add a radius channel sqrt(row² + col²)"),
            "zero_init": (True, "start the coordinate weights at 0, so the model computes the same function"),
            "seed": (0, _SEED)}, "coordconv", skip_pointwise=False),
    Remedy("global", "random global connections (after Krizhevsky 2010): each output position also reads "
                     "n_global fixed random positions of the whole input map", to_global,
           {"n_global": (8, "random input positions per output position"),
            "seed": (0, "seed of the random positions (and of the new weights when zero_init=False); "
                        "each layer draws from its own seed derived from this and its name"),
            "zero_init": (True, "start the global weights at 0, so the model computes the same function")},
           "global", skip_pointwise=False),
]}


def names() -> list[str]:
    """The registry's names, in order."""
    return list(REMEDIES)


def get(name: str) -> Remedy:
    """The entry for ``name``; unknown names raise with the valid ones and the closest match."""
    if isinstance(name, Remedy):
        return name
    if name not in REMEDIES:
        raise unknown_name("remedy", "remedies", name, REMEDIES)
    return REMEDIES[name]
