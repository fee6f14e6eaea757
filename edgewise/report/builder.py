"""``report.build``: the question answered for one or more models, as one self-contained HTML page.

The page (``OUT/index.html``) embeds every figure; beside it ``figures/`` holds
the same figures as PNG, ``data/`` the numbers (JSON, CSV, NPY) of every section,
``report.json`` all of them in one file and ``config.json`` the resolved
configuration of the run.
"""

from __future__ import annotations

import html
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__, nets
from ..answer import figures as answer_figures
from ..answer import gather
from ..errors import EdgewiseError
from ..models import describe
from ..results import Result, write_atomic, write_json
from . import learned, page, sections, trained, verdict
from .folder import Staging, check_out
from .render import Renderer, worth_a_worker
from .page import slug as _slug

__all__ = ["build", "Report", "DEFAULT_MODELS", "SECTIONS"]

#: the built-in default: the question's own network (1-D, like sound) and a small VGG-style 2-D net
DEFAULT_MODELS = ((nets.QUESTION_SPEC, (1, 256)), (nets.DEFAULT_SPEC, tuple(nets.DEFAULT_INPUT)))

#: (id, title, what the section shows, function per model)
SECTIONS = (
    ("verdict", "1. The verdict",
     "The questions asked about central and border inputs, answered for each model with numbers computed in this "
     "run; each answer links to its figure below and to the field of data/MODEL/verdict.json it quotes.",
     sections.answer),
    ("pathways", "2. Pathways",
     "The number of paths from each input position to the output, for the model as given and for every padding "
     "scheme, and the Pascal's-triangle diagram of a 1-D slice of the architecture.", sections.pathways),
    ("depth", "3. Depth scaling",
     "How the centre/border gap grows with depth: after each layer of the model, and for stacks of its most common "
     "kernel, with the closed forms of edgewise.theory and fitted laws.", sections.depth),
    ("receptive-fields", "4. Receptive fields",
     "How much of the input each layer's units see, how many of them see past the image border, and whether the "
     "padding is read evenly.", sections.receptive_fields),
    ("sensitivity", "5. Sensitivity",
     "What the network responds to, measured by input gradients: expected over random initialisations (beside "
     "the path counts, which theory says it equals for linear nets) and with the model's weights; and, where that "
     "is quick enough to run unasked, by nudging each input.", sections.sensitivity),
    ("remedies", "6. Remedies",
     "Every remedy of edgewise.remedies applied to the model: pathway maps, ratios, receptive field and cost.",
     sections.remedies),
)


@dataclass
class Report(Result):
    """A written report: ``path`` (index.html), the section titles, every section's numbers, the
    configuration and the files written."""

    path: Path
    sections: list
    numbers: dict
    config: dict
    files: list = field(default_factory=list)

    kind = "report"

    def to_dict(self) -> dict:
        return {"path": str(self.path), "sections": self.sections, "config": self.config, "numbers": self.numbers}

    def _repr_html_(self) -> str:
        doc = html.escape(Path(self.path).read_text(), quote=True)
        return f'<iframe srcdoc="{doc}" style="width:100%;height:720px;border:1px solid #ddd"></iframe>'


def _subjects(models, input_shape) -> list[tuple[object, tuple]]:
    """(model, input shape) pairs from ``build``'s arguments."""
    if models is None:
        return list(DEFAULT_MODELS)
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    if not models:
        raise EdgewiseError("report: give at least one model (or none, for the built-in default)")
    shapes = input_shape if isinstance(input_shape, list) else [input_shape] * len(models)
    if len(shapes) != len(models):
        raise EdgewiseError(f"report: {len(models)} models but {len(shapes)} input shapes; give one shape for all "
                            "or one per model")
    pairs = []
    for m, s in zip(models, shapes):
        s = s if s is not None else getattr(m, "input_shape", None)
        if s is None:
            raise EdgewiseError(f"report: {describe(m)} needs an input shape (C×L or C×H×W, e.g. 3x224x224)")
        pairs.append((m, s))
    return pairs


def _check(n_inits, remedy_inits, padding, size, seeds) -> None:
    """Refuse bad options before any work starts (a typo should not cost minutes of computation)."""
    if int(n_inits) < 2:
        raise EdgewiseError(f"report: n_inits must be at least 2 (a Monte-Carlo mean and its error), got {n_inits}")
    if int(remedy_inits) < 0:
        raise EdgewiseError(f"report: remedy_inits must be 0 (path counts only) or more, got {remedy_inits}")
    if padding not in nets.PADDINGS:
        raise EdgewiseError(f"report: unknown padding {padding!r}; choose one of {', '.join(nets.PADDINGS)}")
    if size not in ("quick", "full"):
        raise EdgewiseError(f"report: size must be 'quick' or 'full', got {size!r}")
    if int(seeds) < 1:
        raise EdgewiseError(f"report: seeds must be at least 1, got {seeds}")


