"""The report page's layout in a real browser: nothing makes it scroll sideways."""

import pytest

from edgewise.report.page import page
from edgewise.testing.browser import check_page

SECTIONS = ["The verdict", "Pathways", "Depth scaling", "Receptive fields", "Sensitivity", "Remedies",
            "Trained networks", "What trained networks learned about position", "One more long section title"]


@pytest.mark.browser  # skipped without the browser, required in CI (conftest.py)
@pytest.mark.parametrize("width", [1280, 700])
def test_a_long_table_of_contents_wraps_instead_of_widening_the_page(tmp_path, width):
    sections = [(f"s{i}", f"{i + 1}. {t}", '<svg width="10" height="10"><rect width="10" height="10"/></svg>')
                for i, t in enumerate(SECTIONS)]
    path = tmp_path / "index.html"
    path.write_text(page("Do central pixels have more pathways?", "a test page", sections), encoding="utf-8")
    check = check_page(path, width=width, timeout=30)
    assert check.console_errors == [] and check.page_width == width


@pytest.mark.browser
def test_a_wide_table_scrolls_on_its_own_instead_of_widening_the_page(tmp_path):
    from edgewise.report.page import markdown, table

    cols = [f"b={i}" for i in range(14)]
    wide = "| remedy | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n| same | " + \
        " | ".join(["100.0 ± 0.0"] * len(cols)) + " |\n"
    inner = markdown(wide) + table(["remedy", *cols], [["same", *["50.0 ± 0.0"] * len(cols)]], caption="wide")
    path = tmp_path / "index.html"
    path.write_text(page("t", "s", [("a", "1. A", inner + '<svg width="9" height="9"></svg>')]), encoding="utf-8")
    assert inner.count('<div class="scroll"><table>') == 2
    assert check_page(path, width=700, timeout=30).page_width == 700
