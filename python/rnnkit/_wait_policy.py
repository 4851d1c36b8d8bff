"""How long rnnkit's OpenMP threads spin before they sleep, set before the
OpenMP runtime loads (it reads the setting once, then).

A thread that waits for work (at a barrier between steps, or for the next
kernel) first spins, then sleeps. libgomp spins 300000 times by default,
about 10 ms: on a machine where another process wants the same cores, each
wait then burns the time slice that the thread it waits for needs, and two
threads run several times slower than one (benchmarks/NOTES.md, Threads).
rnnkit spins 10000 times (longer than the gaps between the kernels of a
training step, so a quiet machine keeps its speed) and then sleeps.

Only when the user has set neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT; and
only if no library has loaded libgomp before rnnkit (the setting then comes
too late and libgomp's default stays).
"""

import os

SPIN_COUNT = "10000"

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