#: a model whose activations for one input exceed this many bytes is "large": unless --remedy-inits is given,
#: each remedy's Monte-Carlo sensitivity then uses at most :data:`LARGE_REMEDY_INITS` initialisations
LARGE_ACTIVATIONS = 64 * 2**20
LARGE_FLOPS = 8 * 10**9  # ... or whose forward pass takes more floating-point operations than this (ViT-B/16: 34e9)
LARGE_REMEDY_INITS = 8


def _remedy_inits(n_inits: int, remedy_inits: int | None, acts: list[int],
                  flops: list[int] = ()) -> tuple[int, str | None]:
    """The per-remedy initialisations and, when capped for a large model, the sentence that says so."""
    if remedy_inits is not None:
        return remedy_inits, None
    big_acts, big_flops = max(acts, default=0) > LARGE_ACTIVATIONS, max(flops, default=0) > LARGE_FLOPS
    if not (big_acts or big_flops) or n_inits <= LARGE_REMEDY_INITS:
        return n_inits, None
    why = (f"activations for one input exceed {LARGE_ACTIVATIONS // 2**20} MiB (here {max(acts) / 2**20:.0f} MiB)"
           if big_acts else f"forward pass takes more than {LARGE_FLOPS / 1e9:.0f} GFLOP (here "
                            f"{max(flops) / 1e9:.0f} GFLOP)")
    return LARGE_REMEDY_INITS, (
        f"Each remedy's sensitivity uses {LARGE_REMEDY_INITS} random initialisations, not {n_inits}: a model whose "
        f"{why} is large enough that {n_inits} per remedy would take many minutes; the "
        f"original's own sensitivity (section 5) uses all {n_inits}. Give --remedy-inits N to choose.")


def _check_sizes(pairs, n_inits, remedy_inits, padding, seeds, perturb=None) -> tuple[list[int], list[int]]:
    """Refuse, before any work, a report whose Monte-Carlo sensitivity, perturbation experiment or
    experiments cannot fit in memory (:mod:`edgewise.limits`); the activation bytes and forward FLOPs of
    each model."""
    from .. import limits
    from ..answer import perturb_skip
    from ..models import load
    from ..sensitivity import auto_chunk

    inits = max(int(n_inits), int(remedy_inits or 0))
    for _, shape in pairs:  # sizes alone first: no model is built for a hopeless request
        limits.check_sensitivity(inits, shape, chunk=1, option="--inits / --remedy-inits")
    sizes, flops = [], []
    for model, shape in pairs:
        module = load(model, shape, padding=padding)
        cost = limits.forward_costs(module, shape)
        acts = cost.activations
        flops.append(cost.flops)
        limits.check_sensitivity(inits, shape, acts, auto_chunk(acts), option="--inits / --remedy-inits")
        if perturb or (perturb is None and perturb_skip(module, shape, cost=cost) is None):
            limits.check_perturbation(shape, acts)
        sizes.append(acts)
    if seeds:
        limits.check_runs(int(seeds) * len(trained.TASKS) * 16, "the report's experiments", "--seeds")
    return sizes, flops


def _probe_by_default(default_page: bool, pairs, trained_weights, out, seed: int, train: bool) -> bool:
    """Section 8 unless asked: on trained models; on the default page with ``train`` (minutes already) or when an
    earlier default report into ``out`` left the probes cached (computing them takes far longer than the rest)."""
    if default_page:
        return train or learned.cached_default(out, seed)
    return any(_is_trained(m) if trained_weights is None else trained_weights for m, _ in pairs)


def _is_trained(model) -> bool:
    """Whether the weights came from training: a pretrained: or experiment: reference, or a trained task net."""
    return (isinstance(model, str) and model.startswith(("pretrained:", "experiment:"))) or \
        hasattr(model, "experiment")


_COUNTER = re.compile(r"(, initialisations)? \d+/\d+$")


