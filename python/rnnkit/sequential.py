"""Sequential: a chain of layers with a loss, trained one C++ call per layer
and direction; its training loop (fit, evaluate) and the recurrent state it
carries between calls."""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Any, Iterable, Literal, Optional, Sequence, Union, overload

import numpy as np

from ._checks import is_int, is_real, shape_str
from ._typing import ArrayLike, FloatArray, Layer, LossLayer, NDArray, State
from ._guard import InUse
from .bidirectional import Bidirectional
from .callbacks import Callback, History
from .distributed import GroupedStep, _writes_files, launched_size
from .distributed import init as init_mpi
from .losses import SequenceLoss
from .optimizers import clip_by_global_norm
from .progress import Progress
from .rnn import RNN

if TYPE_CHECKING:
    from .optimizers import Optimizer
    from .variables import Variables

_RECURRENT = (RNN, Bidirectional)
_METRICS = ("accuracy",)


def _describe(i, layer):
    return f"layers[{i}] ({type(layer).__name__})"


def _reads_ids(layer):
    """Does the layer read integer token ids (an Embedding)?"""
    return type(layer).__name__ == "Embedding"


def _output_spec(layer, rank):
    """(rank, depth) of what `layer` writes for an input of `rank`; None where unknown."""
    if isinstance(layer, _RECURRENT):
        cells = layer.cells if isinstance(layer, Bidirectional) else (layer.cell,)
        return (3 if getattr(layer, "return_sequences", True) else 2), sum(c.output_size for c in cells)
    if _reads_ids(layer):
        return (None if rank is None else rank + 1), int(layer.variables["embedding"].shape[1])
    units = getattr(layer, "units", None)  # Dense
    return rank, units


def _input_depth(layer):
    """The depth the layer is built for (None: not built, or any depth)."""
    if isinstance(layer, RNN):
        return layer.cell.input_depth
    if isinstance(layer, Bidirectional):
        return layer.cells[0].input_depth
    return getattr(layer, "input_depth", None)


def _link_error(layers, i, rank, depth):
    """Why layers[i] cannot read what layers[i - 1] writes (`rank`, `depth`,
    None where unknown); None when it can."""
    layer, here, before = layers[i], _describe(i, layers[i]), _describe(i - 1, layers[i - 1])
    if _reads_ids(layer):
        return f"{here} reads integer token ids, so it must be the first layer; it follows {before}, which outputs floats"
    if isinstance(layer, _RECURRENT) and rank is not None and rank != 3:
        recurrent = isinstance(layers[i - 1], _RECURRENT)
        what = "one vector per row [B, H] (return_sequences=False)" if recurrent and rank == 2 else f"rank {rank}"
        return f"{here} reads sequences [B, T, D], but {before} outputs {what}"
    want = _input_depth(layer)
    if want is not None and depth is not None and want != depth:
        return f"{here} reads depth {want} (its input depth), but {before} outputs depth {depth}"
    return None


def _loss_error(loss, layers, rank):
    if isinstance(loss, SequenceLoss) and rank is not None and rank != 3:
        last = _describe(len(layers) - 1, layers[-1])
        return (f"the loss (SequenceLoss) reads logits [B, T, C], but {last} outputs rank {rank}: keep the time "
                f"axis (return_sequences=True) or use a per-row loss (SoftmaxCrossEntropy, MeanSquaredError)")
    return None


def _batch_of(state):
    """Rows of a (nested) state."""
    while isinstance(state, (tuple, list)):
        state = state[0]
    return np.shape(state)[0]


def _rows(array, index):
    return None if array is None else array[index]


