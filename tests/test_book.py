"""The HTML book reads offline: its pages load no remote script, MathJax sits beside them."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# docs/book/build.py, the script behind make book (loaded by path: "build" is a PyPI name too)
_spec = importlib.util.spec_from_file_location("book_build", REPO / "docs" / "book" / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

needs_mathjax = pytest.mark.skipif(
    importlib.util.find_spec("jupyter_server_mathjax") is None,
    reason="jupyter-server-mathjax (the notebooks extra) is not installed",
)


def test_remote_scripts_are_found():
    page = (
        '<script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js">'
        "</script><script src='mathjax/MathJax.js?config=X'></script>"
        '<script type="module">const m = (await import("https://cdn.example/m.mjs"));</script>'
        "<script src=//cdn.example/x.js></script><a href='https://github.com/x'>a link</a>"
    )
    found = build.REMOTE_SCRIPT.findall(page)
    assert [a or b for a, b in found] == [
        "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js",
        "https://cdn.example/m.mjs",
        "//cdn.example/x.js",
    ]


@needs_mathjax
@pytest.mark.slow  # nbconvert on two notebooks: about 10 s
def test_the_built_pages_load_no_remote_script(tmp_path):
    # 01 has equations; 07 has saved widget state, whose renderer nbconvert fetches from a CDN
    notebooks = [
        REPO / "notebooks" / f"{n}.ipynb" for n in ("01_graph_formulation", "07_evaluation")
    ]
    pages = build.build(tmp_path, notebooks, execute=False)
    for page in pages:
        text = page.read_text()
        assert build.remote_scripts(page) == [], page.name
        assert f'<script src="{build.MATHJAX_URL}">' in text, page.name
    assert (tmp_path / "mathjax" / "MathJax.js").is_file()
    assert (tmp_path / "mathjax" / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert "$" in pages[0].read_text()  # the equations are left for MathJax to typeset
    index = (tmp_path / "index.html").read_text()
    assert "01 · " in index and "07 · " in index


def test_a_missing_mathjax_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jupyter_server_mathjax", None)  # import fails
    assert build.main([str(tmp_path / "book")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install" in err
    assert not (tmp_path / "book").exists()


@needs_mathjax
@pytest.mark.slow  # nbconvert and a headless browser: about 20 s
@pytest.mark.skipif(shutil.which("chromium") is None, reason="no headless chromium here")
def test_the_equations_typeset_with_the_network_cut_off(tmp_path):
    (page,) = build.build(tmp_path, [REPO / "notebooks" / "01_graph_formulation.ipynb"], False)
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu"]
    browser += ["--host-resolver-rules=MAP * ~NOTFOUND", "--allow-file-access-from-files"]
    browser += ["--virtual-time-budget=20000", "--dump-dom", page.as_uri()]
    dom = subprocess.run(browser, capture_output=True, text=True, timeout=300).stdout
    typeset = dom.count('class="MathJax"')
    assert typeset > 20, f"{typeset} typeset formulas"
    assert 'class="MathJax_Error"' not in dom and "Math Processing Error" not in dom