class _Progress:
    """One bar on stderr for the whole report; its label says which part is being computed, and ``seconds``
    keeps how long each labelled part took."""

    def __init__(self, total: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc="report", unit="part", disable=None if enabled else True, leave=False,
                        bar_format="{desc} {bar} {n_fmt}/{total_fmt} [{elapsed}]")
        self.seconds, self._current, self._since = {}, None, time.perf_counter()

    def label(self, text: str, key: str | None = None) -> None:
        """Show ``text``; its time counts towards ``key`` (default ``text``: a sub-step's counter such as
        ``sensitivity 8/32`` shares the key ``sensitivity``)."""
        now = time.perf_counter()
        if self._current is not None:
            self.seconds[self._current] = round(self.seconds.get(self._current, 0.0) + now - self._since, 2)
        self._current, self._since = key or text, now
        self.bar.set_description_str(f"report: {text}")

    def done(self) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def build(models=None, input_shape=None, *, out="out/report", train: bool = False, visualize: bool = False,
          n_inits: int = 32, remedy_inits: int | None = None, seed: int = 0, padding: str = "same", size: str = "quick",
          seeds: int = 3, trained_weights: bool | None = None, progress: bool = True, force: bool = False,
          norm_stats: str = "ignore", probe: bool | None = None, amount: str | None = None,
          perturb: bool | None = None) -> Report:
    """Run every analysis on ``models`` and write ``out/index.html`` with the numbers beside it.

    Args:
        models: a model or model reference, or a list of them (default: :data:`DEFAULT_MODELS`).
        input_shape: one C×L / C×H×W shape for all models, or a list with one per model.
        out: the report folder.
        train: add the experiments (every task, quick or full ``size``, ``seeds`` seeds; cached in
            ``out/experiments``) and the sensitivity of a trained network.
        visualize: add position-specific feature visualization (a trained network's with ``train``, else the
            first 2-D model's).
        n_inits: random initialisations for the Monte-Carlo sensitivity; ``remedy_inits`` per remedy (0: paths
            only; default ``n_inits``, so the original's sensitivity is one number with one interval on the page).
        trained_weights: say the models' weights are trained (default: guessed from the reference).
        norm_stats: whether normalisation statistics are connections in the path counts (:func:`edgewise.trace`);
            the path map's caption says which, and over which layers.
        amount: how much the padding-mode remedies pad (``"keep"``: each layer's own amount, for a model whose
            valid layers must keep their size; see :func:`edgewise.remedies.compare`); default: half a window.
        probe: add section 8, what trained networks learned about position (:mod:`edgewise.probe`: spatial bias,
            blind spots, padding-aware units, position readout, perturbation) on the models with trained weights,
            or on the packaged EfficientNet-Lite0 when none is trained. Default: on for reports on trained models;
            on the default page with ``train``, or when an earlier ``probe=True`` default report into ``out`` left
            its results in the cache (computing them takes far longer than the rest of the default page).
        force: write into ``out`` even if it holds files that are not an edgewise report (they are replaced).
            The report is built aside and swapped in whole when complete (:mod:`.folder`); an earlier report's
            cached experiments are kept.
        perturb: run the perturbation experiment on every model (False: on none; default: where it is small
            enough, :func:`edgewise.answer.perturb_skip`; section 5 says why where it is left out).

    Returns:
        :class:`Report`.

    Example:
        >>> r = build("8*conv3", "1x32x32", out="out/report")  # doctest: +SKIP
        >>> r.path  # doctest: +SKIP
        PosixPath('out/report/index.html')
    """
    from .._stats import check_norm_stats
    from .._trace import parse_shape

    start = time.perf_counter()
    _check(n_inits, n_inits if remedy_inits is None else remedy_inits, padding, size, seeds)
    if amount is not None:
        from ..remedies.transforms import check_amount

        check_amount(amount)
    check_norm_stats(norm_stats)
    pairs = [(m, parse_shape(s)) for m, s in _subjects(models, input_shape)]
    acts, flops = _check_sizes(pairs, n_inits, remedy_inits, padding, seeds if train else 0, perturb)
    remedy_inits, capped = _remedy_inits(n_inits, remedy_inits, acts, flops)
    names = [describe(m) for m, _ in pairs]
    out = check_out(out, force)
    if probe is None:
        probe = _probe_by_default(models is None, pairs, trained_weights, out, seed, train)
    with Staging(out) as staged:
        return _build(out, staged, pairs, names, start, train=train, visualize=visualize, n_inits=n_inits,
                      remedy_inits=remedy_inits, capped=capped, seed=seed, padding=padding, size=size, seeds=seeds,
                      trained_weights=trained_weights, progress=progress, norm_stats=norm_stats, probe=probe,
                      default_page=models is None, flops=flops, amount=amount, perturb=perturb)


