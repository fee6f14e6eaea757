"""The report on architectures of today (issue 15): a vision transformer and a zero-initialised head."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn as nn

from edgewise.report import build
from edgewise.testing.claims import check_report

torchvision = pytest.importorskip("torchvision")
from torchvision.models import vision_transformer  # noqa: E402


class ZeroHead(nn.Module):
    """A small CNN whose own initialisation starts its output layer at zero (as torchvision's ViT does)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(4, 3)
        self._init_weights()

    def _init_weights(self):
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        return self.head(self.pool(torch.relu(self.conv2(torch.relu(self.conv1(x))))).flatten(1))


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    torch.manual_seed(0)
    vit = vision_transformer.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                               hidden_dim=16, mlp_dim=32, num_classes=4)
    out = {}
    stem = nn.Sequential(nn.Conv2d(1, 4, 4, stride=4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))  # a patchify stem
    for name, model, shape in [("vit", vit, (3, 32, 32)), ("zero", ZeroHead(), (1, 16, 16)), ("stem", stem, (1, 18, 18))]:
        folder = tmp_path_factory.mktemp(name)
        build([model], [shape], out=folder, n_inits=4, remedy_inits=2, progress=False)
        out[name] = folder
    return out


def _verdict(folder) -> str:
    page = (folder / "index.html").read_text()
    block = page[page.index('id="verdict"'):page.index('id="pathways"')]
    return _text(block)


def _text(html: str) -> str:
    """Plain words of HTML: a claim's or a number's span leaves no space (its text runs on into ", so …")."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"</?span[^>]*>", "", html)))


def test_every_claim_holds_and_no_nan_is_shown(pages):
    for folder in pages.values():
        assert check_report(folder) == []
        assert not re.search(r"\bnan\b", (folder / "index.html").read_text())


def test_vit_is_uniform_and_the_verdict_says_why(pages):
    text = _verdict(pages["vit"])
    assert "exactly uniform" in text and "tile the input without overlap" in text, text[:2000]
    assert "conv_proj 8×8/8×8" in text and "self_attention" in text
    assert "Nothing, for the path counts: this model is already uniform" in text  # no remedy is recommended
    # attention is neither a pooling layer nor a dense layer of the stack
    pooling = text[text.index("Does max pooling stop it?"):text.index("Is there theory?")]
    assert "self_attention" not in pooling, pooling


def test_a_zero_gradient_is_said_not_divided(pages):
    import json

    text = _verdict(pages["zero"])
    assert "every input gradient of its output is exactly zero" in text, text[:3000]
    # why, from the data: the head started at zero weights in every initialisation (no pass was run for them)
    assert "(its output layer head starts with zero weights in each of them, so the output is that layer's bias " \
        "whatever the input)" in text
    saved = json.loads(next((pages["zero"] / "data").glob("*/verdict.json")).read_text())
    assert saved["q4"]["zero_readout"] == "head" and saved["q4"]["zero_gradient"] is True


def test_a_zero_gradient_without_a_zero_readout_names_no_cause(pages):
    """Where the data does not show a zero readout in every initialisation, the sentence gives no cause."""
    import json

    from edgewise.report.verdict import render

    facts = json.loads(next((pages["zero"] / "data").glob("*/verdict.json")).read_text())
    facts["q4"]["zero_readout"] = None
    text = _text(render(facts))
    assert "every input gradient of its output is exactly zero, so its sensitivity cannot" in text, text


def test_a_fabricated_zero_readout_fails(pages, tmp_path):
    """The claim checker reads the cause back from the saved result: another layer's name, or a saved map that
    is not zero, is caught."""
    import shutil

    import numpy as np

    out = shutil.copytree(pages["zero"], tmp_path / "copy")
    text = (out / "index.html").read_text()
    assert 'data-claim="zero-readout" data-of="head"' in text
    (out / "index.html").write_text(text.replace('data-claim="zero-readout" data-of="head"',
                                                 'data-claim="zero-readout" data-of="conv2"'))
    data = next((out / "data").glob("*/sensitivity_init.map.npy"))
    np.save(data, np.load(data) + 1e-9)
    problems = check_report(out)
    assert any("says conv2 starts at zero weights" in p for p in problems), problems
    assert any("every input gradient is zero, but the saved sensitivity map is not" in p for p in problems)


def test_a_uniform_model_is_said_uniform_at_every_layer_and_its_spread_even(pages):
    """ViT's ratio is 1 after every layer (not "grows"), and its centre unit's paths spread as an even spread over
    the whole input does (not "only")."""
    text = _verdict(pages["vit"])
    assert "This model has no pooling layer; its ratio is 1× after every layer" in text
    assert "and the paths to the centre unit spread with a standard deviation of 9.2 × 9.2 px" in text, text
    spread = text[text.index("the paths to the centre unit spread"):]
    spread = spread[:spread.index("q4")]  # (q1 says "only with valid padding" of the stride-1 stack)
    assert "against 9.2 × 9.2 px for an even spread over the positions it reads" in spread and " only " not in spread


def test_unread_corners_are_said_beside_the_verdicts_ratio(pages, tmp_path):
    """A 4×4/4 stem on 18 px never reads its last 2 rows and columns, in the model and in every variant that keeps
    the stem: three corners have no path, which the verdict says beside each ratio and the checker reads back."""
    import shutil

    page = (pages["stem"] / "index.html").read_text()
    said = '<span class="claim" data-claim="unread-corners" data-of="reflect">3 of its 4 corners</span> have no path'
    assert said in page and 'data-claim="unread-corners" data-of="model">3 of its 4 corners</span>' in page
    out = shutil.copytree(pages["stem"], tmp_path / "copy")
    (out / "index.html").write_text(page.replace(said, said.replace(">3 of", ">2 of")))
    assert any("says 2 of reflect's 4 corners have no path, its map has 3" in p for p in check_report(out))
    # the table's note names every such variant in one sentence; the checker reads each name back
    from edgewise.testing.claims import check_anchor_notes

    data = next((pages["stem"] / "data").iterdir())
    said = check_anchor_notes("circular and reflect: 3 of their 4 corners have no path", data)
    assert not any("a note says" in p for p in said), said  # (the others go unmentioned in this text alone)
    assert any("a note says global's" in p for p in
               check_anchor_notes("reflect and global: 3 of their 4 corners have no path", data))


def test_every_variant_of_a_patch_embedding_reads_every_pixel(pages):
    """The small ViT's `same`, `circular` and `reflect` rows read "3 of their 4 corners have no path": half a
    window of padding shifted its 8×8/8 patches off their grid. A layer whose windows do not overlap keeps its own
    padding, so each padding variant computes what the model does."""
    import json

    rows = json.loads(next((pages["vit"] / "data").iterdir()).joinpath("remedies.json").read_text())["rows"]
    padded = {r["name"]: r for r in rows if r["name"] in ("same", "circular", "reflect", "replicate", "symmetric")}
    assert len(padded) == 5 and all(r["unchanged"] and r["unread"] == 0 for r in padded.values()), padded
    assert "have no path" not in (pages["vit"] / "index.html").read_text()


def test_zero_gradients_are_said_not_drawn(pages):
    """Every remedy of the zero-head net has a zero gradient in each initialisation (its own init zeroes the head
    of every variant): no figure of hatched panels, a sentence; section 5's figure says there is no map instead of
    drawing a colour bar for nothing. The small ViT, re-initialised by torch's defaults, keeps its figure."""
    assert "-remedies-sensitivity" in (pages["vit"] / "index.html").read_text()
    import html

    page = html.unescape((pages["zero"] / "index.html").read_text())
    assert "-remedies-sensitivity" not in page
    assert "every variant's input gradients are exactly zero in each of them, so there is no sensitivity map" in page
    assert "(left) no map: E[(∂y/∂x)²] is 0 at every input position" in page


