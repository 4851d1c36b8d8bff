"""Data-parallel training over MPI (mpi4py, the `mpi` extra): the job's ranks,
broadcast_variables, DistributedOptimizer, and the grouped training step
behind `Sequential.fit(distributed=True)`, whose weights have the same bits
on any number of ranks.

The grouped step. A global batch of B rows is cut into G gradient groups of
consecutive rows, group g holding rows [g·B // G, (g + 1)·B // G): the cut
depends on B and G only (G = min(groups, B)). Each group's gradient is one
forward and backward call of its own, its loss gradient scaled by the group's
share of the global batch's normaliser (Σ weights, or the count of non-zero
weights), so its bits do not depend on the rank that computes it. Rank r of
R computes groups [r·G // R, (r + 1)·G // R). The group gradients are added
along one fixed binary tree over the G groups (node [lo, hi) is node
[lo, mid) + node [mid, hi), mid = (lo + hi) // 2): each rank adds the whole
subtrees it holds, one Allgatherv carries these partial sums to every rank,
and every rank finishes the same tree. The sum is therefore the same on 1,
2, 3, ... ranks, and in one process without MPI (`fit(groups=G)`).
DropoutWrapper masks follow the same rule: every group of a step draws with
the step's call counter and its first row's index in the global batch, so a
row gets the same masks whichever rank or group computes it.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any, Iterable, Optional

import numpy as np

from . import _core
from ._checks import is_int
from ._typing import ArrayLike, NDArray
from .cells.dropout_stream import dropout_streams
from .losses import MeanSquaredError, SequenceLoss, SoftmaxCrossEntropy
from .optimizers import AdamOptimizer, Optimizer, clip_by_global_norm

__all__ = ["init", "rank", "size", "is_main", "broadcast_variables", "DistributedOptimizer"]

_EXTRA = "rnnkit.distributed needs mpi4py and an MPI library, which are not installed: pip install rnnkit[mpi]"
# Set by MPI launchers in every process they start: MPICH's and Intel MPI's Hydra, Open MPI.
_LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
DEFAULT_GROUPS = 8

_world = None  # COMM_WORLD once init() has run


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(_EXTRA) from e
    return MPI


def launched_size() -> int:
    """The number of processes the MPI launcher started (1 when not launched
    by one), read without starting MPI."""
    if _world is not None:
        return _world.Get_size()
    for name in _LAUNCHER_SIZE:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        return mpi.COMM_WORLD.Get_size()
    return 1


def init() -> Any:
    """Starts MPI, once (collective: every rank calls it), and returns
    COMM_WORLD. It sets this rank's OpenMP threads to its share of the cores
    (below) unless OMP_NUM_THREADS is set; call rnnkit.set_num_threads
    after init() to choose otherwise. In a job of more than one rank, an
    exception that reaches the top of any rank prints its traceback and
    aborts the whole job (MPI_Abort), so no rank waits forever for it."""
    global _world
    if _world is None:
        MPI = _mpi()
        world = MPI.COMM_WORLD
        if world.Get_size() > 1:
            _abort_on_uncaught_exception(world)
        threads = rank_threads(MPI, world)
        if "OMP_NUM_THREADS" not in os.environ:
            _core.set_num_threads(min(threads, _core.max_num_threads()))
        _world = world
    return _world


def rank() -> int:
    """This process's rank in COMM_WORLD (starts MPI: see init)."""
    return init().Get_rank()


def size() -> int:
    """The number of ranks in COMM_WORLD (starts MPI: see init)."""
    return init().Get_size()


def is_main() -> bool:
    """Is this rank 0, the one that prints and writes files?"""
    return rank() == 0


def _writes_files() -> bool:
    """False on the ranks other than 0 of a job that init() has started:
    progress, checkpoints and other files are written by rank 0 alone."""
    return _world is None or _world.Get_rank() == 0


def _abort_on_uncaught_exception(world):
    shown = sys.excepthook

    def abort(kind, value, traceback):
        shown(kind, value, traceback)
        sys.stdout.flush()
        sys.stderr.flush()
        world.Abort(1)

    sys.excepthook = abort


