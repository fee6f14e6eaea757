"""How an image is parameterised for optimisation: raw pixels, or a Fourier spectrum with a 1/f scale.

Both hold a batch of canvases ``jitter`` pixels larger than the input on every side; :func:`crop` takes the
input-sized window the model sees, so jitter moves content inside a fixed canvas and never moves the image
border relative to a unit. Values pass through a sigmoid, so images lie in [0, 1].
"""

from __future__ import annotations


import torch

from ..errors import EdgewiseError

__all__ = ["PARAMETERISATIONS", "make", "crop"]

PARAMETERISATIONS = ("fourier", "pixels")


class _Pixels(torch.nn.Module):
    def __init__(self, shape, generator: torch.Generator, std: float = 0.01):
        super().__init__()
        self.raw = torch.nn.Parameter(torch.randn(shape, generator=generator) * std)

    def forward(self) -> torch.Tensor:
        return torch.sigmoid(self.raw)


class _Fourier(torch.nn.Module):
    """Image = sigmoid(irfft(spectrum · 1/f^decay)): every frequency starts with the same step size, which
    decorrelates the pixels (low frequencies would otherwise dominate; Olah et al. 2017)."""

    def __init__(self, shape, generator: torch.Generator, std: float = 0.01, decay: float = 1.0):
        super().__init__()
        self.size = tuple(shape[2:])
        freqs = [torch.fft.fftfreq(n) for n in self.size[:-1]] + [torch.fft.rfftfreq(self.size[-1])]
        grid = torch.meshgrid(*freqs, indexing="ij")
        f = torch.sqrt(sum(g ** 2 for g in grid)).clamp_min(1.0 / max(self.size))
        # the DC term gets the largest scale (max(size)); larger overall scales saturate the sigmoid within a
        # few dozen steps, after which the gradients vanish
        self.register_buffer("scale", f ** -decay)
        spec = (*shape[:2], *f.shape, 2)
        self.spectrum = torch.nn.Parameter(torch.randn(spec, generator=generator) * std)

    def forward(self) -> torch.Tensor:
        spec = torch.view_as_complex(self.spectrum) * self.scale
        dims = tuple(range(2, 2 + len(self.size)))
        return torch.sigmoid(torch.fft.irfftn(spec, s=self.size, dim=dims, norm="ortho"))


def make(kind: str, shape, generator: torch.Generator, **options) -> torch.nn.Module:
    """A parameterisation of a batch of images of ``shape`` (B, C, *spatial); call it for the images."""
    if kind == "pixels":
        return _Pixels(shape, generator, **options)
    if kind == "fourier":
        return _Fourier(shape, generator, **options)
    raise EdgewiseError(f"unknown parameterisation {kind!r}; choose one of {', '.join(PARAMETERISATIONS)}")


def crop(images: torch.Tensor, offsets: torch.Tensor, size) -> torch.Tensor:
    """Per batch row, the ``size`` window of ``images`` starting at ``offsets[row]`` (one per spatial axis);
    a single row of offsets applies to the whole batch (one slice)."""
    if len(offsets) == 1:
        return images[(slice(None), slice(None), *(slice(o, o + n) for o, n in zip(offsets[0].tolist(), size)))]
    rows = []
    for img, off in zip(images, offsets.tolist()):
        rows.append(img[(slice(None), *(slice(o, o + n) for o, n in zip(off, size)))])
    return torch.stack(rows)