def _accuracy_counts(outputs, targets, weights):
    """(Σ w·[argmax(outputs, -1) == targets], Σ w); float targets (one-hot or
    distributions) compare their own argmax."""
    predicted = np.argmax(outputs, axis=-1)
    labels = np.asarray(targets)
    if labels.dtype.kind == "f":
        if labels.shape != np.shape(outputs):
            raise ValueError(f"accuracy needs integer targets or targets shaped like the outputs "
                             f"{shape_str(np.shape(outputs))}, got float targets {shape_str(labels.shape)}")
        labels = np.argmax(labels, axis=-1)
    if labels.shape != predicted.shape:
        raise ValueError(f"accuracy compares argmax(outputs, -1) {shape_str(predicted.shape)} with the targets, "
                         f"which have shape {shape_str(labels.shape)}")
    correct = predicted == labels
    if weights is None:
        return float(correct.sum()), float(correct.size)
    w = np.broadcast_to(np.asarray(weights, np.float64), correct.shape)
    return float((w * correct).sum()), float(w.sum())


def _check_optimizer(optimizer):
    if not hasattr(optimizer, "apply_gradients"):
        raise TypeError(f"optimizer must be an rnnkit optimizer (AdamOptimizer, GradientDescentOptimizer), "
                        f"got {type(optimizer).__name__}")


def _check_metrics(metrics):
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    for m in metrics:
        if m not in _METRICS:
            raise ValueError(f"metrics must hold names from {list(_METRICS)}, got {m!r}")
    return metrics


def _positive_int(value, name):
    if not is_int(value) or value <= 0:
        raise ValueError(f"{name} must be an int > 0, got {value!r}")
    return int(value)


class _Totals:
    """Per-epoch sums: the loss weighted by batch size, and accuracy's weighted counts."""

    def __init__(self, metrics):
        self.metrics = metrics
        self.loss = self.rows = self.correct = self.weight = 0.0

    def counts(self, outputs, targets, weights):
        """accuracy's (Σ w·correct, Σ w) of one batch when it is measured, else None."""
        return _accuracy_counts(outputs, targets, weights) if "accuracy" in self.metrics else None

    def add(self, loss, rows, counts):
        self.loss += float(loss) * rows
        self.rows += rows
        if counts is not None:
            self.correct += counts[0]
            self.weight += counts[1]

    def logs(self, prefix=""):
        logs = {prefix + "loss": self.loss / self.rows if self.rows else float("nan")}
        if "accuracy" in self.metrics:
            logs[prefix + "accuracy"] = self.correct / self.weight if self.weight else float("nan")
        return logs