def rank_threads(MPI: Any, world: Any) -> int:
    """The cores this rank may use: its affinity set, divided among the ranks
    on this host whose affinity sets share a core with it (collective)."""
    if hasattr(os, "sched_getaffinity"):
        mine = frozenset(os.sched_getaffinity(0))
    else:
        mine = frozenset(range(os.cpu_count() or 1))
    host = world.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        sets = host.allgather(mine)
    finally:
        host.Free()
    sharing = sum(1 for other in sets if other & mine)
    return max(1, len(mine) // max(sharing, 1))


# ---- broadcast_variables -------------------------------------------------------------------
def _inner(optimizer):
    return optimizer.optimizer if isinstance(optimizer, DistributedOptimizer) else optimizer


def _is_optimizer(obj):
    return hasattr(obj, "apply_gradients")


def _variables_of(obj):
    """The live arrays of a cell, layer or Sequential, in creation order."""
    if hasattr(obj, "layers"):
        return [v for layer in obj.layers for v in _variables_of(layer)]
    variables = getattr(obj, "variables", None)
    if variables is None:
        raise TypeError(f"broadcast_variables takes cells, layers, Sequential models and optimizers, "
                        f"got {type(obj).__name__}")
    return list(variables.values())


def _optimizer_arrays(optimizer, variables):
    """An optimizer's arrays: Adam's slots (m, v) of `variables` (made where
    missing: zeros, as a first update would make them), or of every slot in
    creation order when no variables are given."""
    optimizer = _inner(optimizer)
    if not isinstance(optimizer, AdamOptimizer):
        return []
    if variables is None:
        return [a for _, m, v in optimizer._slots.values() for a in (m, v)]
    return [a for var in variables for a in optimizer._slots_for(var)[1:]]


def broadcast_variables(obj: Any, root: int = 0) -> None:
    """Copies rank `root`'s values into every rank's `obj`, in place
    (collective). `obj`: a cell, layer, Sequential or optimizer, or a list of
    them. A model's variables are copied, an optimizer's step count and
    Adam's slots: in a list with models, the slots of their variables; alone,
    its slots in the order they were created. The models' DropoutWrapper
    cells get the root's seeds and call counters, so every rank draws the
    same masks. Every rank must hold the same structure (shapes and dtypes),
    else every rank raises a ValueError."""
    world = init()
    root = _check_root(root, world)
    objects = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    models = [o for o in objects if not _is_optimizer(o)]
    optimizers = [o for o in objects if _is_optimizer(o)]
    variables = [v for m in models for v in _variables_of(m)]
    arrays = list(variables)
    for optimizer in optimizers:
        arrays += _optimizer_arrays(optimizer, variables if models else None)
    wrappers = dropout_streams(models)
    layout = [(a.shape, a.dtype.str) for a in arrays]
    roots, root_wrappers = world.bcast((layout, len(wrappers)), root=root)
    problem = _layout_difference(layout, roots) or (
        None if len(wrappers) == root_wrappers else
        f"holds {len(wrappers)} cells with dropout streams, the root holds {root_wrappers}")
    if world.allreduce(problem is not None, op=_mpi().LOR):
        raise ValueError(f"broadcast_variables: rank {world.Get_rank()}: "
                         + (problem or f"another rank's variables differ from rank {root}'s"))
    for a in arrays:
        world.Bcast(a, root=root)
    streams = world.bcast([(w.stream_seed, w.calls) for w in wrappers], root=root)
    for wrapper, (seed, calls) in zip(wrappers, streams):
        wrapper.stream_seed, wrapper.calls = seed, calls
    steps = world.bcast([getattr(_inner(o), "iterations", None) for o in optimizers], root=root)
    for optimizer, step in zip(optimizers, steps):
        if step is not None:
            _inner(optimizer).iterations = step


def _check_root(root, world):
    if not is_int(root) or not 0 <= root < world.Get_size():
        raise ValueError(f"root must be a rank in [0, {world.Get_size()}), got {root!r}")
    return int(root)


def _layout_difference(mine, roots):
    if len(mine) != len(roots):
        return f"holds {len(mine)} arrays, the root holds {len(roots)} (is every model built the same way?)"
    for i, (a, b) in enumerate(zip(mine, roots)):
        if a != b:
            return f"array {i} has shape {list(a[0])} and dtype {np.dtype(a[1])}, the root's {list(b[0])} and {np.dtype(b[1])}"
    return None


# ---- flat gradients --------------------------------------------------------------------------
def _flat_dtype(grads):
    dtypes = {np.asarray(g).dtype for g in grads}
    if len(dtypes) != 1:
        raise TypeError(f"distributed training needs every gradient in one float dtype, got "
                        f"{', '.join(sorted(d.name for d in dtypes))}")
    return dtypes.pop()


def _flatten(grads):
    """The gradients as one flat array."""
    if not grads:
        raise ValueError("No gradients provided for any variable")
    for i, g in enumerate(grads):
        if g is None:
            raise ValueError(f"gradient {i} is None: distributed training needs a gradient for every variable")
    return np.concatenate([np.asarray(g).reshape(-1) for g in grads])


def _unflatten(flat, variables):
    """Views of `flat` shaped like `variables`."""
    parts, start = [], 0
    for var in variables:
        parts.append(flat[start:start + var.size].reshape(var.shape))
        start += var.size
    return parts


class DistributedOptimizer(Optimizer):
    """An optimizer for data-parallel training in which every rank computes
    the gradient of its own rows (`model.train_step(x_rank, y_rank,
    optimizer=DistributedOptimizer(opt))`): `apply_gradients` puts every
    gradient in one flat buffer, gathers the ranks' buffers in one Allgather,
    adds them in rank order (so every rank gets the same bits) and, with
    `average=True`, divides by the number of ranks (each rank's loss being a
    mean over equal parts); then the wrapped optimizer updates. Every rank
    keeps the same weights, given the same start (broadcast_variables). The
    result depends on the number of ranks; for weights that do not, use
    `Sequential.fit(distributed=True)`. `clip_norm` in train_step clips each
    rank's own gradient, before the ranks' are combined."""

    def __init__(self, optimizer: Any, average: bool = True) -> None:
        if not _is_optimizer(optimizer) or isinstance(optimizer, DistributedOptimizer):
            raise TypeError(f"optimizer must be an rnnkit optimizer (AdamOptimizer, GradientDescentOptimizer), "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.average = bool(average)

    @property
    def learning_rate(self) -> float:
        return self.optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.optimizer.learning_rate = value

    @property
    def iterations(self) -> Optional[int]:
        """The wrapped optimizer's step count (Adam's), None for one without."""
        return getattr(self.optimizer, "iterations", None)

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Optional[ArrayLike], NDArray[Any]]]) -> None:
        """Combines the ranks' gradients (one Allgather), then updates every variable."""
        pairs = list(grads_and_vars)
        grads, variables = [g for g, _ in pairs], [v for _, v in pairs]
        flat = _flatten(grads)
        _flat_dtype(grads)
        world = init()
        ranks = world.Get_size()
        if ranks > 1:
            gathered = np.empty((ranks, flat.size), flat.dtype)
            world.Allgather(flat, gathered)
            flat = gathered[0].copy()
            for row in gathered[1:]:
                flat += row
            if self.average:
                flat /= flat.dtype.type(ranks)
        self.optimizer.apply_gradients(list(zip(_unflatten(flat, variables), variables)))

    def __repr__(self) -> str:
        return f"DistributedOptimizer({self.optimizer!r}, average={self.average})"


