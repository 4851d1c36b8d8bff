"""Run by tests/test_distributed.py under mpiexec: rank 1 raises while the
others wait for it in a collective; the job must end with rank 1's error,
not hang. `python fails.py`."""

from rnnkit import distributed

world = distributed.init()
if distributed.rank() == 1:
    raise RuntimeError("rank 1 fails on purpose")
world.barrier()