def _build(out: Path, staging: Staging, pairs, names, start, *, train, visualize, n_inits, remedy_inits, seed,
           padding, size, seeds, trained_weights, progress, capped=None, norm_stats="ignore", probe=False,
           default_page=False, flops=None, amount=None, perturb=None) -> Report:
    """:func:`build` after its checks: every part written under ``staging``, then swapped in for ``out``."""
    w = sections.Writer(staging.tmp, cache=out, render=Renderer(worth_a_worker()))
    config = {"models": names, "input_shapes": [list(s) for _, s in pairs],
              "train": train, "visualize": visualize, "n_inits": n_inits, "remedy_inits": remedy_inits, "seed": seed,
              "padding": padding, "size": size, "seeds": seeds, "norm_stats": norm_stats, "probe": probe,
              "edgewise": __version__}
    if capped:
        config["remedy_inits_capped"] = capped
    if amount is not None:
        config["amount"] = amount
    if perturb is not None:
        config["perturb"] = perturb
    extra = (len(trained.TASKS) + 1 if train else 0) + (1 if visualize else 0) + (1 if probe else 0)
    bar = _Progress(len(pairs) * (1 + len(SECTIONS)) + extra, progress)
    try:
        idents = []
        for name in names:  # in page order, whatever order the models are measured in
            ident = _slug(name)
            while ident in idents:
                ident += "-2"
            idents.append(ident)
        # the cheapest model first: its figures reach the figure worker within seconds, so it draws them while the
        # costlier models are measured instead of idling until the first of them is (default page, fresh process:
        # 14.5-15.1 s against 16.1-18.6 s costliest first; the numbers are the same in either order)
        order = sorted(range(len(pairs)), key=lambda i: flops[i]) if flops else range(len(pairs))
        subjects, drawn = {}, {}
        for i in order:
            (model, shape), name = pairs[i], names[i]
            bar.label(f"measuring {name} (pathways, sensitivity, perturbation, remedies)")

            def step(text, name=name):  # which engine runs now; its time counts without the i/N counter
                bar.label(f"measuring {name} — {text}", f"measuring {name} — {_COUNTER.sub('', text)}")

            ev = gather(model, shape, padding=padding, n_inits=n_inits, seed=seed, remedy_inits=remedy_inits,
                        name=name, step=step, norm_stats=norm_stats, amount=amount, perturb=perturb)
            is_trained = _is_trained(model) if trained_weights is None else trained_weights
            key = name if names.count(name) == 1 else f"{name}, input {'x'.join(map(str, shape))}"
            s = subjects[i] = sections.Subject(ev, idents[i], is_trained, answer_figures(ev), key)
            bar.done()
            for section, title, _, fn in SECTIONS:  # now: the figure worker draws them while the next model is measured
                bar.label(f"{title} — {s.ev.name}")
                drawn[section, i] = fn(s, w)
                bar.done()
        subjects = [subjects[i] for i in range(len(pairs))]
        keys = [s.key for s in subjects]
        for section, recorded in w.numbers.items():  # report.json lists the models in page order too
            w.numbers[section] = dict(sorted(recorded.items(), key=lambda kv: keys.index(kv[0]) if kv[0] in keys
                                             else len(keys)))
        parts = []
        explore = _explore(w, pairs, padding)
        for ident, title, blurb, _ in SECTIONS:
            inner = [page.paragraph(blurb, "blurb")] + ([explore] if ident == "pathways" else [])
            inner += [drawn[ident, i] for i in range(len(subjects))]
            if ident == "remedies" and capped:
                inner.append(page.note(capped))
            parts.append([ident, title, inner])
        parts += _trained_sections(w, subjects, train, visualize, size, seeds, n_inits, seed, parts, bar)
        parts.append(_learned_section(w, subjects, probe, seed, bar, train, size, default_page))
        parts[0][2].append(verdict.render_trained(w.numbers))
        bar.label("drawing the figures")  # those the worker has not drawn yet
        filled = [(i, t, w.render.fill("".join(inner))) for i, t, inner in parts]
        bar.label("writing the page")
        elapsed = time.perf_counter() - start
        config["seconds"], config["seconds_per_part"] = round(elapsed, 1), dict(bar.seconds)
        config["init"] = {s.key: s.ev.init.init for s in subjects}  # builder / module / default, per model
        document = page.page(
            "Do central pixels have more pathways?",
            f"edgewise report for {', '.join(s.title for s in subjects)}",
            filled,
            f"edgewise {__version__} · {platform.python_implementation()} {platform.python_version()} · seed {seed} · "
            f"computed in {elapsed:.0f} s · numbers: report.json, data/ · figures: figures/")
        path = staging.tmp / "index.html"
        write_atomic(path, document.encode())
        w.files += [path, write_json(staging.tmp / "config.json", config),
                    write_json(staging.tmp / "report.json", {"config": config, "numbers": w.numbers})]
        staging.commit()
    finally:
        w.render.close()
        bar.close()
    return Report(out / "index.html", [t for _, t, _ in parts], w.numbers, config,
                  [staging.final(p) for p in w.files])


