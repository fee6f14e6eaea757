"""Benchmark: ``edgewise.receptive_field`` against torchscan's receptive fields.

For each model (default: torchvision ResNet-50, ResNet-18 and GoogLeNet, whose Inception blocks branch four
ways, at 3×224×224, random weights: nothing is downloaded) it times, in the same run and interleaved
(edgewise, torchscan, edgewise, ...), on one torch thread:

* ``edgewise.receptive_field(model, shape)`` end to end, cold (every trace cache cleared first: an
  architecture edgewise has not seen), resized (only the traced Graph forgotten: the torch.fx path reuses
  torch.fx's symbolic graph, as for an architecture seen at another input size; a plain CNN, which the
  direct trace records as its forward runs, is recorded again) and warm (the same model again: its trace
  is reused);
* its parts: ``edgewise.trace`` (cold) and torch.fx's symbolic trace alone (what the torch.fx path starts
  with; the direct trace of a plain CNN does not use it), ``receptive_field(graph)`` on
  a traced Graph (fields + advice) and the even-input-size advice alone;
* the baseline a user would run instead: ``torchscan.crawl_module(model, shape)`` (one forward pass with
  hooks: each module's own kernel, stride and padding) and the receptive field composed from them in call
  order (size += (kernel−1)·jump, jump ×= stride), which is what torchscan's per-layer numbers give.

It then compares the composed torchscan field with edgewise's at every convolution and pooling layer and
prints where they differ and why: composing in call order treats a branch (ResNet's downsample shortcut,
an Inception branch) as if it followed the layer called just before it. Every timing is the median of a few
repeats after one warm-up call.

Run::

    .venv/bin/python benchmarks/receptive_field.py [--repeats 7] [--json benchmarks/results/receptive_field.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings

import torch

import edgewise
from edgewise import _trace

from _timing import load_average, machine_line  # benchmarks/ is on sys.path when a script here runs
from edgewise.geometry import _even_sizes

GOAL_MS = 10.0  # ResNet-50 receptive field, end to end


def clear_trace_cache(fx: bool = True) -> None:
    """Forget every traced Graph, so that the next call traces; with ``fx``, torch.fx's symbolic graphs
    too (a cold call: an architecture not seen before)."""
    _trace._CACHE.clear()
    if fx:
        _trace._FX.clear()
        _trace._CONV_AXES.clear()


def torchscan_fields(model, shape) -> dict[str, tuple[float, float]]:
    """Per leaf layer call (``path`` or ``path#k`` for the k-th extra call): torchscan's (size, jump) composed in
    call order from its per-module receptive field and stride."""
    import torchscan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = torchscan.crawl_module(model, shape)
    size, jump, out = 1.0, 1.0, {}
    for layer in report["layers"]:
        rf = layer["metrics"].get("receptive_field", {}).get("value")
        if rf is None:  # a container, or a module torchscan has no formula for
            continue
        stride = layer["metrics"]["effective_stride"]["value"]
        size, jump = size + (rf - 1) * jump, jump * stride
        name = layer["path"] + (f"#{layer['call_index']}" if layer["call_index"] else "")
        out[name] = (size, jump)
    return out


def disagreements(rf: edgewise.ReceptiveField, graph, scan: dict) -> tuple[list[dict], int]:
    """(the conv/pool layers where torchscan's composed field differs from edgewise's along the rows,
    how many were compared)."""
    out, compared = [], 0
    for layer in rf.layers:
        if layer.kind not in ("conv", "pool") or layer.name not in scan or not layer.jump:
            continue
        compared += 1
        ts_size, ts_jump = scan[layer.name]
        if (ts_size, ts_jump) != (layer.size[0], layer.jump[0]):
            order = list(scan)
            before = order[order.index(layer.name) - 1] if order.index(layer.name) else None
            out.append({"layer": layer.name, "torchscan": [ts_size, ts_jump], "edgewise": [layer.size[0], layer.jump[0]],
                        "torchscan_follows": before, "edgewise_input": graph[layer.name].inputs[0]})
    return out, compared


def interleaved(fns: dict, repeats: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(wall-clock, CPU) seconds per call of each function, called in turn (a b c a b c ...) ``repeats`` times
    after one warm-up. On one thread the CPU time is what the call costs; the wall time adds the waits for a core
    on a busy machine."""
    for fn in fns.values():
        fn()
    wall, cpu = {k: [] for k in fns}, {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)
    return wall, cpu


def load(name: str):
    import torchvision

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "googlenet":
            return torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
        return torchvision.models.get_model(name, weights=None)


def bench(name: str, shape, repeats: int) -> dict:
    net = load(name).eval()
    graph = edgewise.trace(net, shape)

    def cold():
        clear_trace_cache()
        return edgewise.receptive_field(net, shape)

    def resized():
        clear_trace_cache(fx=False)
        return edgewise.receptive_field(net, shape)

    def trace_cold():
        clear_trace_cache()
        return edgewise.trace(net, shape)

    wall, cpu = interleaved({
        "edgewise_cold": cold,
        "torchscan": lambda: torchscan_fields(net, shape),
        "edgewise_resized": resized,
        "edgewise_warm": lambda: edgewise.receptive_field(net, shape),
        "trace_cold": trace_cold,
        "fx": lambda: _trace._Tracer().trace(net, _trace._defaults(net)),
        "on_graph": lambda: edgewise.receptive_field(graph),
        "advice": lambda: _even_sizes(graph),
    }, repeats)
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    rf = edgewise.receptive_field(graph)
    diff, compared = disagreements(rf, graph, torchscan_fields(net, shape))
    return {"model": name, "input": "x".join(map(str, shape)), "nodes": len(graph),
            **{f"{k}_s": v for k, v in med.items()}, **{f"{k}_cpu_s": v for k, v in med_cpu.items()},
            "times_s": wall, "cpu_times_s": cpu,
            "ratio_cold": med["torchscan"] / med["edgewise_cold"], "ratio_warm": med["torchscan"] / med["edgewise_warm"],
            "even_input_sizes": [list(s) for s in rf.advice.even_input_sizes],
            "layers_compared": compared, "disagreements": diff}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "resnet18", "googlenet"])
    parser.add_argument("--size", type=int, default=224, help="input height = width (3 channels)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats of each (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shape = (3, args.size, args.size)
    import torchscan

    print(machine_line(f"torchscan {torchscan.__version__}"))
    rows = [bench(name, shape, args.repeats) for name in args.models]

    head = (f"{'model':<10} {'clock':<5} {'cold':>8} {'= trace':>8} {'(fx)':>8} {'+ graph':>8} {'(advice)':>8} "
            f"{'resized':>8} {'warm':>8} {'torchscan':>9} {'ratio':>6} {'warm':>6}")
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        for clock, suffix in (("wall", "_s"), ("cpu", "_cpu_s")):
            ms = {k: r[k + suffix] * 1e3 for k in ("edgewise_cold", "trace_cold", "fx", "on_graph", "advice",
                                                   "edgewise_resized", "edgewise_warm", "torchscan")}
            print(f"{r['model'] if clock == 'wall' else '':<10} {clock:<5} {ms['edgewise_cold']:>6.1f}ms "
                  f"{ms['trace_cold']:>6.1f}ms {ms['fx']:>6.1f}ms {ms['on_graph']:>6.1f}ms {ms['advice']:>6.2f}ms "
                  f"{ms['edgewise_resized']:>6.1f}ms {ms['edgewise_warm']:>6.1f}ms {ms['torchscan']:>7.1f}ms "
                  f"{ms['torchscan'] / ms['edgewise_cold']:>5.1f}x {ms['torchscan'] / ms['edgewise_warm']:>5.1f}x")
    print("\ncold = edgewise.receptive_field(model, shape) with every trace cache cleared (trace + fields + advice);\n"
          "trace = edgewise.trace alone (cold: recorded directly for a plain CNN, else through torch.fx);\n"
          "fx = torch.fx's symbolic trace alone (the torch.fx path's first step; not run for a plain CNN);\n"
          "graph = receptive_field(graph) on a traced Graph (fields + advice);\n"
          "resized = cold but with torch.fx's symbolic graph kept (used by the torch.fx path only);\n"
          "advice = the even-input-size advice alone; warm = receptive_field(model, shape) again (trace reused);\n"
          "torchscan = crawl_module(model, shape) + its per-module fields composed in call order;\n"
          "ratio = torchscan / cold, warm = torchscan / warm; medians, interleaved in one run;\n"
          "wall = elapsed time, cpu = this process's CPU time (one thread: the wall time less the waits for a core).")
    for r in rows:
        d = r["disagreements"]
        print(f"\n{r['model']}: torchscan's composed field differs from edgewise's at {len(d)} of "
              f"{r['layers_compared']} conv/pool layers (rows; size, jump); even input sizes "
              f"{', '.join('x'.join(map(str, s)) for s in r['even_input_sizes'])}")
        for x in d[:3]:
            print(f"  {x['layer']}: torchscan {x['torchscan'][0]:g} px, jump {x['torchscan'][1]:g} (composed onto "
                  f"{x['torchscan_follows']}, the layer called before it); edgewise {x['edgewise'][0]:g} px, jump "
                  f"{x['edgewise'][1]:g} (its input is {x['edgewise_input']})")
    for r in rows:
        if r["model"] == "resnet50":
            for label, key in (("cold (trace + fields + advice)", "edgewise_cold"),
                               ("resized (torch.fx's graph cached)", "edgewise_resized"),
                               ("warm (trace cached)", "edgewise_warm"), ("on a traced Graph", "on_graph")):
                for clock, suffix in (("wall", "_s"), ("cpu", "_cpu_s")):
                    ms = r[key + suffix] * 1e3
                    verdict = "met" if ms < GOAL_MS else "NOT met"
                    print(f"goal < {GOAL_MS:.0f} ms on resnet50, {label}, {clock}: {verdict} "
                          f"({ms:.1f} ms; torchscan {r['torchscan' + suffix] * 1e3:.0f} ms)")
    print(f"load average {load_average():.2f} at end "
          "(timings on a busy machine are noisy; the ratios are taken within one run)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
