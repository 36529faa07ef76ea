"""The notation card: `docs/reference/notation.md` is its source, notebook 00 shows it.

Both hold one markdown table (symbol | meaning | size | authors' network); the notebook writes
its symbols and formulas in LaTeX, the reference file in plain letters. The test reads both
tables, writes every cell in plain letters and asks for the same rows in the same order.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference" / "notation.md"
NOTEBOOK = ROOT / "notebooks" / "00_quick_start.py"
HEADER = ["symbol", "meaning", "size", "authors' network, 832 crop"]


def plain(cell):
    """A cell of either card in plain letters: LaTeX's `$\\tilde X_S$`, `$\\theta$`,
    `$N \\times D$` and `$\\lceil H/d \\rceil$` read `X~_S`, `theta`, `N x D` and `ceil(H/d)`;
    spaces collapse."""
    text = cell.replace("$", "")
    text = re.sub(r"\\lceil\s*(.*?)\s*\\rceil", r"ceil(\1)", text)
    text = re.sub(r"\\tilde\s*\{?([A-Za-z])\}?", r"\1~", text)
    text = text.replace(r"^\top", "^T").replace(r"\times", " x ").replace(r"\to", " -> ")
    text = re.sub(r"\\([A-Za-z]+)", r"\1", text)  # \theta -> theta, \Psi -> Psi
    return " ".join(text.split())


def card(text):
    """The rows of the first table whose header is HEADER, each as its cells in plain letters.

    Lines may carry the "# " of a notebook's markdown cell.
    """
    lines = [re.sub(r"^# ?", "", line).strip() for line in text.splitlines()]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    start = next((i for i, row in enumerate(cells) if row == HEADER), None)
    assert start is not None, f"no table with the header {' | '.join(HEADER)}"
    rows = []
    for line, row in zip(lines[start + 2 :], cells[start + 2 :], strict=True):
        if not line.startswith("|"):
            break
        assert len(row) == len(HEADER), f"a row of {len(row)} cells: {line}"
        rows.append(tuple(plain(c) for c in row))
    return rows


def differences(reference, notebook):
    """What one card holds and the other does not, row by row (empty when they agree)."""
    out = [f"only in notation.md: {' | '.join(r)}" for r in reference if r not in notebook]
    out += [f"only in notebook 00: {' | '.join(r)}" for r in notebook if r not in reference]
    if not out and reference != notebook:
        out.append("the same rows in another order")
    return out


@pytest.fixture(scope="module")
def cards():
    return card(REFERENCE.read_text()), card(NOTEBOOK.read_text())


def test_latex_and_plain_spellings_read_the_same():
    assert plain(r"$\tilde X_S$") == plain("X~_S") == "X~_S"
    assert plain(r"$\theta$") == plain("theta") == "theta"
    assert plain("$D_2$") == plain("D_2") == "D_2"
    assert plain(r"$D_2 \times D_1$") == "D_2 x D_1"
    assert plain(r"$N' = \lceil H/d \rceil \lceil W/d \rceil$") == "N' = ceil(H/d) ceil(W/d)"
    assert plain(r"$\delta(V_S) \Psi(V_S)^\top$") == "delta(V_S) Psi(V_S)^T"
    assert plain(r"1x1 convolutions $D \to D/2$") == "1x1 convolutions D -> D/2"
    assert plain(r"$\tilde X = X + \tilde X_S + \tilde X_F$") == "X~ = X + X~_S + X~_F"


def test_the_notebook_shows_the_reference_card(cards):
    reference, notebook = cards
    assert len(reference) >= 25, f"the reference card has {len(reference)} rows"
    problems = differences(reference, notebook)
    assert not problems, "notebook 00's card and docs/reference/notation.md differ:\n" + (
        "\n".join(problems)
    )


def test_every_symbol_the_issue_names_is_on_the_card(cards):
    symbols = {s.strip() for row in cards[0] for s in row[0].split(",")}
    named = "N D D_1 D_2 C d N' H_S V_S A_S W_S M_S H_F V_F A_F W_F M_F theta phi Phi X~"
    assert set(named.split()) <= symbols, set(named.split()) - symbols
    sizes = {row[0]: row[2] for row in cards[0]}
    assert sizes["V_F"] == "D_2 x D_1" and sizes["A_S"] == "N' x N'" and sizes["X~"] == "N x D"


def test_a_dropped_row_or_a_changed_size_is_found(cards):
    reference, notebook = cards
    assert differences(reference, notebook[:5] + notebook[6:])  # a row dropped
    changed = [(s, m, "N x N'" if s == "H_S" else z, v) for s, m, z, v in notebook]
    assert any("H_S" in p for p in differences(reference, changed))  # a size changed
    assert differences(reference, notebook[1:] + notebook[:1])  # the order changed


def test_both_files_say_so():
    reference = " ".join(REFERENCE.read_text().split())
    assert (
        "Notebook 00 shows this card; `tests/test_notation.py` checks that it and the notebook "
        "agree." in reference
    )
    notebook = " ".join(NOTEBOOK.read_text().replace("\n# ", "\n").split())
    assert "every notebook uses them in this sense and no other" in notebook
    assert "docs/reference/notation.md" in notebook
