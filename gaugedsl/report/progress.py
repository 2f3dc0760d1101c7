"""The progress bar of a run, through `tqdm.auto`: a bar on stderr in a terminal, a widget in
Jupyter. Off by default elsewhere (a pipe, a log file, CI). The rate and the ETA count from the
end of the first chunk, which includes compilation."""

from __future__ import annotations

import sys
import time


def in_notebook() -> bool:
    """Whether this is a Jupyter kernel (where tqdm.auto draws a widget)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


class Progress:
    """**Arguments:** `total` steps, `particles`; `enabled`: `True`, `False` or `None` (when
    stderr is a terminal or this is a notebook); `delay`: seconds before the bar first shows;
    `stream`: where a terminal bar goes (stderr)."""

    def __init__(self, total: int, particles: int, enabled: bool | None = None, delay: float = 2.0, stream=None):
        self.stream = stream or sys.stderr
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = (tty or in_notebook()) if enabled is None else enabled
        self.total, self.particles, self.delay = total, particles, delay
        self.start = time.perf_counter()
        self.first: tuple[int, float] | None = None  # (step, time) of the first update
        self.bar = None

    def update(self, step: int) -> None:
        now = time.perf_counter()
        if self.first is None:  # the first chunk includes compilation: rate from then on
            self.first = (step, now)
        if not self.enabled or now - self.start < self.delay:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.total,
                initial=step,
                unit="step",
                file=self.stream,
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| step {n}/{total} {postfix}",
            )
        first_step, first_time = self.first
        if step > first_step:
            rate = (step - first_step) / (now - first_time)
            self.bar.set_postfix_str(
                f"{rate * self.particles:.3g} particle-steps/s, ETA {(self.total - step) / rate:.0f} s", refresh=False
            )
        self.bar.update(step - self.bar.n)

    @property
    def shown(self) -> bool:
        return self.bar is not None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
