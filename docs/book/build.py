"""Build the HTML book, readable offline: ``python docs/book/build.py build/book`` (``make book``).

Runs nbconvert on the numbered notebooks (executed, in smoke mode when ``DGCN_SMOKE=1``) with
the template of ``docs/book/offline`` (nbconvert's lab template without its CDN scripts), copies
MathJax from the ``jupyter-server-mathjax`` package (the book's ``notebooks`` extra) beside the
pages, writes ``index.html`` and checks that no page loads a remote script. ``--no-execute``
converts the notebooks as they are (their committed outputs), which the tests use.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
#: the MathJax 2 configuration of the local copy (it has the HTML-CSS output, not CommonHTML)
MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
REMOTE_SCRIPT = re.compile(
    r"""<script\b[^>]*\bsrc\s*=\s*["']?((?:https?:)?//[^"' >]+)"""  # <script src=...>
    r"""|import\(\s*["']((?:https?:)?//[^"']+)""",  # a module's dynamic import(...)
    re.IGNORECASE,
)


class BookError(Exception):
    """A build that cannot go on; the message says what to do."""


def mathjax_source() -> Path:
    """The MathJax 2 tree that ``jupyter-server-mathjax`` installs."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        raise BookError(
            "the offline book needs MathJax from jupyter-server-mathjax: "
            "pip install -e '.[notebooks]' (or pip install jupyter-server-mathjax)"
        ) from None
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (static / "MathJax.js").is_file():
        raise BookError(f"no MathJax.js in {static}: reinstall jupyter-server-mathjax")
    return static


def copy_mathjax(out: Path) -> Path:
    """MathJax beside the pages, as ``out/mathjax`` (replaced when it is there)."""
    target = out / "mathjax"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(mathjax_source(), target)
    return target


def convert(notebooks: list[Path], out: Path, execute: bool) -> None:
    """The notebooks as HTML pages in ``out`` through the offline template."""
    command = [sys.executable, "-m", "nbconvert", "--to", "html", "--output-dir", str(out)]
    command += [f"--TemplateExporter.extra_template_basedirs={HERE}", "--template", "offline"]
    command += [f"--HTMLExporter.mathjax_url={MATHJAX_URL}"]
    if execute:
        command += ["--execute", "--ExecutePreprocessor.timeout=600"]
    done = subprocess.run([*command, *map(str, notebooks)])
    if done.returncode != 0:
        raise BookError(f"nbconvert failed (exit {done.returncode}): see its messages above")


def remote_scripts(page: Path) -> list[str]:
    """The addresses of the scripts ``page`` would fetch from another host."""
    text = page.read_text(errors="replace")
    return [a or b for a, b in REMOTE_SCRIPT.findall(text)]


def title_of(page: Path) -> str:
    """The first <h1> of an nbconvert page, or the file name."""
    text = page.read_text(errors="replace")
    start = text.find("<h1")
    if start >= 0:
        start = text.find(">", start) + 1
        end = text.find("</h1>", start)
        raw = re.sub(r"<[^>]*>", "", text[start:end])  # inner tags (anchors)
        if raw.strip():
            return html.unescape(raw.replace("¶", "").strip())
    return page.stem


def write_index(folder: Path) -> Path:
    """List every ``NN_*.html`` page of ``folder`` in ``folder/index.html``."""
    pages = sorted(folder.glob("[0-9]*.html"))
    items = "\n".join(f'<li><a href="{p.name}">{html.escape(title_of(p))}</a></li>' for p in pages)
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>dgcn-book</title></head>"
        "<body style='font-family: sans-serif; max-width: 48em; margin: 2em auto'>"
        "<h1>dgcn-book: the Dual Graph Convolutional Network</h1>"
        "<p>Notebooks executed in smoke mode on a CPU (MiniCity, few iterations).</p>"
        f"<ol>{items}</ol></body></html>\n"
    )
    path = folder / "index.html"
    path.write_text(body)
    return path


def build(out: Path, notebooks: list[Path], execute: bool = True) -> list[Path]:
    """The whole book in ``out``: pages, MathJax, index; raises when a page is not offline."""
    mathjax_source()  # before anything is written: a missing package fails at once
    out.mkdir(parents=True, exist_ok=True)
    convert(notebooks, out, execute)
    copy_mathjax(out)
    pages = [out / (nb.stem + ".html") for nb in notebooks]
    remote = {p.name: remote_scripts(p) for p in pages}
    remote = {name: urls for name, urls in remote.items() if urls}
    if remote:
        first = next(iter(remote))
        raise BookError(f"{first} loads a remote script ({remote[first][0]}): fix the template")
    write_index(out)
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "build" / "book")
    parser.add_argument("--no-execute", action="store_true", help="keep the committed outputs")
    parser.add_argument("--notebooks", nargs="+", type=Path, help="default: notebooks/[0-9]*.ipynb")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))
    try:
        pages = build(args.out, notebooks, execute=not args.no_execute)
    except BookError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(pages)} pages, MathJax and the index in {args.out}: open {args.out}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
