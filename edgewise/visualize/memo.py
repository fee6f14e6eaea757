"""What earlier calls worked out about a model's architecture (BatchNorm pairs, receptive fields, layer shapes,
whether the shortcuts agree with the plain forward), kept while the model's fingerprint holds.

The fingerprint (:func:`edgewise._fingerprint.fingerprint`) covers module names, types, forward functions,
hyper-parameters and buffer shapes, but not weights or running statistics: only facts that follow from the
architecture belong here. They are kept per model object and, where the fingerprint may be shared, for the
few architectures seen last (a second ``efficientnet_lite0()`` finds the first one's facts).
"""

from __future__ import annotations

import weakref

import torch.nn as nn

from .._fingerprint import LRU, fingerprint

__all__ = ["memo", "remember", "clear"]

#: the most facts kept per architecture (the oldest go first): keys may hold callables made anew for every call
SIZE = 64
_BY_MODEL: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()
_SHARED = LRU(8)


def memo(model: nn.Module) -> dict:
    """The dict of facts about ``model``'s architecture: empty for an architecture not seen (or forgotten) and
    after the model's fingerprint changed."""
    key, shareable = fingerprint(model)
    hit = _BY_MODEL.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    known = _SHARED.get(key) if shareable else None
    if known is None:
        known = {}
        if shareable:
            _SHARED.put(key, known)
    _BY_MODEL[model] = (key, known)
    return known


def remember(known: dict, key, value):
    """``known[key] = value`` (``known`` from :func:`memo`), the oldest facts dropped beyond :data:`SIZE`;
    returns ``value``."""
    known[key] = value
    while len(known) > SIZE:
        del known[next(iter(known))]
    return value


def clear() -> None:
    """Forget every model's facts (the next call works them out again, as on a new architecture)."""
    _BY_MODEL.clear()
    _SHARED.clear()