def test_the_page_says_whether_normalisation_statistics_were_counted(pages):
    import json

    page = re.sub(r"\s+", " ", (pages["vit"] / "index.html").read_text())
    # torchvision's ViT: a LayerNorm before attention and one before the MLP per layer, and the final one
    assert "Normalisation: the statistics of 5 normalisation layers (LayerNorm ×5) not counted" in page
    numbers = json.loads((pages["vit"] / "report.json").read_text())["numbers"]["pathways"]
    assert [v["norm_stats"] for v in numbers.values()] == ["ignore"]
    assert "Normalisation: no normalisation with statistics computed from the input" in \
        (pages["zero"] / "index.html").read_text()


@pytest.mark.parametrize("shape", [(1, 16, 16), (1, 40)])
def test_an_all_zero_sensitivity_figure_says_so_and_passes_the_lint(shape):
    """No image of one value with a colour bar for nothing: the input's extent, the words, the path counts."""
    from edgewise import pathways, trace
    from edgewise.report.figures import panel_text
    from edgewise.report.sensitivity import plot_sensitivity
    from edgewise.sensitivity import init_sensitivity
    from edgewise.testing.figure_lint import figure_problems

    class Zero1d(ZeroHead):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2, self.pool = nn.Conv1d(1, 4, 3, padding=1), nn.Conv1d(4, 4, 3, padding=1), \
                nn.AdaptiveAvgPool1d(1)

    model = ZeroHead() if len(shape) == 3 else Zero1d()
    result = init_sensitivity(model, shape, n_inits=2)
    assert not result.map.any()
    fig = plot_sensitivity(result, paths=pathways(trace(model, shape)))
    fig.canvas.draw()
    assert figure_problems(fig) == []
    assert panel_text(fig).startswith("(left) no map: E[(∂y/∂x)²] is 0 at every input position; (right) the path "
                                      "counts' mean at each distance")
    assert not fig.axes[0].get_images() and "0/0" in fig.axes[0].get_title()
