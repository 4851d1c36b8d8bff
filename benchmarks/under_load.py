"""rnnkit beside one busy process: its default thread count against 1 thread.

    python -m benchmarks.run --competitor --only char     # rows of the main harness, under a competitor
    python -m benchmarks.under_load --settings default,RNNKIT_ADAPTIVE_THREADS=0 --only char

`run.py --competitor` checks each row as usual, then starts one competitor (a
pure spin loop in its own process, pinned to one core, killed at the end) and
times each row's rnnkit call at the run's thread count and at 1 thread,
interleaved in the same rounds. Every round runs once with the competitor
spinning and once with it stopped (SIGSTOP), so that "quiet" and "loaded"
figures come from the same minutes of a shared machine. The target of issue
19: loaded, the default thread count is at most 1.1x slower than 1 thread.

OpenMP reads its wait settings (OMP_WAIT_POLICY, GOMP_SPINCOUNT) once, when
the library loads, so comparing them takes one process per setting:
`python -m benchmarks.under_load` runs `run.py --competitor` in a child
process per setting and round (settings interleaved, order alternating), and
reports the median over rounds of each child's medians.
"""

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import rnnkit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPIN = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"
TARGET = 1.1  # loaded: default threads at most this much slower than 1 thread


@contextlib.contextmanager
def competitor():
    """One busy process: a spin loop pinned to the last CPU this process may
    use. Yields a function pause(bool) that stops (SIGSTOP) or resumes it."""
    cpu = max(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    proc = subprocess.Popen([sys.executable, "-c", SPIN, str(cpu)])

    def pause(stopped):
        proc.send_signal(signal.SIGSTOP if stopped else signal.SIGCONT)

    try:
        yield pause
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait()


def compare_rows(rows, threads, rounds, min_block_s, time_interleaved, log):
    """Times each checked row at `threads` and at 1 thread, with the
    competitor spinning and stopped, by run.time_interleaved. Returns one
    dict per row: medians over rounds in seconds per unit, and the loaded
    ratio default/1 thread."""
    import rnnkit

    def with_threads(f, n):
        def call():
            rnnkit.set_num_threads(n)
            f()
        return call

    results = []
    with competitor() as pause:
        for row in rows:
            if not row.check_ok or row.threads != threads:
                continue
            fns = [("n", with_threads(row.rnnkit, threads)), ("1", with_threads(row.rnnkit, 1))]
            med = {}
            for state in ("loaded", "quiet"):
                pause(state == "quiet")
                time.sleep(0.3)  # the adaptive thread count sees the change within 0.2 s
                samples, _ = time_interleaved(fns, rounds, min_block_s)
                med.update({f"{state} {k}": statistics.median(v) / row.units_per_call for k, v in samples.items()})
            pause(False)
            res = {"case": row.case, "mode": row.mode, "shape": row.shape, "threads": threads, "rounds": rounds,
                   "loaded_threads_s": med["loaded n"], "loaded_1_s": med["loaded 1"],
                   "quiet_threads_s": med["quiet n"], "quiet_1_s": med["quiet 1"]}
            res["loaded_ratio"] = res["loaded_threads_s"] / res["loaded_1_s"]
            results.append(res)
            log(f"{row.case} / {row.mode}: loaded {threads} thr {res['loaded_threads_s'] * 1e3:.3f} ms, "
                f"1 thr {res['loaded_1_s'] * 1e3:.3f} ms (ratio {res['loaded_ratio']:.2f}); quiet {threads} thr "
                f"{res['quiet_threads_s'] * 1e3:.3f} ms, 1 thr {res['quiet_1_s'] * 1e3:.3f} ms")
    return results


def table(results, wait_settings):
    lines = [f"OpenMP wait settings: {wait_settings}", "",
             "| case | mode | loaded: default thr | loaded: 1 thr | ratio (target <= 1.1) | quiet: default thr | quiet: 1 thr |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['case']} | {r['mode']} | {r['loaded_threads_s'] * 1e3:.3f} ms | {r['loaded_1_s'] * 1e3:.3f} ms"
                     f" | {r['loaded_ratio']:.2f}{'' if r['loaded_ratio'] <= TARGET else ' (missed)'}"
                     f" | {r['quiet_threads_s'] * 1e3:.3f} ms | {r['quiet_1_s'] * 1e3:.3f} ms |")
    return "\n".join(lines)


def wait_settings():
    """The OpenMP wait settings this process runs under, as libgomp read them."""
    keys = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    waits = ", ".join(f"{k}={os.environ[k]}" for k in keys if k in os.environ) or "libgomp's defaults"
    return f"{waits}; adaptive threads {'on' if rnnkit.adaptive_threads() else 'off'}"


# ---- one child process per wait setting ------------------------------------

def child_env(setting):
    """`default`: rnnkit's own defaults; else KEY=VALUE[;KEY=VALUE] set for the child."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "RNNKIT_ADAPTIVE_THREADS")}
    if setting != "default":
        for item in setting.split(";"):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.under_load", description=__doc__.splitlines()[0])
    p.add_argument("--settings", default="default,RNNKIT_ADAPTIVE_THREADS=0,RNNKIT_ADAPTIVE_THREADS=0;GOMP_SPINCOUNT=10000",
                   help="comma-separated: `default` or KEY=VALUE[;KEY=VALUE] (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=5, help="child runs per setting (default 5)")
    p.add_argument("--child-rounds", type=int, default=3, help="interleaved rounds inside each child (default 3)")
    p.add_argument("--only", default="char", help="cases, as run.py --only (default char)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None, help="write every child's results here")
    a = p.parse_args(argv)
    settings = [s.strip() for s in a.settings.split(",") if s.strip()]
    runs = {s: [] for s in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for s in (settings if r % 2 == 0 else settings[::-1]):
                out = os.path.join(tmp, "run.json")
                cmd = [sys.executable, "-m", "benchmarks.run", "--competitor", "--no-torch", "--only", a.only,
                       "--threads", str(a.threads), "--rounds", str(a.child_rounds), "--json", out]
                subprocess.run(cmd, cwd=REPO, env=child_env(s), check=True, stdout=subprocess.DEVNULL)
                with open(out) as f:
                    runs[s].append(json.load(f)["under_load"])
                print(f"round {r + 1}/{a.rounds}: {s} done", flush=True)
    keys = ("loaded_threads_s", "loaded_1_s", "loaded_ratio", "quiet_threads_s", "quiet_1_s")
    print("\n| setting | case | mode | " + " | ".join(keys) + " | loaded_ratio per round |")
    print("|---|---|---|" + "---:|" * (len(keys) + 1))
    for s in settings:
        for i, row in enumerate(runs[s][0]):
            per_round = [run[i] for run in runs[s]]
            meds = [statistics.median(x[k] for x in per_round) for k in keys]
            cells = [f"{v * 1e3:.3f} ms" if k.endswith("_s") else f"{v:.2f}" for k, v in zip(keys, meds)]
            spread = " ".join(f"{x['loaded_ratio']:.2f}" for x in per_round)
            print(f"| {s} | {row['case']} | {row['mode']} | " + " | ".join(cells) + f" | {spread} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(runs, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
