"""Does a unit's preferred input depend on where its receptive field sits? EfficientNet-Lite0 (ImageNet weights
shipped in a package), a low, a middle and a high layer (Zipser 2015).

The three layers are chosen from the receptive fields at the input size (``receptive_field`` on the
traceable copy of the network): the low one's field is small (at most a fifth of the image), the middle
one's about half the image, the high one's larger than the image. For each, one channel (the one whose
centre unit responds most to scikit-image's bundled photos, unless ``--channels`` says otherwise) is
visualised at five positions (centre, top, left, top-left corner, bottom-right corner) from several random
starts, all in one batched ``maximize`` call with ImageNet normalisation as ``preprocess``, on raw pixels
(lr 0.1, as position analysis does: what the unit does not see stays grey) with maximize's default jitter
of 1 px. Each grid outlines every row's receptive field, clipped to the image; the low layer's rows are
zoomed to 2.5 fields.

If ``edgewise.visualize.analysis`` is there, it also prints how similar each position's preferred image
is to the centre's inside the unit's own field (correlation of field-aligned crops, blurred by ``--blur`` px,
divided by the seed-to-seed correlation: 1 = as alike as two random starts at one position).

Writes ``visualize_efficientnet_low.png``, ``_mid.png`` and ``_high.png`` into ``--out`` (default
``docs/img``). About 40 s on two quiet cores at the defaults. Needs the ``trained`` extra; downloads nothing.

    .venv/bin/python examples/efficientnet_positions.py [--size 128] [--steps 96] [--seeds 3] [--param pixels]
                                                        [--out docs/img]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import edgewise
from edgewise import visualize as V
from edgewise.pretrained import IMAGENET_MEAN, IMAGENET_STD, efficientnet_lite0, photos
from edgewise.report import save_figure
from edgewise.report.visualize import plot_grid

POSITIONS = ("center", "top", "left", "top_left", "bottom_right")
LEVELS = ("low", "mid", "high")


def block_fields(rf, n_blocks: int) -> dict[str, tuple[str, float]]:
    """``_blocks.N`` → (the traced node that is its output, its receptive-field size in px).

    The hooks read a block's output (its residual sum where it has one); in the traced graph that is the
    last node of the block, or the ``add`` right after it. Both have the same field (a sum's field is the
    union of its inputs', and the skip's is the smaller)."""
    names = [layer.name for layer in rf.layers]
    out = {}
    for n in range(n_blocks):
        mine = [i for i, name in enumerate(names) if name.startswith(f"_blocks.{n}.")]
        last = mine[-1]
        if last + 1 < len(names) and rf.layers[last + 1].kind == "add":
            last += 1
        out[f"_blocks.{n}"] = (names[last], float(rf.layers[last].size[0]))
    return out


def choose_layers(fields: dict[str, tuple[str, float]], size: int) -> dict[str, str]:
    """low: the deepest block whose field is at most a fifth of the image; mid: the block whose field is
    closest to half the image; high: the first block whose field is more than 1.5× the image."""
    blocks = list(fields)
    low = [b for b in blocks if fields[b][1] <= size / 5][-1]
    mid = min(blocks, key=lambda b: abs(fields[b][1] - size / 2))
    high = next(b for b in blocks if fields[b][1] > 1.5 * size)
    return {"low": low, "mid": mid, "high": high}


def strongest_channel(net, layer: str, size: int) -> int:
    """The channel whose centre unit responds most, on average, to the bundled photos."""
    x = photos(size)  # already ImageNet-normalised
    with torch.no_grad():
        a = V.activations(net, x, layer)[layer]
    r, c = V.resolve("center", a.shape[2:], layer)
    return int(a[:, :, r, c].mean(0).argmax())


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def blurred(images: np.ndarray, k: int) -> np.ndarray:
    """``images`` (..., C, H, W) averaged over k×k windows (stride 1, edges averaged over what is inside)."""
    if k <= 1:
        return images
    flat = torch.as_tensor(images.reshape(-1, *images.shape[-3:]), dtype=torch.float32)
    out = torch.nn.functional.avg_pool2d(flat, k, stride=1, padding=k // 2, count_include_pad=False)
    return out[..., :images.shape[-2], :images.shape[-1]].numpy().reshape(images.shape)


def similarity_to_centre(vis, boxes, size: int, blur: int):
    """Per position: the seed-to-seed correlation inside the unit's field, and the field-aligned correlation
    with the centre's images over the geometric mean of the two seed-to-seed ones (NaN where a position's
    own seeds do not agree enough), on images blurred by ``blur`` px, with position analysis's ``rf_crop``
    and ``pairwise``; None if they are missing."""
    try:
        from edgewise.visualize.crops import pairwise, rf_crop
    except ImportError:
        try:
            from edgewise.visualize.analysis import pairwise, rf_crop
        except ImportError:
            return None
    images = blurred(vis.images, blur)
    pairs = [[rf_crop(img, box, (size, size)) for img in row] for row, box in zip(images, boxes)]
    crops = np.stack([np.stack([c for c, _ in row]) for row in pairs])
    masks = np.stack([row[0][1] for row in pairs])
    sim, norm = pairwise(crops, masks)
    return np.diag(sim), norm[:, 0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=128, help="input height = width (px)")
    ap.add_argument("--steps", type=int, default=96)
    ap.add_argument("--seeds", type=int, default=3)
    # as position analysis (edgewise.visualize.analysis.DEFAULTS): with pixels, what the unit does not see
    # stays at its grey start; the Fourier basis spreads every update over the whole image
    ap.add_argument("--param", default="pixels", choices=("fourier", "pixels"))
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--jitter", type=int, default=1, help="1 (maximize's default) gives the high layer clearer "
                    "patterns than analysis's 0, and keeps the low layer's 19-px pattern")
    ap.add_argument("--zoom", type=float, default=2.5,
                    help="show the low layer's rows zoomed to this many receptive fields (0: whole image)")
    ap.add_argument("--layers", nargs=3, default=None, metavar=("LOW", "MID", "HIGH"),
                    help="block names (_blocks.N) instead of choosing them from the receptive fields")
    ap.add_argument("--channels", nargs=3, type=int, default=None, metavar=("LOW", "MID", "HIGH"))
    ap.add_argument("--blur", type=int, default=4,
                    help="box blur (px) before correlating images: pixel-parameterised images carry pixel-level "
                         "noise that no two seeds share (1: none)")
    ap.add_argument("--out", default="docs/img")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    size, shape = args.size, (3, args.size, args.size)
    net = efficientnet_lite0(image_size=size)
    rf = edgewise.receptive_field(efficientnet_lite0(image_size=size, traceable=True), shape)
    fields = block_fields(rf, len(net._blocks))
    layers = dict(zip(LEVELS, args.layers)) if args.layers else choose_layers(fields, size)
    print(f"EfficientNet-Lite0 at {size}×{size}; receptive field of each block's output (px): "
          + ", ".join(f"{b.split('.')[1]}: {fields[b][1]:g}" for b in fields))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for k, level in enumerate(LEVELS):
        layer = layers[level]
        node, field = fields[layer]
        ch = args.channels[k] if args.channels else strongest_channel(net, layer, size)
        t = time.perf_counter()
        vis = V.maximize(net, [V.unit(layer, ch, p) for p in POSITIONS], shape, seeds=args.seeds,
                         steps=args.steps, lr=args.lr, param=args.param, jitter=args.jitter,
                         preprocess=imagenet_normalise)
        seconds = time.perf_counter() - t
        index = [tuple(int(v) for v in o.rsplit("(", 1)[1].rstrip(")").split(", ")) for o in vis.objectives]
        boxes = [rf.box(node, i) for i in index]
        zoom = args.zoom if level == "low" and args.zoom else None
        fig = plot_grid(vis, positions=list(POSITIONS), rf_boxes=boxes, zoom=zoom,
                        title=f"EfficientNet-Lite0 ({level} layer): preferred input of channel {ch} of {layer} "
                              f"at five positions; receptive field {field:g} px, input {size} px")
        path = save_figure(fig, out / f"visualize_efficientnet_{level}.png", dpi=110)[0]
        grid = V.activations(net, torch.zeros(1, *shape), layer)[layer].shape[2:]
        print(f"\n{level}: {layer} (traced node {node}), {tuple(grid)} map, receptive field {field:g} px "
              f"({field / size:.2f}× the image), channel {ch}; {len(POSITIONS)} positions × {args.seeds} seeds, "
              f"{args.steps} steps ({args.param}, lr {args.lr:g}, jitter {args.jitter}) in {seconds:.1f} s → {path}")
        start_vals, final = vis.values[0].mean(1), vis.final.mean(1)
        inside = rf.fraction_inside(node)
        sims = similarity_to_centre(vis, boxes, size, args.blur)
        print(f"  {'position':<13} {'(row, col)':<10} {'field in image':>14} {'start':>8} {'final':>8}"
              + (f" {'seed–seed r':>11} {'vs centre':>9}" if sims else ""))
        for p, name in enumerate(POSITIONS):
            row = (f"  {name:<13} {str(index[p]):<10} {100 * float(inside[index[p]]):>13.0f}% "
                   f"{start_vals[p]:>8.3g} {final[p]:>8.3g}")
            if sims:
                row += f" {sims[0][p]:>11.2f} {sims[1][p]:>9.2f}"
            print(row)
    print("\nstart/final: the unit's activation at the first step and on the final images, mean over seeds."
          + (f"\nseed–seed r: correlation of two seeds' images (blurred {args.blur} px) inside the unit's field, on "
             "the image; vs centre: correlation with the centre's images, field-aligned, over the geometric mean of "
             "the two seed–seed r (1: as alike as two starts at one position; NaN: a position's seeds agree less "
             "than analysis.MIN_CEILING)."
             if sims else "")
          + f"\ntotal {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
