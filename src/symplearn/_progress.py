"""Progress reporting: a tqdm bar on a terminal, periodic plain lines otherwise, silent on request."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class Progress:
    """Report progress of ``total`` units of work.

    Args:
        total: number of units.
        desc: short label.
        initial: units already done (a resumed run).
        enabled: ``False`` silences it completely.
        every_s: with no terminal, print a line at most this often (plus the last one).
    """

    def __init__(
        self, total: int, desc: str = "", *, enabled: bool = True, every_s: float = 5.0, initial: int = 0
    ):
        self.total, self.desc, self.enabled, self.every_s = total, desc, enabled, every_s
        self.n = initial
        self.postfix = ""
        self._final_printed = False
        self._bar = None
        self._t0 = self._last = time.perf_counter()
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total, initial=initial, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True
            )

    def update(self, n: int = 1, **info: float) -> None:
        """Advance by ``n`` units; ``info`` (e.g. ``loss=...``) is shown beside the count."""
        self.n += n
        if not self.enabled:
            return
        if info:
            self.postfix = ", ".join(f"{k}={v:.3g}" for k, v in info.items())
        if self._bar is not None:
            self._bar.update(n)
            if info:
                self._bar.set_postfix_str(self.postfix, refresh=False)
            return
        now = time.perf_counter()
        finished = self.n >= self.total and not self._final_printed
        if now - self._last >= self.every_s or finished:
            self._last = now
            self._final_printed = self._final_printed or self.n >= self.total
            pct = 100.0 * self.n / max(self.total, 1)
            extra = f" {self.postfix}" if self.postfix else ""
            print(
                f"{self.desc}: {self.n}/{self.total} ({pct:.0f}%, {now - self._t0:.1f} s){extra}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: Iterable[T], total: int, desc: str = "", *, enabled: bool = True) -> Iterator[T]:
    """Iterate over ``items`` while reporting progress."""
    with Progress(total, desc, enabled=enabled) as bar:
        for item in items:
            yield item
            bar.update()