# ---- the grouped training step ---------------------------------------------------------------
def _scalar_reduction(loss):
    """How `loss` (a loss layer) normalises its sum: "weights" (Σ w) or
    "nonzero" (count of non-zero weights); an error for losses it does not know."""
    if loss is None:
        raise ValueError("training needs a loss: Sequential(layers, loss=SequenceLoss())")
    if isinstance(loss, SequenceLoss):
        if loss.average_across_timesteps and loss.average_across_batch:
            return "weights"
        if loss.sum_over_timesteps and loss.sum_over_batch and not (
                loss.average_across_timesteps or loss.average_across_batch):
            return "nonzero"
        raise ValueError(f"distributed training needs a scalar loss, got {loss!r}: average (or sum) over both "
                         f"timesteps and batch")
    if isinstance(loss, (SoftmaxCrossEntropy, MeanSquaredError)):
        return "nonzero"
    raise TypeError(f"distributed training takes the loss layers SequenceLoss, SoftmaxCrossEntropy and "
                    f"MeanSquaredError, got {type(loss).__name__}")


def _loss_weights(loss, targets, weights):
    """The weights that the loss normalises by, broadcast to what it weighs."""
    targets = np.asarray(targets)
    lead = targets.shape[:-1] if isinstance(loss, SoftmaxCrossEntropy) and not loss.sparse else targets.shape
    if weights is None:
        return np.ones(lead)
    w = np.asarray(weights, np.float64)
    if isinstance(loss, SoftmaxCrossEntropy) and w.ndim < len(lead):  # per-row weights of a prefix shape
        w = w.reshape(w.shape + (1,) * (len(lead) - w.ndim))
    return np.broadcast_to(w, lead)


