"""Locks that make layers, losses and optimizers safe to share between threads.

A layer (RNN, Bidirectional, Dense) or a loss keeps what its forward
recorded for its backward, so two threads training it at once would mix
their tapes: `InUse` refuses the second concurrent caller with a
RuntimeError naming the object instead of waiting (a second user of one
layer is a bug in the caller, and a wait could hide it). An optimizer's
update is made atomic by `Serial`, which waits. Both are copied and pickled
as fresh, unlocked locks (checkpoint.py deep-copies models).
"""

import threading


class InUse:
    """`with guard:` runs the block in one thread at a time; a second
    thread gets RuntimeError("<name> is in use by another thread ...")."""

    __slots__ = ("name", "_lock")

    def __init__(self, name):
        self.name = name
        self._lock = threading.Lock()

    def __enter__(self):
        if not self._lock.acquire(blocking=False):
            raise RuntimeError(
                f"{self.name} is in use by another thread: one thread at a time may run its forward or "
                f"backward (give each thread its own {self.name}, or hold a lock around forward and backward)")
        return self

    def __exit__(self, *exc):
        self._lock.release()

    def __deepcopy__(self, memo):
        return type(self)(self.name)

    def __reduce__(self):
        return type(self), (self.name,)


class Serial(InUse):
    """`with guard:` waits for the other threads' blocks to finish."""

    __slots__ = ()

    def __enter__(self):
        self._lock.acquire()
        return self
