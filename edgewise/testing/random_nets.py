"""Hypothesis strategies that build small random real networks for property tests.

:func:`random_net` draws an ``nn.Module`` made of random blocks covering every
layer edgewise understands (convolutions with every padding scheme, explicit
padding modules and ``F.pad``, max/avg/adaptive pooling, up-sampling, batch
norm, residual additions, squeeze-excitation and spatial gates (broadcast
multiply), channel concatenation, Flatten/mean + Linear heads) together with
an input shape it runs on. Shapes are tracked while drawing (each block is run
on a zero tensor), so every drawn model is valid. :func:`random_spec` draws
spec strings for :func:`edgewise.nets.from_spec`.

Example:
    >>> @given(random_net())
    ... def test_something(case):
    ...     model, shape = case.model, case.input_shape
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import strategies as st

from ..nets import PADDINGS, Pad, from_spec, padding_amounts

__all__ = ["NetCase", "SpecCase", "random_net", "random_spec", "random_input_shape", "ones_", "BLOCKS", "LINEAR_BLOCKS"]

MAX_CHANNELS = 3
#: largest input per axis, and largest intermediate map per axis (padding/up-sampling may grow it)
MAX_INPUT = {1: 24, 2: 12}
MAX_SIZE = {1: 32, 2: 14}

#: every block kind :func:`random_net` can draw
BLOCKS = ("conv", "pad", "torch_pad", "fpad", "pool", "adaptive", "upsample", "bn_relu", "residual", "se",
          "gate", "cat")
#: blocks whose all-ones-weight version makes the network linear with unit weights, so that the
#: gradient of the summed outputs is exactly the path count (see :func:`ones_`)
LINEAR_BLOCKS = ("conv", "pad", "torch_pad", "fpad", "upsample_nearest", "residual", "cat")


@dataclass
class NetCase:
    """A drawn network, the input shape it runs on, and a description of its blocks."""

    model: nn.Module
    input_shape: tuple[int, ...]
    blocks: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"NetCase(input_shape={self.input_shape}, model={self.model!r})"


@dataclass
class SpecCase:
    """A drawn spec string with the ``from_spec`` arguments it is valid for."""

    spec: str
    input_shape: tuple[int, ...]
    padding: str
    width: int

    def build(self, activation: str | None = "relu") -> nn.Module:
        return from_spec(self.spec, self.input_shape, padding=self.padding, width=self.width, activation=activation)


# ------------------------------------------------------------------ modules

class Seq(nn.Module):
    """Blocks applied in order (a ModuleList, so fx names are ``blocks.3.conv``)."""

    def __init__(self, blocks):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


class FPad(nn.Module):
    """Functional ``F.pad`` (traced as a function call, not a module)."""

    def __init__(self, pad, mode):
        super().__init__()
        self.pad, self.mode = tuple(pad), mode

    def forward(self, x):
        return F.pad(x, self.pad, mode=self.mode)

    def extra_repr(self):
        return f"{self.pad}, mode={self.mode!r}"


class Add(nn.Module):
    """``body(x) + shortcut(x)``."""

    def __init__(self, body, shortcut):
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class SqueezeExcite(nn.Module):
    """``x * sigmoid(conv(mean(x)))``: a gate broadcast over positions (and channels when 1 wide)."""

    def __init__(self, channels, gate_channels, ndim, functional_mean):
        super().__init__()
        conv = nn.Conv1d if ndim == 1 else nn.Conv2d
        self.pool = None if functional_mean else (nn.AdaptiveAvgPool1d if ndim == 1 else nn.AdaptiveAvgPool2d)(1)
        self.fc = conv(channels, gate_channels, 1)
        self.dims = tuple(range(2, 2 + ndim))

    def forward(self, x):
        s = x.mean(dim=self.dims, keepdim=True) if self.pool is None else self.pool(x)
        return x * torch.sigmoid(self.fc(s))


class SpatialGate(nn.Module):
    """``x * sigmoid(conv(x))`` with a one-channel gate: broadcast over channels (CBAM-style)."""

    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        return x * torch.sigmoid(self.conv(x))


class Head(nn.Module):
    """Flatten (module or ``torch.flatten``) or a spatial mean without keepdim, then Linear layers."""

    def __init__(self, reduce, layers, ndim):
        super().__init__()
        self.reduce, self.layers, self.dims = reduce, layers, tuple(range(2, 2 + ndim))
        self.flatten = nn.Flatten() if reduce == "Flatten" else None

    def forward(self, x):
        if self.reduce == "Flatten":
            x = self.flatten(x)
        elif self.reduce == "torch.flatten":
            x = torch.flatten(x, 1)
        else:
            x = x.mean(dim=self.dims)
        return self.layers(x)


class Cat(nn.Module):
    """``torch.cat([a(x), b(x)], dim=1)``."""

    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], dim=1)


def ones_(model: nn.Module) -> nn.Module:
    """Set every weight to 1 and every bias to 0 (in place): then a linear net's gradient counts paths."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.fill_(0.0 if name.endswith("bias") else 1.0)
    return model


