"""What the commands share: a progress bar on the terminal (argument types and bounds: :mod:`core.base.config`)."""
from __future__ import annotations

import sys

MESSAGE_CHARS = 64  # of a progress message beside the bar
ONE_STEP_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


class Bar:
    """A tqdm bar that is a :class:`core.base.progress.Progress`: it shows ``message`` and every value.

    A job that moves on to a new stage (a new total, or ``done`` going back) gets a fresh bar.
    """

    def __init__(self, desc: str, unit: str):
        self.desc, self.unit, self.bar = desc, unit, None

    def __call__(self, done: int, total: int, message: str = "", **values: float) -> None:
        from tqdm import tqdm

        if self.bar is not None and (total != self.bar.total or done < self.bar.n):
            self.close()
        if self.bar is None:  # a one-step bar shows no rate: it would be its few microseconds' "33554.43step/s"
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr,
                            bar_format=ONE_STEP_FORMAT if total <= 1 else None)
        step = done - self.bar.n
        self.bar.set_postfix_str(postfix(message, values), refresh=not step)  # no step: show the message now
        self.bar.update(step)
        if done >= total:
            self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def postfix(message: str, values: dict) -> str:
    """"epoch 12, loss=0.4123": the message (cut at the end past :data:`MESSAGE_CHARS`, so it reads from its
    start) and the values."""
    shown = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()]
    message = str(message)
    if len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS - 1] + "…"
    return ", ".join(([message] if message else []) + shown)
