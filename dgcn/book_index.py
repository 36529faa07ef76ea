"""Write ``index.html`` for the HTML book: ``python -m dgcn.book_index build/book``."""

from __future__ import annotations

import html
import sys
from pathlib import Path

from dgcn.fileio import write_text_atomic


def title_of(page: Path) -> str:
    """The first <h1> of an nbconvert page, or the file name."""
    text = page.read_text(errors="replace")
    start = text.find("<h1")
    if start >= 0:
        start = text.find(">", start) + 1
        end = text.find("</h1>", start)
        raw = text[start:end]
        while "<" in raw and ">" in raw:  # strip inner tags (anchors)
            a, b = raw.find("<"), raw.find(">", raw.find("<"))
            raw = raw[:a] + raw[b + 1 :]
        if raw.strip():
            return html.unescape(raw.replace("¶", "").strip())
    return page.stem


def write_index(folder: str | Path) -> Path:
    """List every ``NN_*.html`` page of ``folder`` in ``folder/index.html``."""
    folder = Path(folder)
    pages = sorted(p for p in folder.glob("[0-9]*.html"))
    items = "\n".join(f'<li><a href="{p.name}">{html.escape(title_of(p))}</a></li>' for p in pages)
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>dgcn-book</title></head>"
        "<body style='font-family: sans-serif; max-width: 48em; margin: 2em auto'>"
        "<h1>dgcn-book: the Dual Graph Convolutional Network</h1>"
        "<p>Notebooks executed in smoke mode on a CPU (MiniCity, few iterations).</p>"
        f"<ol>{items}</ol></body></html>\n"
    )
    path = folder / "index.html"
    write_text_atomic(path, body)
    return path


if __name__ == "__main__":
    print(write_index(sys.argv[1] if len(sys.argv) > 1 else "build/book"))