def _normaliser(reduction, weights):
    """The loss's denominator over these rows, exactly rounded (math.fsum),
    so it does not depend on how the rows are laid out."""
    if reduction == "weights":
        return math.fsum(weights.ravel().tolist())
    return float(np.count_nonzero(weights))


def _cover(lo, hi, first, last):
    """The largest nodes of the group tree over [lo, hi) inside [first, last)."""
    if first >= last or last <= lo or hi <= first:
        return []
    if first <= lo and hi <= last:
        return [(lo, hi)]
    mid = (lo + hi) // 2
    return _cover(lo, mid, first, last) + _cover(mid, hi, first, last)


def _tree_sum(lo, hi, known):
    """The sum of groups [lo, hi) along the group tree, from the nodes in
    `known` ({(lo, hi): (metrics, grads)})."""
    node = known.get((lo, hi))
    if node is not None:
        return node
    mid = (lo + hi) // 2
    (m1, g1), (m2, g2) = _tree_sum(lo, mid, known), _tree_sum(mid, hi, known)
    return m1 + m2, g1 + g2


class _LocalComm:
    """A communicator of one process: the grouped step without MPI."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1


def check_groups(groups: Optional[int], batch_size: int, ranks: int) -> int:
    """The number of gradient groups (DEFAULT_GROUPS when None), checked
    against the batch size and the number of ranks: every group needs a row
    and every rank a group of a full batch."""
    if groups is None:
        groups = DEFAULT_GROUPS
    if not is_int(groups) or groups < 1:
        raise ValueError(f"groups must be an int >= 1, got {groups!r}")
    groups = int(groups)
    if not ranks <= groups <= batch_size:
        raise ValueError(f"batch_size {batch_size} does not split into {groups} gradient groups over {ranks} ranks: "
                         f"every rank needs a whole group and every group a row (ranks <= groups <= batch_size); "
                         f"pass groups= between {ranks} and {batch_size}, or change batch_size"
                         if ranks <= batch_size else
                         f"batch_size {batch_size} is smaller than the {ranks} ranks: every rank needs a row of "
                         f"every batch")
    return groups


class GroupedStep:
    """Sequential training steps over gradient groups (see the module's
    docstring), on this rank's groups; `comm` None: one process, no MPI.
    A stateful model carries the state of each of this rank's groups."""

    def __init__(self, model: Any, groups: Optional[int], batch_size: int, comm: Any = None) -> None:
        self.model = model
        self.comm: Any = _LocalComm() if comm is None else comm
        self.rank, self.ranks = self.comm.Get_rank(), self.comm.Get_size()
        self.groups = check_groups(groups, batch_size, self.ranks)
        self.reduction = _scalar_reduction(model.loss)
        self.states: dict[int, Any] = {}  # group -> its carried state (stateful models)

    def reset_states(self) -> None:
        self.states = {}

    def shared_seed(self, seed: Optional[int]) -> Optional[int]:
        """`seed` where given; else rank 0's fresh entropy, the same on every rank."""
        if seed is not None or self.ranks == 1:
            return seed
        return self.comm.bcast(np.random.SeedSequence().entropy if self.rank == 0 else None, root=0)

    def start(self, optimizer: Any, x: NDArray[Any], sequence_length: Optional[NDArray[Any]]) -> None:
        """Builds the layers (one inference row) and copies rank 0's weights and
        optimizer state to every rank."""
        if self.ranks == 1:
            return
        carried, self.model.final_state = self.model.final_state, None
        try:
            self.model.predict(x[:1], None if sequence_length is None else sequence_length[:1])
        finally:
            self.model.final_state = carried
        broadcast_variables([self.model, optimizer])

    def __call__(self, x: NDArray[Any], targets: NDArray[Any], weights: Optional[NDArray[Any]], optimizer: Any,
                 sequence_length: Optional[NDArray[Any]] = None, clip_norm: Optional[float] = None,
                 accuracy: bool = False, stop: bool = False) -> tuple[float, Optional[tuple[float, ...]], bool]:
        """One update on a global batch (every rank passes the whole batch).
        Every group starts its DropoutWrapper cells at the step's call
        counters and its first row. Returns (loss, (Σ w·correct, Σ w) or
        None, stop on any rank)."""
        optimizer = _inner(optimizer)  # the groups' sum is the whole batch's gradient already
        rows = len(x)
        count = min(self.groups, rows)
        bounds = [g * rows // count for g in range(count + 1)]
        shares = [_normaliser(self.reduction, _loss_weights(self.model.loss, targets[a:b],
                                                              None if weights is None else weights[a:b]))
                  for a, b in zip(bounds, bounds[1:])]
        total = math.fsum(shares)
        first, last = self.rank * count // self.ranks, (self.rank + 1) * count // self.ranks
        leaves, pairs = {}, []
        wrappers = dropout_streams(self.model)
        streams = [(w.calls, w.first_row) for w in wrappers]
        try:
            for g in range(first, last):
                a, b = bounds[g], bounds[g + 1]
                if self.model.stateful:
                    self.model.final_state = self.states.get(g)
                for wrapper, (calls, _) in zip(wrappers, streams):
                    wrapper.calls, wrapper.first_row = calls, a
                scale = shares[g] / total if total else 0.0
                loss, outputs, pairs = self.model._gradients(
                    x[a:b], targets[a:b], None if weights is None else weights[a:b],
                    None if sequence_length is None else sequence_length[a:b], scale)
                if self.model.stateful:
                    self.states[g] = self.model.final_state
                grads = [grad for grad, _ in pairs]
                _flat_dtype(grads)
                metrics = np.zeros(3)
                metrics[0] = float(loss) * scale
                if accuracy:
                    from .sequential import _accuracy_counts
                    metrics[1:] = _accuracy_counts(outputs, targets[a:b], None if weights is None else weights[a:b])
                leaves[(g, g + 1)] = (metrics, _flatten(grads))
        finally:  # the counters stay where the step left them
            for wrapper, (_, first_row) in zip(wrappers, streams):
                wrapper.first_row = first_row
        variables = self._variables()  # after the first forward built every layer
        if pairs and (len(pairs) != len(variables) or any(v is not var for (_, v), var in zip(pairs, variables))):
            raise RuntimeError("the model's gradients do not come in the order of its variables")
        nodes = [((lo, hi), _tree_sum(lo, hi, leaves)) for lo, hi in _cover(0, count, first, last)]
        known, stopped = self._exchange(nodes, count, stop)
        metrics, flat = _tree_sum(0, count, known)
        grads = _unflatten(flat, variables)
        if clip_norm is not None:
            grads, _ = clip_by_global_norm(grads, clip_norm)
        optimizer.apply_gradients(list(zip(grads, variables)))
        return float(metrics[0]), (tuple(float(m) for m in metrics[1:]) if accuracy else None), stopped

    def _variables(self):
        return [v for layer in self.model.layers for v in layer.variables.values()]

    def _exchange(self, nodes, count, stop):
        """Every rank's tree nodes, in one Allgatherv of records (metrics with
        the stop flag, then the flat gradient), and whether any rank asked to stop."""
        if self.ranks == 1:
            return dict(nodes), bool(stop)
        variables = self._variables()
        dtype = _flat_dtype(variables)
        size = sum(v.size for v in variables)
        record = np.dtype([("metrics", np.float64, 3), ("stop", np.float64), ("grads", dtype, size)], align=True)
        send = np.empty(len(nodes), record)
        send["stop"] = float(stop)
        for i, (_, (metrics, flat)) in enumerate(nodes):
            send["metrics"][i], send["grads"][i] = metrics, flat
        owners = [_cover(0, count, r * count // self.ranks, (r + 1) * count // self.ranks) for r in range(self.ranks)]
        received = np.empty(sum(len(o) for o in owners), record)
        counts = [len(o) * record.itemsize for o in owners]
        displacements = np.cumsum([0] + counts[:-1]).tolist()
        MPI = _mpi()
        self.comm.Allgatherv([send.view(np.uint8), MPI.BYTE], [received.view(np.uint8), counts, displacements, MPI.BYTE])
        names = [n for o in owners for n in o]
        known = {n: (received["metrics"][i], received["grads"][i]) for i, n in enumerate(names)}
        return known, bool(received["stop"].any())