class Sequential:
    """`Sequential([RNN(cell), Dense(C)], loss=SequenceLoss())`.

    Layers: `Embedding` (first), `RNN` and `Bidirectional` (either
    `return_sequences`), `Dense`, chained in any order whose shapes fit; a
    chain that does not fit is a ValueError naming both layers, at
    construction where the depths are known, else at the first call. A
    `Bidirectional` layer's outputs (out_fw, out_bw) enter the next layer
    concatenated on the last axis, [..., H_fw + H_bw] (its gradient is split
    back), so `Sequential([Bidirectional(fw, bw), Dense(C)])` works. The loss
    (`SequenceLoss`, `SoftmaxCrossEntropy`, `MeanSquaredError`) reads the last
    layer's output with targets [B, T], [B] or [B, C].

    State: after every call `final_state` holds each recurrent layer's final
    state (a list, one entry per recurrent layer; a Bidirectional layer's is
    (state_fw, state_bw)). With `stateful=True` it is fed into the next call
    as the initial state (truncated BPTT: no gradient flows into it), so row b
    of one batch continues row b of the batch before; `reset_states()` starts
    again from zeros. `initial_state=` (a list like `final_state`) overrides
    it for one call.
    """

    def __init__(self, layers: Iterable[Layer], loss: Optional[LossLayer] = None, stateful: bool = False) -> None:
        self.layers: list[Any] = list(layers)
        if not self.layers:
            raise ValueError("layers must hold at least one layer, got an empty list")
        for i, layer in enumerate(self.layers):
            if not (hasattr(layer, "forward") and hasattr(layer, "backward")):
                raise TypeError(f"layers[{i}] must have forward and backward, got {type(layer).__name__}")
        self.loss = loss
        self.stateful = bool(stateful)
        self.final_state: Optional[list[State]] = None
        self._in_use = InUse(type(self).__name__)
        self.stop_training = False  # set by a callback to end fit after the current step
        self.history: Optional[History] = None
        self._concat_widths: dict[int, int] = {}  # layer index -> out_fw's width, for each Bidirectional pair concatenated in forward
        self._check_chain()

    # ---- the chain -----------------------------------------------------------------------
    def _check_chain(self):
        rank, depth = None, None
        for i, layer in enumerate(self.layers):
            if i > 0:
                error = _link_error(self.layers, i, rank, depth)
                if error:
                    raise ValueError(error)
            rank, depth = _output_spec(layer, rank)
        error = _loss_error(self.loss, self.layers, rank)
        if error:
            raise ValueError(error)

    @property
    def _recurrent(self):
        return [layer for layer in self.layers if isinstance(layer, _RECURRENT)]

    def _initial_states(self, x, initial_state):
        count = len(self._recurrent)
        if initial_state is None:
            if self.stateful and self.final_state is not None:
                carried, batch = self.final_state, np.shape(x)[0]
                rows = _batch_of(carried[0])
                if rows != batch:
                    raise ValueError(f"this stateful Sequential carries state for batches of {rows} rows, got x with "
                                     f"{batch} rows: call reset_states() before changing the batch size")
                return carried
            return [None] * count
        if not isinstance(initial_state, list):
            raise TypeError(f"initial_state must be a list with one state per recurrent layer ({count}, like "
                            f"final_state), got {type(initial_state).__name__}")
        if len(initial_state) != count:
            raise ValueError(f"initial_state must hold one state per recurrent layer ({count}, like final_state), "
                             f"got {len(initial_state)}")
        return initial_state

    def reset_states(self) -> None:
        """Drops the carried state: the next call starts from zeros."""
        self.final_state = None

    def _run(self, x, sequence_length, initial_state, training, record):
        """Every layer in order; stores final_state. `record` keeps what backward needs."""
        states = iter(self._initial_states(x, initial_state))
        finals = []
        self._concat_widths = {}
        for i, layer in enumerate(self.layers):
            if i > 0:
                error = _link_error(self.layers, i, np.ndim(x), np.shape(x)[-1] if np.ndim(x) else None)
                if error:
                    raise ValueError(error)
            if isinstance(layer, _RECURRENT):
                x, final = _recurrent_forward(layer, x, sequence_length, next(states), training, record)
                if isinstance(x, tuple):  # Bidirectional: (out_fw, out_bw)
                    self._concat_widths[i] = x[0].shape[-1]
                    x = np.concatenate(x, axis=-1)
                finals.append(final)
            else:
                x = layer.forward(x) if record or not callable(layer) else layer(x)
        error = _loss_error(self.loss, self.layers, np.ndim(x))
        if error:
            raise ValueError(error)
        self.final_state = finals
        return x

    # ---- one call ------------------------------------------------------------------------
    def predict(self, x: ArrayLike, sequence_length: Optional[ArrayLike] = None,
                initial_state: Optional[list[State]] = None) -> FloatArray:
        """Inference (no tapes, no dropout): the last layer's output for x
        ([B, T, D], or token ids [B, T]). Stateful models carry their state on."""
        return self._run(x, sequence_length, initial_state, training=False, record=False)

    def forward(self, x: ArrayLike, sequence_length: Optional[ArrayLike] = None, training: bool = True,
                initial_state: Optional[list[State]] = None) -> FloatArray:
        """Training forward: records what backward needs in every layer."""
        return self._run(x, sequence_length, initial_state, training=training, record=True)

    def backward(self, d_output: ArrayLike, input_grad: bool = True) -> Optional[FloatArray]:
        """Backpropagates d_output through every layer; returns d_inputs
        (None with `input_grad=False`, which spares a first recurrent layer
        its input-gradient product; train_step has no use for it)."""
        grad: Any = d_output  # the gradient of a layer's output: an array, or a Bidirectional pair's two
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            width = self._concat_widths.get(i)
            if width is not None:  # the gradient of a concatenated Bidirectional pair
                grad = (grad[..., :width], grad[..., width:])
            if isinstance(layer, RNN):
                grad = layer.backward(grad, input_grad=input_grad or i > 0)[0]
            elif isinstance(layer, Bidirectional):
                grad = layer.backward(grad, input_grad=input_grad or i > 0)
            else:
                grad = layer.backward(grad)
        return grad

    def grads_and_vars(self) -> list[tuple[FloatArray, FloatArray]]:
        """[(gradient, variable)] of every layer, in order."""
        return [pair for layer in self.layers for pair in layer.grads_and_vars()]

    @property
    def variables(self) -> dict[int, Variables]:
        """{layer index: that layer's variables}."""
        return {i: layer.variables for i, layer in enumerate(self.layers)}

    def get_weights(self) -> list[FloatArray]:
        """Copies of every variable, layer by layer (Keras's get_weights)."""
        return [np.array(v) for layer in self.layers for v in layer.variables.values()]

    def set_weights(self, weights: Iterable[ArrayLike]) -> None:
        """Writes `weights` (as get_weights returns them) into the variables."""
        live = [v for layer in self.layers for v in layer.variables.values()]
        weights = list(weights)
        if len(weights) != len(live):
            raise ValueError(f"weights must hold {len(live)} arrays (one per variable), got {len(weights)}")
        for i, (target, value) in enumerate(zip(live, weights)):
            if np.shape(value) != target.shape:
                raise ValueError(f"weights[{i}] must have shape {shape_str(target.shape)}, got {shape_str(np.shape(value))}")
        for target, value in zip(live, weights):
            np.copyto(target, value, casting="same_kind")

    def _loss_forward(self, outputs, targets, weights):
        if self.loss is None:
            raise ValueError("this needs a loss: Sequential(layers, loss=SequenceLoss())")
        return self.loss.forward(outputs, targets) if weights is None else self.loss.forward(outputs, targets, weights)

    def _train_batch(self, x, targets, weights, optimizer, sequence_length, initial_state, clip_norm):
        """One update; returns (loss before it, the outputs it was computed on).
        One thread at a time: the layers' tapes and the carried state belong
        to one step until it ends."""
        with self._in_use:
            return self._update(x, targets, weights, optimizer, sequence_length, initial_state, clip_norm)

    def _update(self, x, targets, weights, optimizer, sequence_length, initial_state, clip_norm):
        _check_optimizer(optimizer)
        loss, outputs, pairs = self._gradients(x, targets, weights, sequence_length, initial_state=initial_state)
        if clip_norm is not None:
            clipped, _ = clip_by_global_norm([g for g, _ in pairs], clip_norm)
            pairs = list(zip(clipped, [v for _, v in pairs]))
        optimizer.apply_gradients(pairs)
        return (float(loss) if getattr(loss, "ndim", 0) == 0 else loss), outputs

    def _gradients(self, x, targets, weights, sequence_length, d_loss=None, initial_state=None):
        """(loss, outputs, [(gradient, variable)]) of one forward and backward;
        `d_loss` scales the loss's gradient (1 when None)."""
        if self.loss is None:
            raise ValueError("train_step needs a loss: Sequential(layers, loss=SequenceLoss())")
        outputs = self.forward(x, sequence_length=sequence_length, training=True, initial_state=initial_state)
        loss = self._loss_forward(outputs, targets, weights)
        self.backward(self.loss.backward(d_loss), input_grad=False)
        return loss, outputs, self.grads_and_vars()

    def train_step(self, x: ArrayLike, targets: ArrayLike, weights: Optional[ArrayLike] = None,
                   optimizer: Optional[Optimizer] = None, sequence_length: Optional[ArrayLike] = None,
                   initial_state: Optional[list[State]] = None, clip_norm: Optional[float] = None) -> float:
        """One update: forward, the loss, backward through every layer,
        `clip_by_global_norm` when `clip_norm` is given, and the optimizer's
        step. Returns the loss before the update (a float)."""
        return self._train_batch(x, targets, weights, optimizer, sequence_length, initial_state, clip_norm)[0]

    def generate(self, prime: ArrayLike, length: int, **options: Any) -> Any:
        """Token ids [num_samples, length] generated after `prime`, in one C++
        call; options and the exact draw: rnnkit.generate.generate."""
        from .generate import generate
        return generate(self, prime, length, **options)

    # ---- the training loop ---------------------------------------------------------------
    def _batches(self, rows, batch_size, order):
        return [order[start:start + batch_size] for start in range(0, rows, batch_size)]

    def _check_stateful_rows(self, rows, batch_size, what):
        if self.stateful and rows % batch_size:
            raise ValueError(f"a stateful model needs batches of one size: {what} has {rows} rows, not a multiple "
                             f"of batch_size {batch_size}")

    @overload
    def evaluate(self, x: ArrayLike, y: ArrayLike, weights: Optional[ArrayLike] = None, batch_size: int = 32,
                 sequence_length: Optional[ArrayLike] = None) -> float: ...
    @overload
    def evaluate(self, x: ArrayLike, y: ArrayLike, weights: Optional[ArrayLike] = None, batch_size: int = 32,
                 sequence_length: Optional[ArrayLike] = None, *,
                 metrics: Union[str, Sequence[str]]) -> dict[str, float]: ...

    def evaluate(self, x: ArrayLike, y: ArrayLike, weights: Optional[ArrayLike] = None, batch_size: int = 32,
                 sequence_length: Optional[ArrayLike] = None,
                 metrics: Union[str, Sequence[str]] = ()) -> Union[float, dict[str, float]]:
        """The loss on (x, y) without training: the mean of the batch losses
        weighted by batch size. Returns a float, or {"loss": ..., "accuracy":
        ...} when `metrics` are given. A stateful model runs the batches in
        order from zeros, and keeps the state it had before."""
        metrics = _check_metrics(metrics)
        batch_size = _positive_int(batch_size, "batch_size")
        x, y, weights, sequence_length = _as_rows(x, y, weights, sequence_length)
        rows = len(x)
        self._check_stateful_rows(rows, batch_size, "x")
        carried = self.final_state
        self.final_state = None
        totals = _Totals(metrics)
        try:
            for index in self._batches(rows, batch_size, np.arange(rows)):
                targets, w = y[index], _rows(weights, index)
                outputs = self.predict(x[index], _rows(sequence_length, index))
                loss = self._loss_forward(outputs, targets, w)
                totals.add(_scalar_loss(loss), len(index), totals.counts(outputs, targets, w))
        finally:
            self.final_state = carried
        logs = totals.logs()
        return logs if metrics else logs["loss"]

    def fit(self, x: ArrayLike, y: ArrayLike, weights: Optional[ArrayLike] = None, *, optimizer: Optimizer,
            epochs: int = 1, batch_size: int = 32, shuffle: bool = True, seed: Optional[int] = None,
            validation_data: Optional[Sequence[Any]] = None, validation_split: float = 0.0,
            clip_norm: Optional[float] = None, callbacks: Iterable[Callback] = (),
            verbose: Union[int, Literal["auto"]] = "auto", sequence_length: Optional[ArrayLike] = None,
            metrics: Union[str, Sequence[str]] = (), distributed: Optional[bool] = None,
            groups: Optional[int] = None) -> History:
        """Trains for `epochs` passes over (x, y), Keras's `fit`.

        Args:
          x: inputs, rows on the first axis ([N, T, D] floats or [N, T] token ids).
          y: targets: [N, T] (sequence losses), [N] (sparse classification) or
            [N, C] (distributions, regression).
          weights: optional per-target weights, shaped like the loss wants them.
          optimizer: an rnnkit optimizer; its state carries over between calls.
          batch_size: rows per update; the last, partial batch is used too.
          shuffle: a new order of the rows every epoch (seeded by `seed`).
            A stateful model takes its batches in order and ignores it: row b
            of batch k + 1 continues row b of batch k.
          validation_data: (x, y), (x, y, weights) or (x, y, weights,
            sequence_length), evaluated after every epoch.
          validation_split: the last fraction of the rows (taken before any
            shuffling) held out for validation instead.
          clip_norm: clip_by_global_norm of the gradients before each update.
          callbacks: `Callback`s (ModelCheckpoint, EarlyStopping, ...).
          verbose: 0 silent; 1 a progress bar per epoch (one line per epoch
            when output is not a terminal); 2 one line per epoch; "auto" is 1.
          sequence_length: optional [N] lengths, batched with the rows.
          metrics: ("accuracy",) adds the weighted share of argmax(outputs, -1)
            equal to the targets, for sparse classification and sequence models.
          distributed: data-parallel training over MPI (rnnkit.distributed):
            every rank passes the same (x, y) and computes its share of each
            batch's gradient groups; the weights have the same bits on any
            number of ranks. None: on when launched by mpiexec with more
            than one rank. Rank 0 alone prints and saves checkpoints.
          groups: gradient groups per batch (8 when None): each batch is cut
            into this many groups of consecutive rows, each its own forward
            and backward, added in a fixed order. Alone (no MPI) it runs
            those same steps in one process, with the bits of a distributed run.
        Returns:
          a History: `.history` {"loss": [...], "val_loss": [...],
          "accuracy": [...], "val_accuracy": [...]}, one value per epoch (the
          loss is the mean of the epoch's batch losses weighted by batch size,
          each taken before its update); `.epoch`.
        """
        _check_optimizer(optimizer)
        metrics = _check_metrics(metrics)
        epochs = _positive_int(epochs, "epochs")
        batch_size = _positive_int(batch_size, "batch_size")
        if verbose not in (0, 1, 2, "auto"):
            raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
        x, y, weights, sequence_length = _as_rows(x, y, weights, sequence_length)
        rows = len(x)
        if not (is_real(validation_split) and 0 <= validation_split < 1):
            raise ValueError(f"validation_split must be a number in [0, 1), got {validation_split!r}")
        if validation_split and validation_data is not None:
            raise ValueError("give validation_data or validation_split, not both")
        if validation_split:
            split = int(math.floor(rows * (1.0 - validation_split)))
            if split == 0 or split == rows:
                raise ValueError(f"validation_split {validation_split} of {rows} rows leaves an empty "
                                 f"{'training' if split == 0 else 'validation'} set")
            validation_data = tuple(a[split:] if a is not None else None for a in (x, y, weights, sequence_length))
            x, y = x[:split], y[:split]
            weights = None if weights is None else weights[:split]
            sequence_length = None if sequence_length is None else sequence_length[:split]
            rows = split
        if validation_data is not None:
            validation_data = _validation_tuple(validation_data)
        self._check_stateful_rows(rows, batch_size, "x")
        grouped = _grouped_step(self, distributed, groups, batch_size)

        history = History()
        callbacks = [history] + list(callbacks)
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must hold rnnkit.Callback objects, got {type(cb).__name__}")
        steps = -(-rows // batch_size)
        mode = 1 if verbose == "auto" else verbose
        params = {"epochs": epochs, "steps": steps, "verbose": mode, "optimizer": optimizer}
        for cb in callbacks:
            cb.set_model(self)
            cb.set_params(params)
        if grouped is not None:
            seed = grouped.shared_seed(seed)
            grouped.start(optimizer, x, sequence_length)
        rng = np.random.default_rng(seed)
        self.stop_training = False
        self.history = history
        stream = sys.stdout
        for cb in callbacks:
            cb.on_train_begin({})
        for epoch in range(epochs):
            if self.stateful:
                self.reset_states()
                if grouped is not None:
                    grouped.reset_states()
            for cb in callbacks:
                cb.on_epoch_begin(epoch, {})
            progress = Progress(mode if _writes_files() else 0, epoch, epochs, steps, stream)
            order = rng.permutation(rows) if shuffle and not self.stateful else np.arange(rows)
            totals = _Totals(metrics)
            for step, index in enumerate(self._batches(rows, batch_size, order)):
                for cb in callbacks:
                    cb.on_step_begin(step, {})
                targets, w = y[index], _rows(weights, index)
                lengths = _rows(sequence_length, index)
                if grouped is None:
                    loss, outputs = self._train_batch(x[index], targets, w, optimizer, lengths, None, clip_norm)
                    loss, counts = _scalar_loss(loss), totals.counts(outputs, targets, w)
                else:
                    with self._in_use:
                        loss, counts, _ = grouped(x[index], targets, w, optimizer, lengths, clip_norm,
                                                  accuracy="accuracy" in metrics)
                totals.add(loss, len(index), counts)
                progress.update(step + 1, totals.logs())
                step_logs = {"loss": loss, "batch_size": len(index)}
                for cb in callbacks:
                    cb.on_step_end(step, step_logs)
                if self.stop_training:
                    break
            logs = totals.logs()
            if validation_data is not None:
                val = self.evaluate(validation_data[0], validation_data[1], weights=validation_data[2],
                                    batch_size=batch_size, sequence_length=validation_data[3], metrics=metrics)
                val = val if isinstance(val, dict) else {"loss": val}
                logs.update({"val_" + k: v for k, v in val.items()})
            progress.end(logs)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end({})
        return history


def _grouped_step(model, distributed, groups, batch_size):
    """fit's GroupedStep: over MPI when `distributed` (None: when launched by
    mpiexec with more than one rank), in one process when only `groups` is
    given; None for plain training."""
    if distributed is None:
        distributed = launched_size() > 1
    if not distributed and groups is None:
        return None
    return GroupedStep(model, groups, batch_size, init_mpi() if distributed else None)


def _recurrent_forward(layer, x, lengths, state, training, record):
    """(outputs, final state) of an RNN or Bidirectional layer."""
    if isinstance(layer, Bidirectional):
        fw, bw = (None, None) if state is None else state
        if record or state is not None:
            return layer.forward(x, sequence_length=lengths, initial_state_fw=fw, initial_state_bw=bw,
                                 training=training)
        return layer(x, sequence_length=lengths)
    if record:
        return layer.forward(x, sequence_length=lengths, initial_state=state, training=training)
    return layer(x, sequence_length=lengths, initial_state=state)


def _scalar_loss(loss):
    if np.ndim(loss) != 0:
        raise ValueError(f"fit and evaluate need a scalar loss, got one of shape {shape_str(np.shape(loss))} "
                         f"(SequenceLoss averages to a scalar with its default flags)")
    return float(loss)


def _as_rows(x: ArrayLike, y: ArrayLike, weights: Optional[ArrayLike] = None,
             sequence_length: Optional[ArrayLike] = None, prefix: str = ""
             ) -> tuple[NDArray[Any], NDArray[Any], Optional[NDArray[Any]], Optional[NDArray[Any]]]:
    """(x, y, weights, sequence_length) as arrays that share their number of rows (at least one)."""
    rows_x, rows_y = np.asarray(x), np.asarray(y)
    rows_w, lengths = (None if a is None else np.asarray(a) for a in (weights, sequence_length))
    rows = rows_x.shape[0] if rows_x.ndim else 0
    if not rows:
        raise ValueError(f"{prefix}x must hold at least one row, got shape {shape_str(rows_x.shape)}")
    for name, a in zip(("y", "weights", "sequence_length"), (rows_y, rows_w, lengths)):
        if a is not None and (a.ndim == 0 or a.shape[0] != rows):
            raise ValueError(f"{prefix}{name} must have {rows} rows ({prefix}x's), got shape {shape_str(a.shape)}")
    return rows_x, rows_y, rows_w, lengths


def _validation_tuple(data):
    if not isinstance(data, (tuple, list)) or not 2 <= len(data) <= 4:
        raise ValueError("validation_data must be (x, y), (x, y, weights) or (x, y, weights, sequence_length)")
    return _as_rows(*data, prefix="validation ")
