"""Activation maximisation for many positions and seeds in one batch, with the forward stopped at the target
and run only on the receptive-field crops the objectives read (:mod:`edgewise.visualize.window`), BatchNorms
folded into their convolutions and channels-last forms of 1×1 convolutions and pads
(:mod:`edgewise.visualize.fold`); what a call proves about a model's architecture is remembered for the next
(:mod:`edgewise.visualize.memo`).

Every call freezes the model's weights and puts it in eval mode for its duration (both restored after),
registers forward hooks only on the layers the objectives read, and removes them in ``finally``.
"""

from __future__ import annotations

import contextlib
import difflib
import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .._device import device_of
from .._trace import parse_shape
from ..errors import EdgewiseError
from . import param as param_mod
from . import fold, memo, window
from .objectives import Objective
from .results import Visualization

__all__ = ["activations", "maximize", "hooked", "model_device", "placed"]


class _Stop(Exception):
    """Raised by the last hook: nothing after the target layers needs to run."""


def _modules(model: nn.Module, names) -> dict[str, nn.Module]:
    mods = dict(model.named_modules())
    out = {}
    for n in sorted(names):
        if n not in mods or n == "":
            close = difflib.get_close_matches(n, [m for m in mods if m], n=3)
            raise EdgewiseError(f"{type(model).__name__} has no layer {n!r}"
                                + (f"; did you mean {', '.join(map(repr, close))}?" if close else "")
                                + " List the layers with [name for name, _ in model.named_modules()].")
        out[n] = mods[n]
    return out


