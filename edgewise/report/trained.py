"""The report's parts that train networks: experiment tables, sensitivity after training, and
position-specific visualization (``edgewise report --train --visualize``)."""

from __future__ import annotations

import html

import torch
import torch.nn as nn

from . import page
from .folder import CACHE
from .tables import Rows, ratio_text

__all__ = ["TASKS", "experiments", "after_training", "visualization", "TRAINED"]

#: the tasks a report trains, in the order they appear
TASKS = ("absolute-position", "border-digits", "border-1d", "symmetry", "border-distance")
#: the trained network the sensitivity and visualization parts use: (task, remedy, seed)
TRAINED = ("border-digits", "same", 0)


def experiments(w, size: str = "quick", seeds: int = 3, step=lambda text: None) -> str:
    """Every task trained once per remedy and seed: the accuracy table and the task's figures.

    Runs are cached under ``REPORT/experiments/TASK`` (``w.cache``), so a second report reuses them."""
    from .. import experiments as ex
    from .experiments import experiment_figures

    parts = []
    for name in TASKS:
        task = ex.tasks.get(name)
        step(f"training {name}")
        exp = ex.run(name, seeds=seeds, size=size, out=w.cache / CACHE / name, progress=False)
        w.files.append(w.cache / CACHE / name / "experiment.json")
        parts += [f"<h3>{html.escape(name)}</h3>", page.paragraph(f"{task.summary} Theory predicts: {task.prediction}",
                                                                  "blurb"),
                  page.markdown(exp.text(markdown=True))]
        parts += [page.paragraph(n, "blurb") for n in exp.notes]
        for key, fig in experiment_figures(exp).items():
            parts.append(w.figure(fig, f"experiment-{name}-{key}",
                                  f"{name} ({size}, {len(exp.seeds)} seeds): "
                                  + {"accuracy": "test accuracy per remedy and split, mean with 95 % interval; "
                                                 "dots are single seeds.",
                                     "border": "accuracy against the distance from the border.",
                                     "symmetry": "filters and their gradients under a constant and a random "
                                                 "initialisation."}.get(key, key)))
        w.record("experiments", name, exp.to_dict())
    return "".join(parts)


def trained_net(size: str = "quick", per_split: int = 16) -> tuple[nn.Module, tuple, object]:
    """The :data:`TRAINED` network, its input shape and ``per_split`` test digits of every placement (at the
    centre only, the empty corners of a bias-free net get exactly zero gradient)."""
    from ..experiments import tasks, trained_model

    name, remedy, seed = TRAINED
    net = trained_model(name, remedy, seed, size)
    t = tasks.get(name)
    tests = t.data(net.experiment["config"])[1]
    return net, net.input_shape, torch.cat([x[:per_split] for x, _ in tests.values()])


def after_training(w, net, shape, images, n_inits: int, seed: int) -> str:
    """The trained net's squared input gradient on real test images beside the same architecture at random
    initialisation."""
    from ..pathways import pathways
    from ..sensitivity import gradient_map, init_sensitivity
    from .sensitivity import plot_sensitivity

    name, remedy, _ = TRAINED
    paths = pathways(net, shape)
    trained = gradient_map(net, images, agg="sq", seed=seed)
    random = init_sensitivity(net, shape, n_inits=n_inits, seed=seed)
    k = "center_corner_ratio"
    ratios = {"trained": trained.summary[k], "random": random.summary[k], "paths": paths.summary[k]}
    w.record("after_training", f"{name}:{remedy}", ratios)
    return ("<h3>After training</h3>"
            + page.paragraph(f"The {name} network ({remedy} padding), trained on digits at the centre of the canvas "
                             f"and probed with {len(images)} test digits at the centre, the edges and the corners, "
                             "against the same architecture at random initialisation.", "blurb")
            + w.figure(plot_sensitivity(trained, paths=paths), "trained-sensitivity",
                       f"Trained: squared input gradient over {len(images)} test digits, centre/corner "
                       f"{ratio_text(ratios['trained'])} (paths {ratio_text(ratios['paths'])}).")
            + w.figure(plot_sensitivity(random, paths=paths), "trained-sensitivity-random",
                       f"Random initialisation ({n_inits} draws): centre/corner {ratio_text(ratios['random'])}."))


def visualization(w, model, shape, name: str, seed: int = 0, steps: int = 64, seeds: int = 4) -> str:
    """A unit's preferred input at five positions, the tiled channel, the similarity matrix and the
    position-dependence index against receptive-field size (Zipser 2015)."""
    from ..visualize import index_vs_rf, position_dependence, tiled
    from .position import plot_index_vs_rf, plot_similarity_matrix
    from .visualize import plot_grid, plot_tiled

    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    layer = convs[-1]
    opts = {"steps": steps, "seed": seed, "progress": False}
    pd = position_dependence(model, layer, 0, shape, seeds=seeds, **opts)
    tile = tiled(model, layer, 0, shape, seeds=seeds, **opts)
    ivr = index_vs_rf(model, shape, convs[-4:], (0, 1), seeds=min(seeds, 3), **{**opts, "steps": max(1, steps // 2)})
    w.result(pd, "visualize", "position_dependence")
    w.result(ivr, "visualize", "index_vs_rf")
    rows = Rows(["position", "unit (row, col)", "field inside", "similarity to centre", "cross-activation"],
                [[str(l), str(tuple(p)), f"{f:.0%}", f"{pd.normalised[i, pd.reference]:.2f}",
                  f"{pd.cross_activation[i, pd.reference]:.2f}"]
                 for i, (l, p, f) in enumerate(zip(pd.labels, pd.positions, pd.fraction_inside))],
                [f"position-dependence index {pd.index:.2f} (0: the same preferred input everywhere; 1: unrelated); "
                 "similarity is normalised by the seed-to-seed ceiling at each position."])
    w.record("visualize", name, {"layer": layer, "index": pd.index, "activation_index": pd.activation_index,
                                 "index_vs_rf": {"layers": ivr.layers, "rf_fraction": ivr.rf_fraction,
                                                 "mean_index": ivr.mean_index, "trend": ivr.trend}})
    return (f"<h3>{html.escape(name)}: {html.escape(layer)} channel 0</h3>"
            + w.figure(plot_grid(pd.visualization(), positions=pd.labels, rf_boxes=pd.boxes,
                                 title=f"{name}: {layer} channel 0, preferred input by position"),
                       "visualize-grid", "The input that most excites the unit at each position (rows) from "
                                         f"{seeds} random starts (columns); outline: the unit's receptive field "
                                         "clipped to the image.")
            + w.table(rows, "visualize", "positions", "preferred inputs compared with the centre's")
            + w.figure(plot_tiled(tile, title=f"{name}: {layer} channel 0, tiled"), "visualize-tiled",
                       "The channel maximised at every position at once (tiling).")
            + w.figure(plot_similarity_matrix(pd), "visualize-similarity",
                       "Normalised similarity between the preferred inputs of every pair of positions.")
            + w.figure(plot_index_vs_rf(ivr), "visualize-index",
                       f"Position-dependence index per layer against receptive-field size (Spearman trend "
                       f"{ivr.trend:.2f}): Zipser's claim is that it rises with the field size."))
