"""A progress bar on stderr for runs that take more than a couple of seconds."""

from __future__ import annotations

import sys
import time


class Progress:
    """**Arguments:** `total` steps, `particles`; `enabled`: `True`, `False` or `None`
    (only when stderr is a terminal); `delay`: seconds before the bar first shows."""

    def __init__(self, total: int, particles: int, enabled: bool | None = None, delay: float = 2.0, stream=None):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = self.tty if enabled is None else enabled
        self.total, self.particles, self.delay = total, particles, delay
        self.start = time.perf_counter()
        self.first: tuple[int, float] | None = None  # (step, time) of the first update
        self.shown = False

    def update(self, step: int) -> None:
        now = time.perf_counter()
        if self.first is None:  # the first chunk includes compilation: rate from then on
            self.first = (step, now)
        first_step, first_time = self.first
        if not self.enabled or now - self.start < self.delay:
            return
        frac = step / self.total
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        line = f"  [{bar}] {100 * frac:5.1f}%  step {step}/{self.total}"
        if step > first_step:
            rate = (step - first_step) / (now - first_time)
            line += f"  {rate * self.particles:.3g} particle-steps/s  ETA {(self.total - step) / rate:.0f}s"
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown and self.tty:
            self.stream.write("\n")
            self.stream.flush()