@contextlib.contextmanager
def hooked(model: nn.Module, layers):
    """Within the block, a forward pass records ``layers``' outputs in the yielded dict and stops (raising a
    private exception that :func:`forward_to` swallows) once all are recorded. Hooks are always removed."""
    mods = _modules(model, layers)
    acts: dict[str, torch.Tensor] = {}
    handles = []

    def hook(name):
        def record(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                raise EdgewiseError(f"layer {name!r} returns {type(output).__name__}, not a tensor; "
                                    "choose a layer whose output is one tensor")
            acts[name] = output
            if len(acts) == len(mods):
                raise _Stop
        return record

    try:
        for name, m in mods.items():
            handles.append(m.register_forward_hook(hook(name)))
        yield acts
    finally:
        for h in handles:
            h.remove()


def forward_to(model: nn.Module, x: torch.Tensor, acts: dict) -> dict:
    """Run ``model`` on ``x`` inside :func:`hooked` until its layers are recorded; returns ``acts``."""
    acts.clear()
    try:
        model(x)
    except _Stop:
        pass
    return acts


def activations(model: nn.Module, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    """The outputs of ``layers`` (dotted names) for input ``x``, running the model only as far as needed."""
    layers = [layers] if isinstance(layers, str) else list(layers)
    with hooked(model, layers) as acts:
        out = dict(forward_to(model, x, acts))
    missing = set(layers) - set(out)
    if missing:
        raise EdgewiseError(f"layers {sorted(missing)} did not run in the forward pass")
    return out


@contextlib.contextmanager
def _frozen(model: nn.Module):
    flags = [(p, p.requires_grad) for p in model.parameters()]
    modes = [(m, m.training) for m in model.modules()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        model.eval()
        yield
    finally:
        for p, f in flags:
            p.requires_grad_(f)
        for m, t in modes:
            m.training = t


def model_device(model: nn.Module, device: str | torch.device | None = None) -> torch.device:
    """``device`` (checked: :func:`edgewise._device.usable_device`), or where the model's parameters are (the CPU
    when it has none)."""
    return device_of(model, device)


@contextlib.contextmanager
def placed(model: nn.Module, device: torch.device):
    """The model on ``device`` within the block and back where it was after (nothing moves if it is there)."""
    here = {t.device for t in (*model.parameters(), *model.buffers())}
    if here <= {device}:
        yield
        return
    if len(here) > 1:
        raise EdgewiseError(f"the model's tensors are on several devices ({', '.join(sorted(map(str, here)))}); "
                            "move it to one, or leave device=None")
    (origin,) = here
    model.to(device)
    try:
        yield
    finally:
        model.to(origin)


#: the most input pixels one forward pass takes on a CPU: larger batches of large images run slower there (at
#: 224 px, EfficientNet-Lite0's activations of 2 images stay in cache, those of 16 do not: 1.7x per image)
_PIXELS_PER_PASS = 2 ** 17


def _agree(got: torch.Tensor, want: torch.Tensor) -> bool:
    """Whether the crop path's objectives equal the full input's, up to float summation order."""
    return bool(torch.allclose(got, want, rtol=1e-4, atol=1e-5 * (1.0 + float(want.abs().max()))))


def _hashable(f):
    """``f`` where it can be a dict key, else a new object (a key that never matches: nothing is remembered)."""
    try:
        hash(f)
        return f
    except TypeError:
        return object()


def _plans(model: nn.Module, objs: list[Objective], shape) -> list[window.Crops | None]:
    """The crop plans to try, tightest first: crops that end where the fields end, then crops on the stride grid
    (None: the whole input), each once."""
    plans: list = []
    for tight in (True, False):
        p = window.plan(model, objs, shape, tight=tight)
        if _signature(p) not in map(_signature, plans):
            plans.append(p)
    return plans


def _signature(crops: window.Crops | None):
    """What identifies a crop plan: where each crop lies and what it reads."""
    return None if crops is None else (tuple(crops.starts), tuple(crops.sizes), tuple(map(repr, crops.objectives)))


def maximize(model: nn.Module, objectives: Objective | Sequence[Objective], input_shape, *, seeds: int = 4,
             steps: int = 128, lr: float = 0.05, param: str = "fourier", jitter: int = 1,
             preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None, seed: int = 0,
             progress: bool = False, device: str | torch.device | None = None, crop: bool = True) -> Visualization:
    """Find the input that maximises each objective, ``seeds`` times, all in one batch.

    Args:
        model: any module; its weights are not changed (frozen during the call).
        objectives: one or several (e.g. the same unit at several positions); row ``p·seeds + s`` of the batch
            optimises objective ``p`` from random start ``s``.
        input_shape: C×H×W (or C×L) of one input.
        steps, lr: Adam steps and learning rate on the image parameters.
        param: ``fourier`` (decorrelated, the default) or ``pixels``.
        jitter: each step shows the model a window moved by up to this many pixels inside a larger canvas
            (robustness without moving the image border relative to the unit); 0 turns it off.
        preprocess: applied to images in [0, 1] before the model (e.g. ImageNet normalisation).
        seed: seeds the starting images and the jitter.
        progress: show a bar over the steps.
        device: where to run (default: where the model's parameters are); the model is moved there for the
            call and back after.
        crop: the exact shortcuts: run the model only on each objective's receptive-field crop of the window
            (units only; skipped where it does not help; ending where the field ends, else, where that does
            not agree, on the stride grid), with eval-mode BatchNorms folded into the convolutions before them,
            and, on the channels-last crops, 1×1 convolutions as matrix products and pads as one copy
            (:mod:`edgewise.visualize.fold`). The shortcuts are checked against the full window on a random
            image (and not used where they do not agree) once per architecture, input shape, preprocess,
            device type and crop plan: a later call with the same ones reuses the verdict while the model's
            fingerprint holds (:mod:`edgewise.visualize.memo`; weights are not part of it). The
            objectives then differ from the plain forward's by float rounding only (≈ 1e-6 relative);
            ``crop=False`` runs the full window through the model as it is, every step.

    Returns:
        A :class:`Visualization`: images (objectives × seeds × C × H × W, in [0, 1]), the objective at every
        step, its final value on the un-jittered images, and the configuration.
    """
    objs = [objectives] if isinstance(objectives, Objective) else list(objectives)
    if not objs or not all(isinstance(o, Objective) for o in objs):
        raise EdgewiseError("maximize needs one or more objectives (edgewise.visualize.unit / channel)")
    if seeds < 1 or steps < 0 or jitter < 0:
        raise EdgewiseError(f"seeds must be ≥ 1 and steps, jitter ≥ 0; got seeds={seeds}, steps={steps}, "
                            f"jitter={jitter}")
    shape = parse_shape(input_shape)
    size = tuple(shape[1:])
    n_obj, batch = len(objs), len(objs) * seeds
    gen = torch.Generator().manual_seed(seed)
    device = model_device(model, device)
    images = param_mod.make(param, (batch, shape[0], *(n + 2 * jitter for n in size)), gen).to(device)
    opt = torch.optim.Adam(images.parameters(), lr=lr)
    layers = set().union(*(o.layers() for o in objs))
    prep = preprocess or (lambda x: x)
    history = np.zeros((steps, n_obj, seeds), np.float32)

    def evaluate(x: torch.Tensor, group: list[Objective], acts: dict) -> torch.Tensor:
        """(objectives, rows each) on ``x``, whose rows are the objectives' rows in order."""
        forward_to(model, prep(x), acts)
        missing = layers - set(acts)
        if missing:
            raise EdgewiseError(f"layers {sorted(missing)} did not run in the forward pass")
        # split once: slicing per objective would send back one zero-filled full-size gradient per objective
        chunks = {k: v.split(len(x) // len(group)) for k, v in acts.items()}
        return torch.stack([o({k: c[p] for k, c in chunks.items()}) for p, o in enumerate(group)])

    cap = _PIXELS_PER_PASS if device.type == "cpu" else math.inf

    def pieces(canvas: torch.Tensor, offsets: torch.Tensor, crops):
        """(objective indices, the model's input for their rows, the objectives as read on it, a function that
        writes the input's gradient into a canvas-shaped gradient), in passes of at most ``cap`` input pixels
        (whole objectives, at least one)."""
        rows = len(canvas) // n_obj
        if crops is None:
            per = window.per_pass(cap, rows * math.prod(size))
            for a in range(0, n_obj, per):
                them = slice(a * rows, (a + per) * rows)
                yield (list(range(a, min(a + per, n_obj))), param_mod.crop(canvas[them], offsets, size),
                       objs[a:a + per], lambda grad, g, them=them: param_mod.crop(grad[them], offsets, size).copy_(g))
        else:
            offset = offsets[0].tolist()
            for group in crops.passes(rows, cap):
                yield (group, crops.gather(canvas, group, offset), [crops.objectives[p] for p in group],
                       lambda grad, g, group=group: crops.put(grad, group, offset, g))

    def values(canvas: torch.Tensor, offsets: torch.Tensor, crops, acts: dict, grad: torch.Tensor | None = None):
        """(objectives, rows each) on ``canvas``; with ``grad`` (zeros shaped like ``canvas``), the gradient of
        each pass's −sum is written there as soon as it is computed (its activations freed before the next
        pass; every row reads one window, so the passes' gradients never overlap)."""
        out: list = [None] * n_obj
        for group, x, group_objs, put in pieces(canvas, offsets, crops):
            if grad is not None:
                x = x.detach().requires_grad_(True)
            v = evaluate(x, group_objs, acts)
            if grad is not None:
                (-v.sum()).backward()
                put(grad, x.grad)
                v = v.detach()
            for p, row in zip(group, v):
                out[p] = row
        return torch.stack(out)

    centre = torch.full((1, len(size)), jitter, dtype=torch.long)
    # a random image on which the shortcuts (crops, folded BatchNorms, 1×1 products) must give the plain forward's
    # objectives; its forward also gives the layers' shapes, to check the objectives' channels and positions
    probe = torch.rand((1, *shape), generator=torch.Generator().manual_seed(seed + 1)).to(device)

    def plain_forward():
        """The layers' shapes (the objectives checked against them) and the objectives on ``probe``."""
        with hooked(model, layers) as acts, torch.inference_mode():
            forward_to(model, prep(probe), acts)
            shapes = {k: tuple(v.shape[1:]) for k, v in acts.items()}
            for o in objs:
                o.check(shapes)
            return shapes, torch.stack([o(acts) for o in objs])

    with _frozen(model), placed(model, device):
        # what an earlier call proved for this architecture is not proved again (before the shortcuts change it)
        known, want = memo.memo(model), None
        shapes_key = ("shapes", shape, frozenset(layers))
        shapes = known.get(shapes_key)
        if shapes is None:
            shapes, want = plain_forward()
            memo.remember(known, shapes_key, shapes)
        for o in objs:
            o.check(shapes)
        plans = _plans(model, objs, shape) if crop else []  # traces the model: no hooks on it
        keys = [("agree", shape, frozenset(layers), _hashable(preprocess), device.type, _signature(p)) for p in plans]
        # the probe's plain objectives are needed where a plan must be checked before one known to agree
        first = next((k for k in keys if known.get(k, True)), None)
        if want is None and first is not None and first not in known:
            want = plain_forward()[1]

        def agrees(crops, shortcuts: bool, acts: dict) -> bool:
            """Whether the shortcuts (``crops`` and the changed layers) give ``want`` on ``probe``."""
            if not shortcuts:
                return True
            with torch.inference_mode():
                try:
                    got = values(probe.expand(n_obj, *shape).contiguous(), centre * 0, crops, acts)
                except RuntimeError:  # e.g. a tight crop's maps of unequal sizes meeting at a sum
                    return False
            return _agree(got, want)

        with fold.folded(model, layers) if crop else contextlib.nullcontext(0) as n_folded, \
                fold.channels_last_forms(model) if crop else contextlib.nullcontext(0) as n_forms, \
                hooked(model, layers) as acts:
            crops = None
            for plan, key in zip(plans, keys):  # the first plan that agrees, tightest first
                agree = known[key] if key in known else memo.remember(
                    known, key, agrees(plan, plan is not None or n_folded > 0 or n_forms > 0, acts))
                if agree:
                    crops = plan
                    break
            for step in tqdm(range(steps), desc="maximising", unit="step", disable=None if progress else True,
                             leave=False):
                # one offset per step for the whole batch: a single slice (or gather) instead of one per row
                offsets = torch.randint(0, 2 * jitter + 1, (1, len(size)), generator=gen)
                canvas = images()
                # the passes back-propagate to their own inputs; one backward through the parameterisation after
                grad = torch.zeros_like(canvas)
                vals = values(canvas.detach(), offsets, crops, acts, grad)
                opt.zero_grad(set_to_none=True)
                canvas.backward(grad)
                opt.step()
                history[step] = vals.cpu().numpy()
            with torch.inference_mode():
                canvas = images()
                final_images = param_mod.crop(canvas, centre, size)
                final = values(canvas, centre, crops, acts).cpu().numpy()
    out = final_images.detach().cpu().numpy().reshape(n_obj, seeds, *shape)
    config = {"input_shape": list(shape), "seeds": seeds, "steps": steps, "lr": lr, "param": param,
              "jitter": jitter, "seed": seed, "preprocess": getattr(preprocess, "__name__", None),
              "crop": crops is not None}
    return Visualization(images=out, values=history, final=final, objectives=[repr(o) for o in objs],
                         config=config)