def _explore(w, pairs, padding: str) -> str:
    """Write explore.html beside the page (opened on the first model the explorer draws, else on its stack editor)
    and return the paragraph that links to it: the page itself stays free of scripts."""
    from .explore import FILE_NAME, write_explore

    for model, shape in pairs:
        if isinstance(model, str):
            try:
                w.files.append(write_explore(w.out, model, shape, padding))
                what = f"opened on {model}, input {'x'.join(map(str, shape))}, {padding} padding"
                break
            except EdgewiseError:  # a layer the explorer does not draw (fc, res, ...)
                continue
    else:
        w.files.append(write_explore(w.out, None, None, padding))
        what = "opened on its stack editor (no model here is a chain of conv and pool layers)"
    return (f'<p class="blurb">Interactive: <a href="{FILE_NAME}">the explorer</a> ({FILE_NAME} beside this page, '
            f"{html.escape(what)}) changes the kernels, strides, dilations, padding, pooling and depth in the browser "
            "and redraws the exact path counts, the centre/edge ratio against depth and the receptive fields.</p>")


def _learned_section(w, subjects, probe: bool, seed: int, bar, train: bool = False, size: str = "quick",
                     default_page: bool = False) -> list:
    """Section 8: the probes on the trained models (or on the packaged EfficientNet-Lite0 when none is trained);
    ``default_page``: the built-in default report (its probes are remembered as cached once computed)."""
    title = "8. What trained networks learned about position"
    if not probe:
        return ["learned", title, [page.note(
            "Run with --probe to measure what trained weights do with the border (spatial bias, blind spots, "
            "padding-aware units, position readout, perturbation) on the models given, or, if none of them is "
            f"trained, on the packaged {learned.DEFAULT}" + (
                " (not measured on the default page by itself: it takes far longer than the rest of the page; once "
                "measured with --probe or --train, its results are cached in this folder and every later default "
                "report into it shows them)." if default_page else "."))]]
    models = [(s.ev.module, s.ev.shape, s.ev.name) for s in subjects if s.trained] or [(learned.DEFAULT, None, None)]

    def step(text):
        bar.label(f"{title} — {text}", f"{title} — {text.split(' — ')[0]}")

    html_text = learned.section(w, models, seed, step, train=train, size=size)
    if default_page:
        learned.mark_default(w.cache, seed)
    bar.done()
    return ["learned", title, [html_text]]


def _trained_sections(w, subjects, train, visualize, size, seeds, n_inits, seed, parts, bar) -> list:
    """Section 7 (experiments, visualization); the sensitivity after training joins section 5."""
    if not (train or visualize):
        return [["trained", "7. Trained networks", [page.note(
            "Run with --train to add the experiments (tasks where the border matters, every remedy, several seeds) "
            "and the sensitivity of a trained network, and with --visualize for position-specific feature "
            "visualization.")]]]
    inner = [page.paragraph("Networks trained on tasks where the border matters, and what their units prefer at "
                            "each position.", "blurb")]
    net = None
    if train:
        def step(text):
            bar.label(f"7. Experiments — {text}")
            bar.done()

        inner += ["<h3>Experiments</h3>", trained.experiments(w, size, seeds, step)]
        bar.label("5. Sensitivity — after training")
        net, shape, images = trained.trained_net(size)
        sens = next(p for p in parts if p[0] == "sensitivity")
        sens[2].append(trained.after_training(w, net, shape, images, n_inits, seed))
        bar.done()
    if visualize:
        bar.label("7. Position-specific visualization")
        inner.append("<h3>Position-specific visualization</h3>")
        if net is not None:
            task, remedy, _ = trained.TRAINED
            inner.append(trained.visualization(w, net, shape, f"{task} net ({remedy}, trained)", seed))
        else:
            two_d = [s for s in subjects if len(s.ev.shape) == 3]
            if two_d:
                first = two_d[0].ev
                inner.append(trained.visualization(w, first.module, first.shape, first.name, seed))
            else:
                inner.append(page.note("Visualization needs a 2-D model (input C×H×W); none was given."))
        bar.done()
    return [["trained", "7. Trained networks", inner]]
