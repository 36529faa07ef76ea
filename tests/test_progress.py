"""Progress bars: animated on a terminal or in a notebook, a few lines in a log file."""

import io
import sys
import types

from dgcn import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_file_is_a_log_and_a_terminal_or_a_notebook_is_not(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert progress.writes_to_a_log(io.StringIO())
    assert not progress.writes_to_a_log(Terminal())
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert not progress.writes_to_a_log(io.StringIO())


def test_a_bar_written_to_a_log_redraws_rarely(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    redraws = {}
    for name, stream in (("log", io.StringIO()), ("terminal", Terminal())):
        # mininterval 0 on the terminal stands for "as often as tqdm likes"
        extra = {} if name == "log" else {"mininterval": 0}
        for _ in progress.progress_bar(range(2000), file=stream, miniters=1, **extra):
            pass
        text = stream.getvalue()
        redraws[name] = text.count("\r") if name == "terminal" else len(text.splitlines())
    assert redraws["log"] <= 3  # the first draw, the last, and its close
    assert redraws["terminal"] > 100


def test_a_bar_written_to_a_log_writes_lines_with_iteration_rate_and_eta(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)  # every update, to see each one
    stream = io.StringIO()
    with progress.progress_bar(total=3, file=stream, desc="run", mininterval=0, miniters=1) as bar:
        for _ in range(3):
            bar.update(1)
            bar.set_postfix(loss=0.5)
    text = stream.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) >= 3 and all(line.strip() == line and line for line in lines)
    last = lines[-1]
    assert last.startswith("run: 100%") and "3/3" in last and "loss=0.5" in last
    assert "<" in last and "it/s" in last  # elapsed<remaining (the ETA) and the rate


def test_a_terminal_keeps_its_animated_bar(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    stream = Terminal()
    for _ in progress.progress_bar(range(3), file=stream, mininterval=0, miniters=1):
        pass
    assert "\r" in stream.getvalue()
