"""fit's progress output, one epoch at a time: a bar redrawn in place on a
terminal (like Keras's and tqdm's), one line per epoch elsewhere."""

import time

_BAR_WIDTH = 30
_REDRAW_SECONDS = 0.05  # a bar redraws at most this often (the last step always)


def format_logs(logs):
    """' - loss: 0.4321 - val_loss: 0.5000' (Keras's number format)."""
    parts = []
    for key, value in logs.items():
        value = float(value)
        text = f"{value:.4f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.4e}"
        parts.append(f" - {key}: {text}")
    return "".join(parts)


def _duration(seconds):
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"


def _rate(seconds_per_step, unit=None):
    """'12.3 steps/s' or '1.20 s/step'; with unit=(name, per step): '81,920 chars/s'."""
    if seconds_per_step <= 0:
        return ""
    if unit is not None:
        name, per_step = unit
        return f"{per_step / seconds_per_step:,.0f} {name}/s"
    if seconds_per_step < 1:
        return f"{1 / seconds_per_step:.1f} steps/s"
    return f"{seconds_per_step:.2f} s/step"


class Progress:
    """One epoch's output. mode 0: nothing; 1: a bar (`update` redraws it
    with a carriage return) on a terminal, else as 2; 2: one line at `end`.
    `first_step`: steps of this epoch done before (a resumed run), left out
    of the speed and the ETA; `unit`: (name, count per step) to show the
    speed in, e.g. ("chars", 1600), instead of steps."""

    def __init__(self, mode, epoch, epochs, steps, stream, clock=time.perf_counter, first_step=0, unit=None):
        self.stream, self.steps, self.clock = stream, steps, clock
        self.first_step, self.unit = first_step, unit
        self.bar = mode == 1 and _isatty(stream)
        self.line = mode != 0
        self.title = f"Epoch {epoch + 1}/{epochs}"
        self.start = clock()
        self.drawn_at = None
        self.width = 0  # of the bar as last drawn, to blank what a shorter one leaves
        self.step = 0
        if self.bar:
            stream.write(self.title + "\n")
            stream.flush()

    def update(self, step, logs):
        """After `step` (1-based) of `steps`; `logs` are the running means."""
        self.step = step
        if not self.bar or step >= self.steps:  # `end` draws the last step, with the epoch's summary
            return
        now = self.clock()
        if self.drawn_at is not None and now - self.drawn_at < _REDRAW_SECONDS:
            return
        self.drawn_at = now
        per_step = (now - self.start) / max(step - self.first_step, 1)
        eta = f" - ETA: {_duration(per_step * (self.steps - step))}"
        rate = _rate(per_step, self.unit)
        self._draw(f"{self._counter(step)} {self._bar(step)}{eta}{format_logs(logs)}" + (f" - {rate}" if rate else ""))

    def end(self, logs):
        """The epoch's summary, with validation results when there are any."""
        if not self.line:
            return
        elapsed = self.clock() - self.start
        per_step = elapsed / max(self.step - self.first_step, 1)
        timing = f"{_duration(elapsed)} {per_step * 1e3:.0f}ms/step"
        if self.unit is not None and per_step > 0:
            timing += f" - {_rate(per_step, self.unit)}"
        if self.bar:
            self._draw(f"{self._counter(self.step)} {self._bar(self.step)} - {timing}{format_logs(logs)}")
            self.stream.write("\n")
        else:
            self.stream.write(f"{self.title} - {self._counter(self.step)} - {timing}{format_logs(logs)}\n")
        self.stream.flush()

    def _counter(self, step):
        digits = len(str(self.steps))
        return f"{step:>{digits}}/{self.steps}"

    def _bar(self, step):
        done = _BAR_WIDTH * step // self.steps
        if done >= _BAR_WIDTH:
            return "[" + "=" * _BAR_WIDTH + "]"
        return "[" + "=" * done + ">" + "." * (_BAR_WIDTH - done - 1) + "]"

    def _draw(self, text):
        pad = " " * max(self.width - len(text), 0)
        self.stream.write("\r" + text + pad)
        self.stream.flush()
        self.width = len(text)


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
