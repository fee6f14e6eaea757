"""Does training change where a CNN looks?  EfficientNet-Lite0 (ImageNet weights shipped in a package)
against random re-initialisations of the same architecture, on scikit-image's bundled photos.

For the centre unit of the last convolution (``_conv_head``, 7×7 at 224 px) it measures the squared
input gradient averaged over the photos, for the trained weights and for ``--seeds`` random
initialisations, and prints centre/edge/corner ratios, the radial profile and the central area that
holds half the sensitivity; ``--perturb`` adds the perturbation experiment on one photo at 64 px.
Writes ``trained_vs_random.png`` and ``.json`` into ``--out``. Needs the ``trained`` extra.

    .venv/bin/python examples/trained_vs_random.py --out out/trained
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgewise.pretrained import PHOTO_NAMES, efficientnet_lite0, photos
from edgewise.report import save_figure
from edgewise.report.figures import BLUE, ORANGE, STYLE, new_figure
from edgewise.results import write_json
from edgewise.sensitivity import gradient_map, perturbation, reinitialise

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "camera", "clock", "page")


def summary(result) -> dict:
    s = result.summary
    return {k: s[k] for k in ("center_edge_ratio", "center_corner_ratio", "center_offset", "gaussian_sigma")} | {
        "area50": s["area_ratio"]["50"], "radial": s["radial_profile"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--layer", default="_conv_head")
    ap.add_argument("--perturb", action="store_true")
    ap.add_argument("--out", default="out/trained_vs_random")
    args = ap.parse_args(argv)
    assert all(p in PHOTO_NAMES for p in PHOTOS)
    net = efficientnet_lite0()
    x = photos(args.size, list(PHOTOS))
    runs = {"trained": gradient_map(net, x, to="center", agg="sq", layer=args.layer)}
    for seed in range(args.seeds):
        runs[f"random seed {seed}"] = gradient_map(reinitialise(net, seed), x, to="center", agg="sq", layer=args.layer)
    doc = {name: summary(r) for name, r in runs.items()}
    for name, d in doc.items():
        print(f"{name:<15} centre/edge {d['center_edge_ratio']:9.3g}  centre/corner {d['center_corner_ratio']:9.3g}  "
              f"half the sensitivity in the central {100 * d['area50']:5.1f} % of the image")
    if args.perturb:
        for name, model in (("trained", net), ("random seed 0", reinitialise(net, 0))):
            p = perturbation(model, photos(64, ["chelsea"]), to="center", layer=args.layer, n_signs=256)
            doc[name]["perturbation_center_corner"] = p.summary["single"]["center_corner_ratio"]
            print(f"{name:<15} perturbation centre/corner {p.summary['single']['center_corner_ratio']:.3g} "
                  f"(finite differences vs gradient {p.fd_error:.1e})")
    out = Path(args.out)
    with __import__("matplotlib").rc_context(STYLE):
        fig = new_figure(12.0, 4.4)
        a, b, c = fig.subplots(1, 3, width_ratios=[1, 1, 1.2])
        for ax, name in ((a, "trained"), (b, "random seed 0")):
            with np.errstate(divide="ignore"):
                im = ax.imshow(np.log10(runs[name].map), cmap="viridis")
            fig.colorbar(im, ax=ax, shrink=0.85).set_label("log10 mean (∂y/∂x)²")
            ax.set_title(f"{name}: centre/corner {doc[name]['center_corner_ratio']:.3g}×", fontsize=10)
            ax.set_xlabel("input column x (px)")
            ax.set_ylabel("input row y (px)")
        for name, colour in (("trained", BLUE), ("random seed 0", ORANGE)):
            r = doc[name]["radial"]
            means = np.asarray(r["means"])
            c.plot(r["radii"], means / means.max(), color=colour, label=name)
        c.set_yscale("log")
        c.set_xlabel("distance from the image centre (px)")
        c.set_ylabel("ring mean / its maximum")
        c.legend(frameon=False)
        c.grid(True, color="#e5e5e5")
        fig.suptitle(f"EfficientNet-Lite0, centre unit of {args.layer}: sensitivity to each input pixel over "
                     f"{len(PHOTOS)} photos at {args.size} px", fontsize=12)
    for p in save_figure(fig, out / "trained_vs_random.png") + [write_json(out / "trained_vs_random.json", doc)]:
        print("wrote", p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
