"""Callbacks for Sequential.fit, with Keras's hooks: History (the per-epoch
logs fit returns), ModelCheckpoint, EarlyStopping and LambdaCallback."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import numpy as np

from ._checks import is_int, is_real
from .distributed import _writes_files

if TYPE_CHECKING:
    from .sequential import Sequential

Logs = Optional[dict[str, Any]]

_PLOT_EXTRA = "History.plot needs matplotlib, which is not installed: pip install rnnkit[plot]"


class Callback:
    """Base class. fit calls `set_model(model)` and `set_params({"epochs",
    "steps", "verbose", "optimizer"})`, then the hooks: on_train_begin,
    on_epoch_begin(epoch), on_step_begin(step), on_step_end(step), on_epoch_end(epoch),
    on_train_end. `epoch` and `step` count from 0 (`step` within the epoch,
    Keras's batch index); a step's logs are {"loss": its loss, "batch_size"},
    an epoch's are the epoch's means ("loss", "accuracy", "val_loss", ...).
    Setting `self.model.stop_training = True` ends fit after the current step."""

    model: Any = None  # the Sequential that fit trains
    params: Optional[dict[str, Any]] = None

    def set_model(self, model: Sequential) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: Logs = None) -> None:
        pass

    def on_train_end(self, logs: Logs = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        pass

    def on_step_begin(self, step: int, logs: Logs = None) -> None:
        pass

    def on_step_end(self, step: int, logs: Logs = None) -> None:
        pass


class History(Callback):
    """What fit returns: `history` {"loss": [...], "val_loss": [...], ...},
    one value per epoch, and `epoch` [0, 1, ...]."""

    def __init__(self) -> None:
        self.history: dict[str, list[Any]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: Logs = None) -> None:
        self.history, self.epoch = {}, []

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def plot(self, path: Union[None, str, os.PathLike[str]] = None) -> Any:
        """Draws the loss curves (and accuracy's, when recorded) against the
        epoch with matplotlib (the `plot` extra). Writes the figure to `path`
        when given (PNG, PDF, ... by its suffix) and closes it; returns the
        figure otherwise (`plt.show()` displays it)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise ImportError(_PLOT_EXTRA) from e
        panels = [name for name in ("loss", "accuracy") if name in self.history]
        if not panels:
            raise ValueError("History.plot: nothing to draw yet (no epoch has ended)")
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
        epochs = [e + 1 for e in self.epoch]
        for ax, name in zip(axes[0], panels):
            for key, label in ((name, "training"), ("val_" + name, "validation")):
                if key in self.history:
                    ax.plot(epochs, self.history[key], marker="o", label=label)
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
            ax.legend()
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
            plt.close(fig)
        return fig


def _mode(monitor):
    """Keras's 'auto' mode: accuracies grow, everything else shrinks."""
    return "max" if "acc" in monitor else "min"


def _monitored(callback, logs, monitor):
    if monitor not in (logs or {}):
        have = ", ".join(logs or {}) or "nothing"
        raise ValueError(f"{type(callback).__name__} monitors {monitor!r}, which fit does not log (it logs: {have}); "
                         f"pass validation_data or validation_split for 'val_*', or monitor 'loss'")
    return float(logs[monitor])


class ModelCheckpoint(Callback):
    """Saves the model and its optimizer's slots (`rnnkit.save(path, model,
    optimizer=...)`) at every epoch's end, or every `every_steps` steps.

    `path` may hold Keras's fields: "ckpt-{epoch:02d}-{val_loss:.3f}.npz"
    ({epoch} counts from 1; {step} is the number of updates so far). With
    `save_best_only`, an epoch's end saves only when `monitor` improves
    (grows for accuracies, shrinks otherwise). In distributed training,
    rank 0 alone writes."""

    def __init__(self, path: Union[str, os.PathLike[str]], every_steps: Optional[int] = None,
                 save_best_only: bool = False, monitor: str = "val_loss") -> None:
        if every_steps is not None and (not is_int(every_steps) or every_steps <= 0):
            raise ValueError(f"every_steps must be None or an int > 0, got {every_steps!r}")
        if every_steps is not None and save_best_only:
            raise ValueError("save_best_only compares epochs' results and every_steps saves unconditionally: "
                             "choose one")
        self.path, self.every_steps = path, every_steps
        self.save_best_only, self.monitor = bool(save_best_only), monitor
        self.best: Optional[float] = None
        self.steps_done = 0
        self.epoch = 0
        self.saved: list[str] = []  # every path written, in order

    def on_train_begin(self, logs: Logs = None) -> None:
        self.best = None

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self.epoch = epoch

    def _save(self, **fields: Any) -> None:
        from .checkpoint import save  # checkpoint imports Sequential, which imports this module
        if not _writes_files():
            return
        try:
            path = str(self.path).format(epoch=self.epoch + 1, step=self.steps_done, **fields)
        except KeyError as e:
            raise ValueError(f"ModelCheckpoint path {self.path!r} names {e}, which is not among the fields here "
                             f"(epoch, step, {', '.join(fields)})") from None
        self.saved.append(save(path, self.model, optimizer=(self.params or {}).get("optimizer")))

    def on_step_end(self, step: int, logs: Logs = None) -> None:
        self.steps_done += 1
        if self.every_steps and self.steps_done % self.every_steps == 0:
            self._save(**(logs or {}))

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if self.every_steps:
            return
        if self.save_best_only:
            current = _monitored(self, logs, self.monitor)
            better = np.greater if _mode(self.monitor) == "max" else np.less
            if self.best is not None and not better(current, self.best):
                return
            self.best = current
        self._save(**(logs or {}))


class EarlyStopping(Callback):
    """Stops fit once `monitor` has not improved by more than `min_delta`
    for `patience` epochs after its best (Keras's rule); with
    `restore_best`, the weights of the best epoch are put back when it stops."""

    def __init__(self, monitor: str = "val_loss", patience: int = 0, restore_best: bool = True,
                 min_delta: float = 0) -> None:
        if not is_int(patience) or patience < 0:
            raise ValueError(f"patience must be an int >= 0, got {patience!r}")
        if not is_real(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a number >= 0, got {min_delta!r}")
        self.monitor: str = monitor
        self.patience: int = int(patience)
        self.restore_best: bool = bool(restore_best)
        self.min_delta: float = float(min_delta)
        self.stopped_epoch: Optional[int] = None
        self.best_epoch: Optional[int] = None
        self.wait: int = 0
        self.best: Optional[float] = None
        self.best_weights: Optional[list[Any]] = None

    def on_train_begin(self, logs: Logs = None) -> None:
        self.wait, self.best, self.best_weights = 0, None, None
        self.stopped_epoch = self.best_epoch = None

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        current = _monitored(self, logs, self.monitor)
        sign = 1.0 if _mode(self.monitor) == "min" else -1.0
        if self.best is None or sign * (self.best - current) > self.min_delta:
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best and self.best_weights is not None:
                self.model.set_weights(self.best_weights)


class LambdaCallback(Callback):
    """A callback from plain functions, e.g.
    `LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))`.
    Each hook takes the arguments of the Callback method of its name."""

    _HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_step_begin", "on_step_end")

    def __init__(self, **hooks: Callable[..., Any]) -> None:
        for name, function in hooks.items():
            if name not in self._HOOKS:
                raise TypeError(f"LambdaCallback takes the hooks {', '.join(self._HOOKS)}, got {name!r}")
            if not callable(function):
                raise TypeError(f"{name} must be callable, got {type(function).__name__}")
            setattr(self, name, function)
