"""Progress that suits where it goes: a tqdm bar on a terminal, a plain line now and then in a log.

tqdm redraws its bar with carriage returns; captured by `tee` or a CI log that becomes one line of
thousands of redraws. When the stream is not a terminal we print a full line every `every_s`
seconds (and at the end) instead.
"""
from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm


def on_terminal() -> bool:
    """Whether progress goes to a terminal (a bar) rather than a log (lines)."""
    return sys.stderr.isatty()


class PlainProgress:
    def __init__(self, total: int, initial: int = 0, desc: str = "", every_s: float = 30.0, file=None):
        self.total, self.n, self.desc, self.every_s = total, initial, desc, every_s
        self.file = file or sys.stdout
        self.start = self.last = time.time()
        self.postfix = {}

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.time()
        if now - self.last >= self.every_s or self.n >= self.total:
            self.last = now
            self._print(now)

    def set_postfix(self, refresh: bool = False, **kw) -> None:
        self.postfix = kw

    def _print(self, now) -> None:
        extra = "  ".join(f"{k}={v}" for k, v in self.postfix.items())
        pct = 100.0 * self.n / max(self.total, 1)
        print(f"{self.desc}: {self.n}/{self.total} steps ({pct:.0f} %), {now - self.start:.0f} s  {extra}",
              file=self.file, flush=True)

    def close(self) -> None:
        pass


def progress_bar(total: int, initial: int = 0, desc: str = "", enabled: bool = True):
    """A tqdm bar on a terminal, PlainProgress lines otherwise, or a silent tqdm when not `enabled`."""
    if enabled and not on_terminal():
        return PlainProgress(total, initial, desc)
    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, dynamic_ncols=True, mininterval=0.5)
