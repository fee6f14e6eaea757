"""Resolve what a user names as a model: a spec string, ``torchvision:NAME``, ``timm:NAME``, ``file.py:fn`` or
``pkg.mod:fn``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from . import nets
from ._trace import parse_shape, trace
from .errors import EdgewiseError
from .graph import Graph

__all__ = ["load", "as_graph", "describe", "default_input", "register_resolver", "prefix", "BUILD_SEED",
           "random_weights"]

#: the seed a referenced model's own random initialisation is drawn from (``torch.manual_seed(BUILD_SEED)`` before
#: its builder or factory runs, the global random state restored after): the same command gives the same weights
BUILD_SEED = 0


def _seeded(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` under ``torch.manual_seed(BUILD_SEED)``, leaving the caller's random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(BUILD_SEED)
        return build()


def _torchvision(name: str) -> nn.Module:
    try:
        import torchvision
    except ImportError:
        raise EdgewiseError(
            f"torchvision:{name} needs torchvision; install the extra with `pip install 'edgewise[zoo]'`"
        ) from None
    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        import difflib

        close = difflib.get_close_matches(name, available, n=3)
        raise EdgewiseError(f"torchvision has no model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else
                            f"; available: {', '.join(sorted(available))}"))
    from ._init import mark_builder  # re-initialisation re-runs the builder (the model's own init)

    model = _seeded(lambda: torchvision.models.get_model(name, weights=None))  # nothing downloaded
    return mark_builder(model, "torchvision", name)


def _import_timm(name: str):
    try:
        import timm
    except ImportError:
        raise EdgewiseError(f"timm:{name} needs timm; install the extra with `pip install 'edgewise[timm]'`") from None
    return timm


def _timm(name: str) -> nn.Module:
    """``timm.create_model(name, pretrained=False)``: the architecture with random weights, nothing downloaded.
    ``name`` may carry a pretrained tag (``resnet10t.c3_in1k``), which only selects the default input size."""
    timm = _import_timm(name)
    if not timm.is_model(name):
        import difflib

        available = timm.list_models()
        close = difflib.get_close_matches(name, available, n=3)
        raise EdgewiseError(f"timm has no model {name!r}" + (
            f"; did you mean {', '.join(close)}?" if close else
            f"; list its {len(available)} architectures with `python -c 'import timm; print(timm.list_models())'`"))
    from ._init import mark_builder  # re-initialisation re-runs the builder (the model's own init)

    return mark_builder(_seeded(lambda: timm.create_model(name, pretrained=False)), "timm", name)


def default_input(ref) -> tuple[int, ...] | None:
    """The input shape a model reference is analysed at when the user gives none: 3×224×224 for
    ``torchvision:`` and ``pretrained:`` models, the size of the default pretrained configuration for
    ``timm:NAME`` (3×176×176 for ``resnet10t``, 3×224×224 when it names none); None for the rest
    (spec strings, files, modules), which need an explicit shape."""
    if not isinstance(ref, str):
        return None
    if ref.startswith(("torchvision:", "pretrained:")):
        return (3, 224, 224)
    if ref.startswith("timm:"):
        name = ref.split(":", 1)[1]
        timm = _import_timm(name)
        cfg = timm.models.get_pretrained_cfg(name) if timm.is_model(name) else None
        size = getattr(cfg, "input_size", None)
        return tuple(int(v) for v in size) if size else (3, 224, 224)
    return None


#: trained networks whose weights ship inside an installed package (the ``trained`` extra)
PRETRAINED = ("efficientnet-lite0",)


def _pretrained(name: str) -> nn.Module:
    if name.replace("_", "-") not in PRETRAINED:
        raise EdgewiseError(f"no packaged trained model {name!r}; available: {', '.join(PRETRAINED)}")
    from .pretrained import efficientnet_lite0

    return efficientnet_lite0(traceable=True)  # traceable: plain Conv2d layers, identical outputs


#: model-reference prefix → function(ref) -> nn.Module, for references that packages above this module provide;
#: they register on import (edgewise.experiments registers ``experiment``), so this module imports none of them
_RESOLVERS: dict[str, Callable[[str], nn.Module]] = {}
#: prefix → the module that registers it, imported by name only when such a reference comes before that module
_PROVIDERS = {"experiment": "edgewise.experiments"}


def register_resolver(prefix: str, resolve: Callable[[str], nn.Module]) -> None:
    """Make ``load("PREFIX:...")`` call ``resolve("PREFIX:...")`` (the whole reference) for an ``nn.Module``."""
    _RESOLVERS[prefix] = resolve


def _resolver(ref: str) -> Callable[[str], nn.Module] | None:
    prefix = ref.split(":", 1)[0]
    if prefix not in _RESOLVERS and prefix in _PROVIDERS:
        importlib.import_module(_PROVIDERS[prefix])  # fallback: the provider registers itself on import
    return _RESOLVERS.get(prefix)


def _user_code(ref: str, what: str, user_file: str | None, call):
    """``call()``, which runs the user's code: its failures are the user's bug, reported with their file and
    line as an EdgewiseError, and a ``sys.exit`` inside it is an error too, not a silent exit of edgewise."""
    try:
        return call()
    except EdgewiseError:
        raise
    except SystemExit as e:
        raise EdgewiseError(f"{what} called sys.exit({e.code!r}) (model reference {ref!r}); a model reference must "
                            "name an nn.Module or a function that returns one") from None
    except SyntaxError as e:
        raise EdgewiseError(f"syntax error in {e.filename}, line {e.lineno}: {e.msg} "
                            f"(model reference {ref!r})") from None
    except Exception as e:
        frames = traceback.extract_tb(e.__traceback__)
        mine = [f for f in frames if user_file and Path(f.filename).resolve() == Path(user_file).resolve()]
        at = (mine or frames)[-1]
        raise EdgewiseError(f"{what} raised {type(e).__name__}: {e} ({at.filename}, line {at.lineno}; model "
                            f"reference {ref!r})") from None


def _factory(ref: str) -> nn.Module:
    """``file.py:fn`` or ``pkg.mod:fn``: imports (runs) that code and calls ``fn`` — by design, so only name code
    you trust."""
    where, _, fn = ref.rpartition(":")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise EdgewiseError(f"model file {where!r} does not exist")
        spec = importlib.util.spec_from_file_location(f"_edgewise_user_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        _user_code(ref, f"model file {where}", str(path), lambda: spec.loader.exec_module(module))
    else:
        try:
            found = importlib.util.find_spec(where)
        except (ImportError, ValueError) as e:
            raise EdgewiseError(f"cannot import {where!r} for model {ref!r}: {e}") from None
        if found is None:
            raise EdgewiseError(f"cannot import {where!r} for model {ref!r}: no module named {where!r}")
        module = _user_code(ref, f"importing {where}", found.origin, lambda: importlib.import_module(where))
    make = getattr(module, fn, None)
    if make is None:
        raise EdgewiseError(f"{where!r} has no attribute {fn!r} (model reference {ref!r})")
    if callable(make) and not isinstance(make, nn.Module):
        model = _user_code(ref, f"{fn}()", getattr(module, "__file__", None), make)
    else:
        model = make
    if not isinstance(model, nn.Module):
        raise EdgewiseError(f"{ref} returned {type(model).__name__}, not an nn.Module"
                            + ("; does the function end with `return model`?" if model is None else ""))
    return model


def load(ref, input_shape=None, padding: str = "same", **spec_options) -> nn.Module:
    """An ``nn.Module`` from a reference: a module itself, a spec string, ``torchvision:NAME``,
    ``timm:NAME`` (``timm.create_model(NAME, pretrained=False)``), ``pretrained:efficientnet-lite0`` (ImageNet
    weights shipped in a package),
    ``experiment:TASK[:REMEDY[:SEED]]`` (an experiment task's quick network, trained on the spot),
    ``path/to/file.py:make_model`` or ``package.module:make_model``.

    Spec strings need ``input_shape`` (it fixes 1-D vs 2-D) and take ``padding`` and
    the other options of :func:`edgewise.nets.from_spec`.
    """
    if isinstance(ref, nn.Module):
        return ref
    if not isinstance(ref, str):
        raise EdgewiseError(f"expected an nn.Module or a model reference string, got {type(ref).__name__}")
    if ref.startswith("torchvision:"):
        return _torchvision(ref.split(":", 1)[1])
    if ref.startswith("timm:"):
        return _timm(ref.split(":", 1)[1])
    if ref.startswith("pretrained:"):
        return _pretrained(ref.split(":", 1)[1])
    resolve = _resolver(ref) if ":" in ref else None
    if resolve is not None:  # experiment:TASK[:REMEDY[:SEED]] and other registered prefixes
        return resolve(ref)
    if ":" in ref:
        return _seeded(lambda: _factory(ref))
    if input_shape is None:
        raise EdgewiseError(f"spec {ref!r} needs an input shape (e.g. 1x64 or 3x32x32)")
    return nets.from_spec(ref, input_shape, padding=padding, **spec_options)


def random_weights(ref) -> str | None:
    """Why the model a reference names has random weights, or None where it may be trained: a spec string is built at
    random, ``torchvision:NAME`` with ``weights=None``, ``timm:NAME`` with ``pretrained=False``."""
    if not isinstance(ref, str):
        return None
    if ref.startswith("torchvision:"):
        return "built with weights=None"
    if ref.startswith("timm:"):
        return "built with pretrained=False"
    return None if ":" in ref else "a spec net, built at random"


def describe(ref) -> str:
    """Short display name for a model reference."""
    if isinstance(ref, str):
        return ref
    return getattr(ref, "reference", None) or getattr(ref, "spec", None) or type(ref).__name__


def prefix(model: nn.Module, layer: str) -> nn.Module:
    """The part of ``model`` that computes ``layer`` (a dotted module name), as a module whose output is
    that layer's: every analysis then stops there, and ops later in the model are never looked at."""
    import torch.fx

    from ._trace import _Tracer, fx_prefix

    flags = {m: m.training for m in model.modules()}
    try:
        model.eval()
        fx_graph = _Tracer().trace(model)
    except Exception as e:
        raise EdgewiseError(f"could not trace {type(model).__name__} with torch.fx to cut it at {layer!r}: "
                            f"{type(e).__name__}: {e}") from e
    finally:
        for m, flag in flags.items():
            m.training = flag
    cut = torch.fx.GraphModule(model, fx_prefix(model, fx_graph, layer), class_name=f"{type(model).__name__}Prefix")
    cut.train(model.training)
    for key in ("_edgewise_builder",):
        if hasattr(model, key):
            setattr(cut, key, getattr(model, key))
    return cut


def as_graph(model, input_shape=None, padding: str = "same", layer: str | None = None,
             norm_stats: str | None = None) -> Graph:
    """A :class:`Graph` from a Graph, an ``nn.Module`` (traced) or a model reference string; with ``layer``,
    only what that layer depends on is traced; ``norm_stats`` as in :func:`edgewise.trace` (default
    ``"ignore"``; a Graph keeps the choice it was traced with, and asking for the other one is an error)."""
    if isinstance(model, Graph):
        if norm_stats is not None and norm_stats != model.norm_stats:
            raise EdgewiseError(f"this Graph was traced with norm_stats={model.norm_stats!r}; trace the model again "
                                f"with edgewise.trace(model, shape, norm_stats={norm_stats!r})")
        return model
    norm_stats = norm_stats or "ignore"
    if input_shape is None:
        shape = getattr(model, "input_shape", None)
        if shape is None:
            raise EdgewiseError("input_shape is required to trace a model (C×L or C×H×W, e.g. (3, 224, 224))")
        input_shape = shape
    shape = parse_shape(input_shape)
    module, name = load(model, shape, padding=padding), describe(model)
    if layer is None:
        return trace(module, shape, name=name, norm_stats=norm_stats)
    try:  # the whole model's trace is cached and serves every layer it has a node for
        graph = trace(module, shape, name=name, norm_stats=norm_stats)
        if layer in graph:
            return graph
    except EdgewiseError:
        pass
    return trace(module, shape, name=name, layer=layer, norm_stats=norm_stats)
