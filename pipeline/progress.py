"""Progress of long work, one rule for every verb and stage.

On a terminal: a live tqdm bar. Anywhere else (a log file, CI, `photoedit run > log 2>&1`):
one plain line each time the work passes another tenth of its total, e.g.

    train-translator:  30% (60/200 step) [00:41<01:36,  1.46step/s, l1=0.081]

so a log shows that a 3-minute stage is alive and how long it has left, without the
thousands of carriage-return redraws a bar would write there.

gan/ and translators/ never import pipeline/: their loops take `progress=progress_bar`
(any callable with tqdm's keywords) from the verbs, and fall back to a plain tqdm bar.
Likewise `train_gan.tensorboard` / `train_translator.tensorboard: true` make the verbs open
`tensorboard_writer(RUN/tb)` and hand it to the loops, which write their stats rows to it.
"""
from __future__ import annotations

import math
import sys
import time
from typing import IO, Iterable

STEPS = 10  # lines per run of work when stderr is not a terminal
LINE_FORMAT = "{desc}: {percentage:3.0f}% ({n_fmt}/{total_fmt} {unit}) [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


def progress_bar(iterable: Iterable | None = None, *, total: float | None = None, desc: str = "", unit: str = "it",
                 initial: float = 0, disable: bool | None = False, file: IO[str] | None = None, **_tqdm_only):
    """A tqdm bar on a terminal, a `LineProgress` elsewhere, nothing when `disable` is true.

    Call it like tqdm (`update`, `set_postfix`, `close`, `with`, iterating); keywords only
    tqdm understands (e.g. `dynamic_ncols`) are accepted and used on a terminal only.
    `disable=None` means the same as False here: off a terminal the lines are the point.
    """
    from tqdm import tqdm

    file = file if file is not None else sys.stderr
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if disable:
        return tqdm(iterable, total=total, disable=True)
    if _is_terminal(file):
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, file=file,
                    **{"dynamic_ncols": True, **_tqdm_only})
    return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial, file=file)


def _is_terminal(file) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


class LineProgress:
    """tqdm's interface, written as one line per tenth of `total` passed (and one at `close`
    if the work stopped between tenths). Without a total, a line at 1, 2, 4, 8, ... units."""

    def __init__(self, iterable: Iterable | None = None, total: float | None = None, desc: str = "",
                 unit: str = "it", initial: float = 0, file: IO[str] | None = None):
        self.iterable = iterable
        self.total = total if total else None  # 0 has no tenths
        self.desc = desc
        self.unit = unit
        self.initial = self.n = initial
        self.file = file if file is not None else sys.stderr
        self.postfix = ""
        self.start = time.monotonic()
        self.printed_n = initial  # the count at the last line (a resumed run starts past its lines)
        self.next_line = self._line_after(initial)
        self.closed = False

    def _line_after(self, n: float) -> float:
        """The count at which the next line is due: the next tenth of the total (or power of 2)."""
        if self.total is None:
            return 2 ** math.floor(math.log2(n)) * 2 if n >= 1 else 1
        tenth = math.floor(n * STEPS / self.total + 1e-9) + 1
        return tenth * self.total / STEPS

    def update(self, n: float = 1) -> None:
        self.n += n
        if self.n >= self.next_line - 1e-9:
            self._print()
            self.next_line = self._line_after(self.n)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        """A bar redraws; a log gets its lines only at tenths."""

    def write(self, message: str) -> None:
        print(message, file=self.file, flush=True)

    def _print(self) -> None:
        from tqdm import tqdm

        line = tqdm.format_meter(self.n, self.total, time.monotonic() - self.start, prefix=self.desc,
                                 unit=self.unit, postfix=self.postfix or None, initial=self.initial,
                                 bar_format=LINE_FORMAT if self.total else None)
        print(line, file=self.file, flush=True)
        self.printed_n = self.n

    def close(self) -> None:
        if not self.closed and self.n != self.printed_n:
            self._print()
        self.closed = True

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def tensorboard_writer(folder, setting: str):
    """A TensorBoard SummaryWriter on `folder` (imported only now: an optional extra), or a
    UserError saying how to install it; `setting` names the config key that asked for it."""
    from pipeline.errors import UserError

    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch's module imports the tensorboard package itself
        raise UserError(f"{setting}=true needs the tensorboard package: pip install 'photoedit[tensorboard]' "
                        f"(or --set {setting}=false)") from None
    return SummaryWriter(str(folder))
