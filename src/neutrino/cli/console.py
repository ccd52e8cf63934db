"""The one rich Console the CLI prints with: terminal width on a TTY; in a pipe or a log, no wrapping at 80 columns
(rich's default for a non-terminal), so tables and trees keep one line per row for grep and for readers."""
from __future__ import annotations

import os
import sys

from rich.console import Console

PIPE_WIDTH = 400     # wide enough for any row neutrino prints (ids, rules with counters)


def make_console(file=None) -> Console:
    out = file or sys.stdout
    tty = hasattr(out, "isatty") and out.isatty()
    width = None if tty or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(highlight=False, file=file, width=width)
