"""Machine facts and numpy's float32 GEMM ceiling, recorded beside every run.

The ceiling is measured in a child process so that its BLAS environment can
differ from the benchmark's: on some machines of this workplace
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set (older OpenBLAS builds need
them) and they slow a current numpy. The child runs with both unset by
default, and the report says which kernel OpenBLAS then picked.
"""

import json
import os
import platform
import subprocess
import sys
import time

BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# Runs in the child: argv[1] is a JSON list of [m, k, n] shapes, argv[2] the
# number of timed repeats. Prints one JSON object.
_GEMM_CHILD = r"""
import json, sys, time
import numpy as np
shapes = json.loads(sys.argv[1]); repeats = int(sys.argv[2])
info = {}
try:
    import threadpoolctl
    blas = [p for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]
    if blas:
        info = {k: blas[0].get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
except ImportError:
    info = {"architecture": "unknown (threadpoolctl not installed)"}
rng = np.random.default_rng(0)
results = []
for m, k, n in shapes:
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), np.float32)
    flops = 2.0 * m * k * n
    # at least ~50 ms per timed sample so small shapes are not timer noise
    np.matmul(a, b, out=c)
    t0 = time.perf_counter(); np.matmul(a, b, out=c); one = time.perf_counter() - t0
    inner = max(1, int(0.05 / max(one, 1e-7)))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            np.matmul(a, b, out=c)
        samples.append((time.perf_counter() - t0) / inner)
    samples.sort()
    med = samples[len(samples) // 2]
    results.append({"m": m, "k": k, "n": n, "median_s": med, "gflops": flops / med / 1e9,
                    "best_gflops": flops / samples[0] / 1e9})
print(json.dumps({"blas": info, "results": results}))
"""


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def physical_cores():
    """(sockets x cores per socket) from /proc/cpuinfo; None when unknown."""
    try:
        pairs = set()
        phys = core = None
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":")[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":")[1].strip()
                elif not line.strip():
                    if core is not None:
                        pairs.add((phys, core))
                    phys = core = None
        return len(pairs) or None
    except OSError:
        return None


class ForeignLoad:
    """CPU time that other processes used while a block of work ran, in cores.

    busy jiffies of the whole machine (/proc/stat) minus this process's own
    CPU time (every thread), over the wall time. 0 on an idle machine; on a
    shared 2-core machine, 1.0 means another job took a whole core."""

    def __init__(self, own_children=False):
        # own_children: count finished (waited-for) child processes as our own
        self.own_children = own_children
        self._start = self._sample()

    def _sample(self):
        try:
            with open("/proc/stat") as f:
                parts = f.readline().split()[1:]
            v = [int(x) for x in parts]
            busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
            busy_s = busy / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            busy_s = None
        t = os.times()
        own = t.user + t.system + (t.children_user + t.children_system if self.own_children else 0.0)
        return busy_s, own, time.perf_counter()

    def cores(self):
        busy1, own1, wall1 = self._sample()
        busy0, own0, wall0 = self._start
        if busy0 is None or busy1 is None or wall1 <= wall0:
            return None
        return max((busy1 - busy0) - (own1 - own0), 0.0) / (wall1 - wall0)


def wait_until_quiet(max_wait_s, threshold=0.25, window_s=0.5):
    """Sleep until other processes use less than `threshold` cores over a
    `window_s` window, or `max_wait_s` has passed. Returns (seconds waited,
    the last window's foreign load in cores)."""
    waited = 0.0
    while True:
        probe = ForeignLoad()
        time.sleep(window_s)
        load = probe.cores()
        waited += window_s
        if load is None or load < threshold or waited >= max_wait_s:
            return waited, load


def load_average():
    try:
        return os.getloadavg()
    except OSError:
        return None


def source_revision(repo):
    """(commit, dirty) of the checkout being measured, or (None, None) outside git."""
    try:
        commit = subprocess.run(["git", "-C", repo, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
        status = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10).stdout
        return commit, bool(status.strip()) if commit else None
    except (OSError, subprocess.SubprocessError):
        return None, None


def machine_facts(torch=None):
    import numpy as np
    import rnnkit

    core = rnnkit._core
    facts = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": physical_cores(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "rnnkit_path": os.path.dirname(rnnkit.__file__),
        "rnnkit_arch": getattr(core, "arch", "unknown"),
        "rnnkit_simd": getattr(core, "simd", "unknown"),
        "rnnkit_openmp": getattr(core, "openmp", None),
        "torch": None if torch is None else torch.__version__,
        "blas_env_in_benchmark": {k: os.environ.get(k) for k in BLAS_ENV},
    }
    facts["commit"], facts["dirty"] = source_revision(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if torch is not None:
        facts["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    return facts


def gemm_ceiling(threads, shapes, repeats=7, unset_blas_env=True, timeout=600):
    """numpy float32 GEMM GF/s for each [m, k, n] in `shapes`, measured in a
    child process with `threads` BLAS threads. Returns the child's JSON plus
    how its environment was set."""
    env = dict(os.environ)
    removed = {}
    if unset_blas_env:
        for key in BLAS_ENV:
            if key in env:
                removed[key] = env.pop(key)
    for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = str(threads)
    proc = subprocess.run(
        [sys.executable, "-c", _GEMM_CHILD, json.dumps([list(s) for s in shapes]), str(repeats)],
        env=env, capture_output=True, text=True, timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"GEMM child failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["threads"] = threads
    out["env"] = {
        "unset": list(BLAS_ENV) if unset_blas_env else [],
        "were_set_in_parent": removed if unset_blas_env else {k: os.environ.get(k) for k in BLAS_ENV if k in os.environ},
    }
    return out
