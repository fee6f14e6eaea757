"""Why does border-1d (trained at the middle, zero padding) score far worse at the start than at the end?

Four pieces of evidence, printed as a table and saved as JSON:

(a) the padding: the receptive-field advice for the spec net on length 80 (is any window layer uneven?), the
    placement of the test splits (is the start split the middle split shifted, nothing else?), and the mirror
    test: the net with every kernel flipped, run on the flipped input, must give the same logits (then the
    architecture itself treats the two ends alike, pool phases included);
(b) the data control: the same task with ``reverse: true`` (signals reversed in time before placing), trained
    and scored like the default, over ``--seeds`` seeds: does the deficit move to the end?
(c) the perturbation probe (:func:`edgewise.probe.perturb.perturb`) of the trained net on the middle test split:
    the sensitivity along the signal's own samples (positions 20–59 of 80), first quarter against last;
(d) the class information per sample of MNIST-1D: a logistic regression on the first k against the last k
    samples of the raw 40-sample signals.

Run::

    PYTHONPATH=. .venv/bin/python scripts/explain_border1d.py [--seeds 3] [--json out.json] [--figure PNG]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

TASK = "border-1d"


def padding_evidence(net, shape, tests) -> dict:
    """(a): the receptive-field advice, the splits' placement and the mirror test."""
    import copy

    from edgewise import receptive_field

    rf = receptive_field(net, shape)
    mirror = copy.deepcopy(net)
    with torch.no_grad():
        for m in mirror.modules():
            if isinstance(m, torch.nn.Conv1d):
                m.weight.copy_(m.weight.flip(-1))
        x = tests["start"][0][:200]
        diff = float((net(x) - mirror(x.flip(-1))).abs().max())
    mid, start, end = (tests[s][0] for s in ("middle", "start", "end"))
    length = int(net.experiment["config"]["length"])
    off = (shape[-1] - length) // 2
    same = bool(torch.equal(start[..., :length], mid[..., off:off + length])
                and torch.equal(end[..., -length:], mid[..., off:off + length]))
    return {"uneven_layers": rf.advice.to_dict()["uneven_layers"], "center_offset": list(rf.advice.center_offset),
            "mirror_max_abs_diff": diff, "splits_are_shifts": same}


def accuracies(reverse: bool, seeds: int) -> dict:
    """(b): accuracy per split over ``seeds`` seeds of the quick net, signals reversed or not."""
    from edgewise.experiments import tasks, trained_model
    from edgewise.experiments.train import accuracy

    out = {}
    for s in range(seeds):
        net = trained_model(TASK, "same", s, reverse=reverse)
        tests = tasks.get(TASK).data(net.experiment["config"])[1]
        for split, (x, y) in tests.items():
            out.setdefault(split, []).append(accuracy(net, x, y))
    return out


def profile(net, tests, n_inits: int) -> tuple[dict, object]:
    """(c): the perturbation profile on the middle split: the signal's first quarter against its last, and the
    silence before the signal against the silence after it."""
    from edgewise.probe.perturb import perturb

    x = tests["middle"][0][:64]
    r = perturb(net, data=x, n=len(x), stride=1, patch=(1, 5), n_inits=max(n_inits, 1),
                baseline="init" if n_inits else None, progress=False)
    length = int(net.experiment["config"]["length"])
    off = (x.shape[-1] - length) // 2
    q = length // 4
    out = {}
    for k in r.patches:
        for which in ("trained", "init") if n_inits else ("trained",):
            full = r.map(which, k)
            m = full[off:off + length]
            before, after = float(full[:off].mean()), float(full[off + length:].mean())
            out[f"patch{k}_{which}"] = {"first_quarter": float(m[:q].mean()), "last_quarter": float(m[-q:].mean()),
                                        "first_over_last": float(m[:q].mean() / m[-q:].mean()),
                                        "before": before, "after": after, "before_over_after": before / after,
                                        "peak_position": int(np.argmax(full))}
    return out, r


def class_information(ks=(5, 10, 20), n_train: int = 2000, n_test: int = 500) -> dict:
    """(d): test accuracy of a logistic regression on the first k and on the last k samples of MNIST-1D."""
    from sklearn.linear_model import LogisticRegression

    from edgewise.experiments import data

    x, y = data.mnist1d_signals(n_train + n_test, 0, 40)
    out = {}
    for k in ks:
        for name, cols in (("first", slice(0, k)), ("last", slice(40 - k, 40))):
            clf = LogisticRegression(max_iter=2000).fit(x[:n_train, cols], y[:n_train])
            out[f"{name}{k}"] = float(clf.score(x[n_train:, cols], y[n_train:]))
    energy = (x ** 2).mean(axis=0)
    out["energy_first_half"] = float(energy[:20].mean())
    out["energy_last_half"] = float(energy[20:].mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n-inits", type=int, default=3)
    ap.add_argument("--json", default="benchmarks/results/explain_border1d.json")
    ap.add_argument("--figure", default="docs/img/probe-perturb-border1d-profile.png")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from edgewise.experiments import tasks, trained_model

    t0 = time.perf_counter()
    net = trained_model(TASK, "same", 0)
    net.reference = f"experiment:{TASK}:same:0"  # how the figure names it
    tests = tasks.get(TASK).data(net.experiment["config"])[1]
    out = {"padding": padding_evidence(net, net.input_shape, tests),
           "accuracy": {"default": accuracies(False, args.seeds), "reversed": accuracies(True, args.seeds)}}
    out["profile"], r = profile(net, tests, args.n_inits)
    rev = trained_model(TASK, "same", 0, reverse=True)
    out["profile_reversed"], _ = profile(rev, tasks.get(TASK).data(rev.experiment["config"])[1], 0)
    out["class_information"] = class_information()
    out["seconds"] = time.perf_counter() - t0

    p = out["padding"]
    print(f"(a) uneven window layers: {p['uneven_layers'] or 'none'}; mirror test max |Δlogit| "
          f"{p['mirror_max_abs_diff']:.2e}; start/end splits are the middle split shifted: {p['splits_are_shifts']}")
    print("(b) accuracy (mean over seeds, each seed in brackets)")
    for name, acc in out["accuracy"].items():
        print(f"    {name:9s} " + "  ".join(f"{s} {np.mean(v):.2f} [{', '.join(f'{a:.2f}' for a in v)}]"
                                             for s, v in acc.items()))
    print("(c) perturbation profile on the middle split (signal at samples 20-59 of 80):")
    for name in ("profile", "profile_reversed"):
        for k, v in out[name].items():
            print(f"    {'reversed ' if name == 'profile_reversed' else ''}{k:16s} signal's first quarter "
                  f"{v['first_quarter']:.3g}, last {v['last_quarter']:.3g} (first/last {v['first_over_last']:.2f}); "
                  f"silence before {v['before']:.3g}, after {v['after']:.3g} (before/after "
                  f"{v['before_over_after']:.2f}); peak at sample {v['peak_position']}")
    c = out["class_information"]
    print("(d) logistic regression on k samples: " + "  ".join(
        f"k={k}: first {c[f'first{k}']:.2f} last {c[f'last{k}']:.2f}" for k in (5, 10, 20))
        + f"; mean square first half {c['energy_first_half']:.3f}, last half {c['energy_last_half']:.3f}")
    print(f"({out['seconds']:.0f} s)")
    if args.json:
        from pathlib import Path

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))
    if args.figure:
        from edgewise.report.figures import save_figure
        from edgewise.report.probe_perturb import plot_profile

        save_figure(plot_profile(r, signal=(int((r.input_shape[-1] - 40) // 2), 40)), args.figure)


if __name__ == "__main__":
    main()
