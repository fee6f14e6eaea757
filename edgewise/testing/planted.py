"""A small CNN with one planted padding detector: the reference case for :func:`edgewise.probe.units.units`.

The network is a real spec net (``conv3/c8, conv3/c8, conv1/c16, gap, fc10`` on 1×28×28 digits) with seeded
random weights, except:

- ``conv1`` channel 0 is a constant: zero weights and bias 1, so after its ReLU it is 1 at every position;
- ``conv2`` channel :data:`PLANTED` reads only that channel, through the zero-sum kernel
  ``[[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]`` (bias 0). Wherever its window lies inside the image it sums a
  constant against weights that sum to zero and gives exactly 0; where the window reads zero padding it gives
  1 per padded tap (3 along an edge, 5 at a corner). It responds to the padding and to nothing else;
- every other ``conv2`` filter ignores the constant channel, and every bias but the constant's is 0, so that
  the empty canvas around the digits reads as 0, like the zero padding: no other unit sees the padding against
  a non-zero background;
- ``conv3`` is 1×1 (it reads no padding), so the planted map reaches the classifier through it unchanged in
  shape: silencing the planted unit changes ``conv3``'s map on the outermost ring only.

With ``padding="circular"`` the same weights are used with circular padding: the constant channel wraps around
as a constant, the planted filter gives exactly 0 everywhere, and no unit reads padding against a background.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import EdgewiseError

__all__ = ["planted_detector", "PLANTED", "SPEC", "SHAPE"]

SPEC = "conv3/c8, conv3/c8, conv1/c16, gap, fc10"
SHAPE = (1, 28, 28)
#: the channel of ``conv2`` that is the planted detector
PLANTED = 5
_KERNEL = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])


def planted_detector(padding: str = "zeros", seed: int = 0) -> tuple[nn.Module, tuple[int, ...], tuple[str, int]]:
    """The planted-detector network (:mod:`edgewise.testing.planted`), its input shape and the planted unit.

    Args:
        padding: ``"zeros"`` (the detector sees the padding) or ``"circular"`` (the same weights, nothing to see).
        seed: seeds the random weights (a ``torch.Generator``; the global random state is untouched).

    Returns:
        ``(model, (1, 28, 28), ("conv2", PLANTED))``.

    Example:
        >>> model, shape, (layer, channel) = planted_detector()
        >>> layer, channel
        ('conv2', 5)
    """
    from .. import nets

    modes = {"zeros": "same", "circular": "circular"}
    if padding not in modes:
        raise EdgewiseError(f"planted_detector: padding {padding!r} is unknown; choose 'zeros' or 'circular'")
    with torch.random.fork_rng(devices=[]):  # the builder's own init draws are overwritten below
        model = nets.from_spec(SPEC, SHAPE, padding=modes[padding], bias=True)
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / fan_in) ** 0.5 if p.dim() > 1 else 0.0)
        model.conv1.weight[0] = 0.0
        model.conv1.bias[0] = 1.0
        model.conv2.weight[:, 0] = 0.0
        model.conv2.weight[PLANTED] = 0.0
        model.conv2.weight[PLANTED, 0] = _KERNEL
    return model.eval(), SHAPE, ("conv2", PLANTED)