# ---------------------------------------------------------------- helpers

def _out_shape(module: nn.Module, shape) -> tuple[int, ...]:
    with torch.no_grad():
        try:
            y = module.eval()(torch.zeros((1, *shape)))
        except Exception as e:  # a generator bug: blocks are meant to be valid by construction
            raise AssertionError(f"random_nets drew an invalid block for input {shape}: {module!r}: {e}") from e
    return tuple(y.shape[1:])


def _conv_cls(ndim):
    return nn.Conv1d if ndim == 1 else nn.Conv2d


@st.composite
def _divisor_pair(draw, c_in):
    """(groups, out_channels) with groups | c_in and groups | out_channels ≤ MAX_CHANNELS."""
    groups = draw(st.sampled_from([g for g in range(1, c_in + 1) if c_in % g == 0]))
    out = draw(st.sampled_from([c for c in range(1, MAX_CHANNELS + 1) if c % groups == 0]))
    return groups, out


@st.composite
def _conv(draw, shape, same_size=False, out_channels=None):
    """A Conv1d/Conv2d valid for ``shape``; ``same_size`` keeps the spatial size (padding='same')."""
    c_in, spatial = shape[0], shape[1:]
    ndim = len(spatial)
    if out_channels is None:
        groups, c_out = draw(_divisor_pair(c_in))
    else:
        groups, c_out = 1, out_channels
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    style = "same" if same_size else draw(st.sampled_from(["int", "int", "same", "valid"]))
    # largest padding per side the mode can read: reflect needs pad < n, circular pad ≤ n
    limits = [{"reflect": n - 1, "circular": n}.get(mode, 3) for n in spatial]
    if style == "int":
        if ndim == 2 and draw(st.booleans()):
            pads = [draw(st.integers(0, min(3, lim))) for lim in limits]
        else:
            pads = [draw(st.integers(0, min([3] + limits)))] * ndim
    kernels, dils, strides = [], [], []
    for a, n in enumerate(spatial):
        k = draw(st.integers(1, 4))
        d = draw(st.integers(1, 3)) if k > 1 else 1

        def ok(k, d):
            span = (k - 1) * d
            if style == "same":
                return span - span // 2 <= limits[a]
            return span + 1 <= n + (2 * pads[a] if style == "int" else 0)

        while not ok(k, d):
            k, d = (k, d - 1) if d > 1 else (k - 1, 1)
        kernels.append(k)
        dils.append(d)
        strides.append(1 if style == "same" else draw(st.integers(1, 3)))
    if style == "int":
        padding = pads[0] if len(set(pads)) == 1 and draw(st.booleans()) else tuple(pads)
    else:
        padding = style

    def arg(v):  # ints and tuples both occur in user code
        return v[0] if ndim == 1 or (len(set(v)) == 1 and draw(st.booleans())) else tuple(v)

    return _conv_cls(ndim)(c_in, c_out, arg(kernels), stride=arg(strides), padding=padding,
                           dilation=arg(dils), groups=groups, padding_mode=mode)


@st.composite
def _pad_amounts(draw, spatial, mode, limit_wide=True):
    """F.pad-order amounts (last axis first), valid for ``mode`` on ``spatial``."""
    pad = []
    for n in reversed(spatial):
        hi_limit = {"reflect": n - 1, "circular": n}.get(mode, 3) if limit_wide else 4
        hi_limit = min(hi_limit, 3)
        pad += [draw(st.integers(0, hi_limit)), draw(st.integers(0, hi_limit))]
    return pad


