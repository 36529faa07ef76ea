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
        redraws[name] = stream.getvalue().count("\r")
    assert redraws["log"] <= 3  # the first draw, the last, and its close
    assert redraws["terminal"] > 100
