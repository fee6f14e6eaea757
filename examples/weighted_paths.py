"""Which theory predicts the sensitivity at initialisation: the path counts, the paths that can carry a gradient, or
the weighted paths?

For each model, at the same ``--inits`` initialisations (its own: the torchvision/timm builder re-run under each
seed), it measures the Monte-Carlo sensitivity (``edgewise.sensitivity.init_sensitivity``) and the weighted paths
(``edgewise.weighted_pathways``, at the first ``--weighted-inits`` of them), and prints the correlation of the
sensitivity's log map with the log of each: all the path counts, the paths that avoid the layers that start
silent (``edgewise.live``), and the weighted paths, with the centre/corner ratios. Writes ``weighted_paths.json``
into ``--out``. timm's models need the ``timm`` extra (built with ``pretrained=False``: nothing is downloaded).

    .venv/bin/python examples/weighted_paths.py --out out/weighted
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import edgewise
from edgewise import models
from edgewise.live import live_pathways
from edgewise.maps import log_correlation
from edgewise.results import write_json
from edgewise.sensitivity import init_sensitivity

MODELS = ("torchvision:resnet18", "torchvision:densenet121", "torchvision:vgg11", "torchvision:mobilenet_v3_small",
          "torchvision:efficientnet_b0", "timm:resnet18", "timm:seresnet18", "timm:efficientnet_b0",
          "timm:convnext_atto", "timm:convnextv2_atto")


def row(name: str, shape, n_inits: int, n_weighted: int) -> dict:
    model = models.load(name, shape)
    t = time.perf_counter()
    s = init_sensitivity(model, shape, n_inits=n_inits)
    t_sensitivity, t = time.perf_counter() - t, time.perf_counter()
    w = edgewise.weighted_pathways(model, shape, n_inits=n_weighted)
    t_weighted = time.perf_counter() - t
    graph = edgewise.trace(model, shape)
    paths = edgewise.pathways(graph)
    live = live_pathways(s, graph)
    return {"model": name, "r_paths": log_correlation(s.map, paths.counts),
            "r_live": None if live is None else log_correlation(s.map, 10.0 ** live.log10),
            "r_weighted": log_correlation(s.map, w.map),
            "ratio_measured": s.summary["center_corner_ratio"], "ratio_weighted": w.summary["center_corner_ratio"],
            "ratio_paths": paths.summary["center_corner_ratio"], "zeros_measured": int((s.map == 0).sum()),
            "zeros_weighted": int((w.map == 0).sum()), "seconds_sensitivity": t_sensitivity,
            "seconds_weighted": t_weighted}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--input", default="3x64x64")
    ap.add_argument("--inits", type=int, default=16, help="Monte-Carlo initialisations (default 16)")
    ap.add_argument("--weighted-inits", type=int, default=8, help="initialisations of the weighted paths (8)")
    ap.add_argument("--out", default="out/weighted")
    args = ap.parse_args(argv)
    shape = tuple(int(v) for v in args.input.split("x"))
    rows = []
    print(f"{'model':32s} {'r paths':>8s} {'r live':>8s} {'r weighted':>10s}   centre/corner: measured, weighted, "
          "paths")
    for name in args.models.split(","):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = row(name.strip(), shape, args.inits, args.weighted_inits)
        rows.append(r)
        live = "—" if r["r_live"] is None else f"{r['r_live']:+.2f}"
        print(f"{r['model']:32s} {r['r_paths']:+8.2f} {live:>8s} {r['r_weighted']:+10.2f}   "
              f"{r['ratio_measured']:.3g}, {r['ratio_weighted']:.3g}, {r['ratio_paths']:.3g}", flush=True)
    out = Path(args.out)
    print(f"wrote {write_json(out / 'weighted_paths.json', {'input': list(shape), 'inits': args.inits, 'rows': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