@st.composite
def _pad_block(draw, shape, kind):
    spatial, ndim = shape[1:], len(shape) - 1
    if kind == "pad":  # edgewise's own Pad: every mode, pads wider than the input allowed
        mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular", "symmetric"]))
        return Pad(draw(_pad_amounts(spatial, mode, limit_wide=False)), mode)
    if kind == "fpad":
        mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
        return FPad(draw(_pad_amounts(spatial, mode)), mode)
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    pad = tuple(draw(_pad_amounts(spatial, mode)))
    if ndim == 1:
        cls = {"constant": nn.ZeroPad1d, "reflect": nn.ReflectionPad1d, "replicate": nn.ReplicationPad1d,
               "circular": nn.CircularPad1d}[mode]
    else:
        cls = {"constant": nn.ZeroPad2d, "reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d,
               "circular": nn.CircularPad2d}[mode]
    if len(set(pad)) == 1 and draw(st.booleans()):
        return cls(pad[0])
    return cls(pad)


@st.composite
def _pool(draw, shape):
    spatial, ndim = shape[1:], len(shape) - 1
    kind = draw(st.sampled_from(["max", "avg"]))
    k = draw(st.integers(min(2, min(spatial)), min(4, min(spatial))))
    ceil = draw(st.booleans())
    s = draw(st.integers(2 if ceil else 1, 3))  # ceil_mode only matters with a stride
    p = draw(st.integers(0, k // 2))
    d = draw(st.integers(1, 2)) if kind == "max" and (2 * (k - 1) + 1) <= min(spatial) + 2 * p else 1
    if kind == "max":
        cls = nn.MaxPool1d if ndim == 1 else nn.MaxPool2d
        return cls(k, s, padding=p, dilation=d, ceil_mode=ceil)
    cls = nn.AvgPool1d if ndim == 1 else nn.AvgPool2d
    return cls(k, s, padding=p, ceil_mode=ceil, count_include_pad=draw(st.booleans()))


@st.composite
def _adaptive(draw, shape):
    spatial, ndim = shape[1:], len(shape) - 1
    out = tuple(draw(st.integers(1, n + 1)) for n in spatial)
    avg = draw(st.booleans())
    cls = {(True, 1): nn.AdaptiveAvgPool1d, (True, 2): nn.AdaptiveAvgPool2d,
           (False, 1): nn.AdaptiveMaxPool1d, (False, 2): nn.AdaptiveMaxPool2d}[avg, ndim]
    return cls(out[0] if ndim == 1 else out)


@st.composite
def _upsample(draw, shape, nearest_only=False):
    spatial, ndim = shape[1:], len(shape) - 1
    cap = MAX_SIZE[ndim]
    mode = "nearest" if nearest_only else draw(st.sampled_from(["nearest", "linear"]))
    if mode == "linear" and ndim == 2:
        mode = "bilinear"
    align = draw(st.booleans()) if mode != "nearest" else None
    if draw(st.booleans()):
        scales = [f for f in (1.5, 2.0, 2.5, 3.0) if all(int(n * f) <= cap for n in spatial)]
        if scales:
            return nn.Upsample(scale_factor=draw(st.sampled_from(scales)), mode=mode, align_corners=align)
    size = tuple(draw(st.integers(1, cap)) for _ in spatial)
    return nn.Upsample(size=size[0] if ndim == 1 else size, mode=mode, align_corners=align)


@st.composite
def _head(draw, shape, linear):
    """Flatten/mean + Linear (+ activation + Linear); None when the map is too large to flatten."""
    features = 1
    for d in shape:
        features *= d
    choices = ["Flatten", "torch.flatten"] if features <= 400 else []
    if not linear:  # a mean is linear but not with unit weights
        choices.append("mean")
    if not choices:
        return None
    reduce = draw(st.sampled_from(choices))
    n_in = shape[0] if reduce == "mean" else features
    hidden = draw(st.integers(1, 3))
    layers = [nn.Linear(n_in, hidden)]
    if draw(st.booleans()):
        layers += [nn.Identity() if linear else nn.ReLU(), nn.Linear(hidden, draw(st.integers(1, 3)))]
    return Head(reduce, nn.Sequential(*layers), len(shape) - 1)


def _bn_relu(shape):
    bn = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(shape[0])
    return nn.Sequential(bn, nn.ReLU())


@st.composite
def _residual(draw, shape, linear):
    """``body(x) + shortcut(x)``; body keeps the size; a 1×1 conv shortcut when channels change."""
    body = draw(_conv(shape, same_size=True))
    c_out = body.out_channels
    layers = [body]
    if not linear and draw(st.booleans()):
        layers += [nn.ReLU(), draw(_conv((c_out, *shape[1:]), same_size=True, out_channels=c_out))]
    shortcut = nn.Identity() if c_out == shape[0] else _conv_cls(len(shape) - 1)(shape[0], c_out, 1)
    return Add(nn.Sequential(*layers), shortcut)


@st.composite
def _cat(draw, shape):
    c = shape[0]
    a = draw(_conv(shape, same_size=True, out_channels=draw(st.integers(1, max(1, MAX_CHANNELS - 1)))))
    room = MAX_CHANNELS - a.out_channels
    if c <= room and draw(st.booleans()):
        b = nn.Identity()
    else:
        b = draw(_conv(shape, same_size=True, out_channels=draw(st.integers(1, max(1, room)))))
    return Cat(a, b)


@st.composite
def _block(draw, shape, kind, linear):
    if kind == "conv":
        return draw(_conv(shape))
    if kind in ("pad", "fpad", "torch_pad"):
        return draw(_pad_block(shape, kind))
    if kind == "pool":
        return draw(_pool(shape))
    if kind == "adaptive":
        return draw(_adaptive(shape))
    if kind in ("upsample", "upsample_nearest"):
        return draw(_upsample(shape, nearest_only=kind == "upsample_nearest"))
    if kind == "bn_relu":
        return _bn_relu(shape)
    if kind == "residual":
        return draw(_residual(shape, linear))
    if kind == "se":
        return SqueezeExcite(shape[0], draw(st.sampled_from([1, shape[0]])), len(shape) - 1, draw(st.booleans()))
    if kind == "cat":
        return draw(_cat(shape))
    if kind == "gate":
        return SpatialGate(draw(_conv(shape, same_size=True, out_channels=1)))
    raise ValueError(kind)


def _fits(shape) -> bool:
    ndim = len(shape) - 1
    return all(1 <= n <= MAX_SIZE[ndim] for n in shape[1:]) and shape[0] <= MAX_CHANNELS + 1


@st.composite
def random_input_shape(draw, ndim=None, max_channels=2):
    ndim = ndim or draw(st.sampled_from([1, 2]))
    c = draw(st.integers(1, max_channels))
    sizes = st.sampled_from(range(1, MAX_INPUT[ndim] + 1))  # uniform: tiny maps are dull
    return (c, *[draw(sizes) for _ in range(ndim)])


@st.composite
def random_net(draw, ndim=None, max_blocks=5, kinds=BLOCKS, linear=False, head=None) -> NetCase:
    """Draw a random small network and an input shape it runs on.

    Args:
        ndim: 1 or 2 spatial axes (random when None).
        max_blocks: most blocks before the optional head.
        kinds: block kinds to choose from (:data:`BLOCKS`; ``"upsample_nearest"`` too).
        linear: only blocks that are linear in the input, no activations, no head nonlinearity;
            with :func:`ones_` the gradient of the summed outputs then counts paths.
        head: end with a Flatten/mean + Linear head (random when None).
    """
    input_shape = shape = draw(random_input_shape(ndim))
    blocks, names = [], []
    weighted = tuple(kinds) + (("conv",) * 2 if "conv" in kinds else ())  # convolutions are the point
    # sampled_from, not integers(): hypothesis' integers favour the smallest values, and 1-block nets are dull
    for _ in range(draw(st.sampled_from(range(min(2, max_blocks), max_blocks + 1)))):
        kind = draw(st.sampled_from(weighted))
        block = draw(_block(shape, kind, linear))
        new = _out_shape(block, shape)
        if not _fits(new):
            continue  # grew too large (or channels too many): skip this block
        blocks.append(block)
        names.append(kind)
        shape = new
    if head is None:
        head = draw(st.booleans())
    if head:
        block = draw(_head(shape, linear))
        if block is not None:
            blocks.append(block)
            names.append("head")
    if not blocks:
        blocks.append(draw(_conv(shape)))
        names.append("conv")
    model = Seq(blocks).eval()
    return NetCase(model, input_shape, names)


# ------------------------------------------------------------------ spec strings

@st.composite
def random_spec(draw, ndim=None, paddings=tuple(PADDINGS), max_layers=4) -> SpecCase:
    """Draw a spec string valid for ``from_spec`` with a random input shape, padding and width.

    Covers convK/sS/dD/cC, maxpool, avgpool, gap, fc, repeats ``N*`` and ``res(...)``,
    with every padding scheme in :data:`edgewise.nets.PADDINGS`.
    """
    shape = draw(random_input_shape(ndim))
    padding = draw(st.sampled_from(paddings))
    width = draw(st.integers(1, MAX_CHANNELS))
    mode = PADDINGS[padding][0]
    size = list(shape[1:])
    ndim = len(size)
    items: list[str] = []
    flat = False

    def conv_ok(n, k, s, d):
        lo, hi = padding_amounts(padding, k, d)
        # equal pads go to Conv(padding_mode=...), where reflect needs pad < n and circular pad ≤ n
        # (unequal pads and 'symmetric' use edgewise's Pad, which takes any width)
        if lo == hi and (mode == "reflect" and lo >= n or mode == "circular" and lo > n):
            return None
        new = (n + lo + hi - (k - 1) * d - 1) // s + 1
        return new if 1 <= new <= MAX_SIZE[ndim] else None

    def draw_conv():
        k = draw(st.integers(1, 5))
        s = draw(st.integers(1, 3))
        d = draw(st.integers(1, 2)) if k > 1 else 1
        text = f"conv{k}" + (f"/s{s}" if s > 1 or draw(st.booleans()) else "") + (f"/d{d}" if d > 1 else "")
        if draw(st.booleans()):
            text += f"/c{draw(st.integers(1, MAX_CHANNELS))}"
        return text

    for _ in range(draw(st.integers(1, max_layers))):
        choice = draw(st.sampled_from(["conv", "conv", "conv", "maxpool", "avgpool", "gap", "fc", "res", "repeat"]))
        if flat:
            choice = "fc"
        if choice in ("conv", "repeat"):
            reps = draw(st.integers(2, 3)) if choice == "repeat" else 1
            text = draw_conv()
            ok, cur = True, size
            for _ in range(reps):
                nxt = [conv_ok(n, *_kds(text)) for n in cur]
                if None in nxt:
                    ok = False
                    break
                cur = nxt
            if not ok:
                continue
            items.append(f"{reps}*{text}" if reps > 1 else text)
            size = cur
        elif choice in ("maxpool", "avgpool"):
            k = draw(st.integers(1, 3))
            s = draw(st.integers(1, 3))
            new = [(n - k) // s + 1 for n in size]
            if min(n - k for n in size) < 0:
                continue
            items.append(f"{choice}{k}" + (f"/s{s}" if s != k else ""))
            size = new
        elif choice == "gap":
            items.append("gap")
            size = [1] * ndim
        elif choice == "fc":
            items.append(f"fc{draw(st.integers(1, 3))}")
            flat = True
        else:  # res(...): convs that keep the size, or 'same'-like strided convs the 1×1 shortcut can match
            body, cur = [], size
            for _ in range(draw(st.integers(1, 2))):
                same_like = padding not in ("valid", "full")
                k = draw(st.integers(1, 4)) if same_like else 1
                s = draw(st.sampled_from([1, 1, 2])) if same_like else 1
                nxt = [conv_ok(n, k, s, 1) for n in cur]
                if None in nxt:
                    continue
                body.append(f"conv{k}" + (f"/s{s}" if s > 1 else "") +
                            (f"/c{draw(st.integers(1, MAX_CHANNELS))}" if draw(st.booleans()) else ""))
                cur = nxt
            if not body or not _shortcut_ok(size, cur):
                continue
            items.append(f"res({', '.join(body)})")
            size = cur
    if not items:
        items = ["conv1"]
    return SpecCase(", ".join(items), shape, padding, width)


def _kds(text: str) -> tuple[int, int, int]:
    """(k, s, d) of a conv item's text."""
    k = int(re.match(r"conv(\d+)", text).group(1))
    s = re.search(r"/s(\d+)", text)
    d = re.search(r"/d(\d+)", text)
    return k, int(s.group(1)) if s else 1, int(d.group(1)) if d else 1


def _shortcut_ok(before, after) -> bool:
    """from_spec's rule: equal sizes, or one integer stride s with after = ceil(before / s)."""
    if list(before) == list(after):
        return True
    strides = {b // a for a, b in zip(after, before) if a}
    if len(strides) != 1:
        return False
    s = strides.pop()
    return s >= 1 and [-(-b // s) for b in before] == list(after)
