"""rnnkit against PyTorch on the CPU and against numpy's GEMM ceiling.

    python -m benchmarks.run                 # every case, 2 threads, writes BENCHMARKS.md
    python -m benchmarks.run --quick --out /tmp/B.md   # tiny shapes, one round (CI)
    python -m benchmarks.run --competitor --only char  # beside a busy process (under_load.py)

Every row is first checked against a reference (PyTorch float64 with rnnkit's
weights copied in, or a numpy float64 reference when torch is missing or
computes a different function) and timed only when the check passes. rnnkit
and PyTorch then run interleaved in this process, in blocks of calls, over
several rounds (the order alternates every round); the medians over rounds
are reported. torch.set_num_threads is set to rnnkit's thread count.
"""

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

import numpy as np  # noqa: E402

import rnnkit  # noqa: E402

from benchmarks import cases, cpp_bench, machine, report, under_load  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def import_torch(disabled):
    if disabled:
        return None, "disabled with --no-torch"
    try:
        import torch
    except ImportError as e:
        return None, f"not importable ({e})"
    return torch, None


def set_threads(torch, n):
    rnnkit.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


def _block(f, n):
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        return time.perf_counter() - t0
    finally:
        gc.enable()


class QuietGate:
    """On a shared machine another job's busy core wrecks 2-thread timings
    (every OpenMP barrier waits for a descheduled thread). Before each round
    this waits, up to `per_wait_s` and `budget_s` in all, until other
    processes use < 0.25 cores; it records the load every round ran under."""

    def __init__(self, per_wait_s, budget_s):
        self.per_wait_s, self.budget_s, self.waited = per_wait_s, budget_s, 0.0

    def wait(self):
        left = min(self.per_wait_s, self.budget_s - self.waited)
        if left <= 0:
            return
        waited, _ = machine.wait_until_quiet(left)
        self.waited += waited


QUIET_CORES = 0.25  # other processes' load under which a round counts as quiet
MIN_QUIET_ROUNDS = 3


def time_interleaved(fns, rounds, min_block_s, gate=None):
    """fns: [(name, callable)]. Returns ({name: [seconds per call, one per
    round]}, [other processes' load in cores, one per round]).

    Each callable first runs once to warm up (allocations, thread pools), then
    a second time to size its block: enough calls to fill `min_block_s`. Each
    round runs every callable's block once, alternating the order. With a
    gate, rounds that ran while other processes used >= QUIET_CORES are
    followed by extra rounds (at most `rounds` more) until MIN_QUIET_ROUNDS
    quiet ones exist."""
    inner = {}
    for name, f in fns:
        f()
        one = _block(f, 1)
        inner[name] = 1 if min_block_s <= 0 else max(1, min(100000, math.ceil(min_block_s / max(one, 1e-9))))
    samples = {name: [] for name, _ in fns}
    loads = []

    def quiet_rounds():
        return sum(1 for x in loads if x is not None and x < QUIET_CORES)

    r = 0
    while r < rounds or (gate is not None and r < 2 * rounds and quiet_rounds() < min(MIN_QUIET_ROUNDS, rounds)):
        if gate is not None:
            gate.wait()
        load = machine.ForeignLoad()
        for name, f in (fns if r % 2 == 0 else fns[::-1]):
            samples[name].append(_block(f, inner[name]) / inner[name])
        loads.append(load.cores())
        r += 1
    return samples, loads


def select_rounds(samples, loads, quiet_only):
    """The rounds to take medians over: the quiet ones when there are at least
    MIN_QUIET_ROUNDS of them (and quiet_only), else all. Returns (indices, contended)."""
    quiet = [i for i, x in enumerate(loads) if x is not None and x < QUIET_CORES]
    if quiet_only and len(quiet) >= min(MIN_QUIET_ROUNDS, len(loads)):
        return quiet, False
    return list(range(len(loads))), len(quiet) < len(loads)


def check_row(row, torch, log):
    """Runs the row's check (at its thread count); True when it passed."""
    label = f"{row.case} / {row.mode} / {row.shape} / {row.threads} thr"
    if row.skip:
        row.check_summary = "skipped"
        log(f"SKIP  {label}: {row.skip}")
        return False
    set_threads(torch, row.threads)
    try:
        chk = row.check()
        row.check_ok, row.check_summary = chk.ok, chk.summary()
    except Exception as e:  # a crash in the check is a failed check, reported as such
        row.check_ok, row.check_summary = False, f"FAILED: {type(e).__name__}: {e}"
    if not row.check_ok:
        log(f"FAIL  {label}: {row.check_summary} -- not timed")
    return row.check_ok


def run_rows(rows, torch, args, log):
    gate = QuietGate(args.quiet_wait, args.quiet_budget) if args.quiet_wait > 0 else None
    for row in rows:
        if not check_row(row, torch, log):
            continue
        label = f"{row.case} / {row.mode} / {row.shape} / {row.threads} thr"
        fns = [("rnnkit", row.rnnkit)] + ([("torch", row.torch)] if row.torch is not None else [])
        samples, loads = time_interleaved(fns, args.rounds, args.min_block, gate)
        keep, row.contended = select_rounds(samples, loads, quiet_only=gate is not None)
        row.rounds_total, row.rounds_used = len(loads), len(keep)
        kept_loads = [loads[i] for i in keep if loads[i] is not None]
        row.foreign_cores = statistics.median(kept_loads) if kept_loads else None
        row.rnnkit_rounds = [samples["rnnkit"][i] / row.units_per_call for i in keep]
        row.rnnkit_s = statistics.median(row.rnnkit_rounds)
        if "torch" in samples:
            row.torch_rounds = [samples["torch"][i] / row.units_per_call for i in keep]
            row.torch_s = statistics.median(row.torch_rounds)
        log(f"ok    {label}: rnnkit {report.fmt_time(row.rnnkit_s)}"
            + (f", torch {report.fmt_time(row.torch_s)}, ratio {row.torch_s / row.rnnkit_s:.2f}" if row.torch_s else "")
            + (f"; others used {row.foreign_cores:.2f} cores" if row.foreign_cores is not None else "")
            + f"; {row.rounds_used}/{row.rounds_total} rounds" + (" CONTENDED" if row.contended else "")
            + f"  [{row.check_summary}]")


def measure_scaling(rows, torch, args, log):
    """2 threads against 1 for the big LSTM, measured with the two thread
    counts interleaved in the same rounds (separate rows minutes apart drift
    with the machine). Uses the rows' own checked callables; each call sets
    its thread count first (omp_set_num_threads: nanoseconds)."""
    t = args.threads
    if t == 1:
        return None
    out = {}
    gate = QuietGate(args.quiet_wait, args.quiet_budget) if args.quiet_wait > 0 else None
    for mode in ("forward", "forward+backward"):
        row = next((r for r in rows if r.case == "big" and r.mode == mode and r.threads == t), None)
        if row is None or not row.check_ok:
            continue

        def with_threads(f, n):
            def call():
                set_threads(torch, n)
                f()
            return call

        fns = [(f"rnnkit {t}", with_threads(row.rnnkit, t)), ("rnnkit 1", with_threads(row.rnnkit, 1))]
        if row.torch is not None:
            fns += [(f"torch {t}", with_threads(row.torch, t)), ("torch 1", with_threads(row.torch, 1))]
        samples, loads = time_interleaved(fns, args.rounds, args.min_block, gate)
        keep, contended = select_rounds(samples, loads, quiet_only=gate is not None)
        med = {name: statistics.median([v[i] for i in keep]) for name, v in samples.items()}
        res = {"threads": t, "rnnkit_1_s": med["rnnkit 1"], "rnnkit_n_s": med[f"rnnkit {t}"],
               "rnnkit_speedup": med["rnnkit 1"] / med[f"rnnkit {t}"], "rounds_used": len(keep),
               "rounds_total": len(loads), "contended": contended}
        if row.torch is not None:
            res.update(torch_1_s=med["torch 1"], torch_n_s=med[f"torch {t}"],
                       torch_speedup=med["torch 1"] / med[f"torch {t}"])
        out[mode] = res
        log(f"scaling big {mode}: rnnkit {res['rnnkit_speedup']:.2f}x"
            + (f", torch {res['torch_speedup']:.2f}x" if "torch_speedup" in res else "")
            + f" ({t} threads vs 1, interleaved; {len(keep)}/{len(loads)} rounds)")
    set_threads(torch, t)
    return out


def gemm_shapes(shapes, quick):
    """The square ceiling plus the two products of each LSTM case: the
    hoisted input projection [B*T, D]x[D, 4H] and the per-step recurrent
    [B, H]x[H, 4H]."""
    n = 256 if quick else 2048
    out = {"ceiling": (n, n, n)}
    lstm = [("DeepBench 1", shapes.deepbench[0]), ("DeepBench 2", shapes.deepbench[1]), ("big", shapes.big)]
    for name, s in lstm:
        out[f"{name} input"] = (s["B"] * s["T"], s["D"], 4 * s["H"])
        out[f"{name} recurrent"] = (s["B"], s["H"], 4 * s["H"])
    return out


def measure_gemm(threads_list, shapes, repeats, log, quiet_wait=0.0):
    result = {}
    for t in threads_list:
        if quiet_wait > 0:
            machine.wait_until_quiet(quiet_wait)
        names = list(shapes)
        load = machine.ForeignLoad(own_children=True)
        g = machine.gemm_ceiling(t, [shapes[k] for k in names], repeats=repeats)
        result[t] = {"blas": g["blas"], "env": g["env"], "foreign_cores": load.cores(),
                     "shapes": {k: dict(r) for k, r in zip(names, g["results"])}}
        log(f"numpy sgemm, {t} thread(s), {g['blas'].get('architecture')} kernel: "
            + ", ".join(f"{k} {r['gflops']:.1f}" for k, r in zip(names, g["results"])) + " GF/s")
    return result


def run_memory(args, torch_ok, log):
    """Peak and flat-memory measurements in child processes."""
    train = "char-train"
    frameworks = ["rnnkit"] + (["torch"] if torch_ok else [])
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    out = {"train_workload": train, "peak": [], "flat": [],
           "note": None}

    def child(fw, workload, mode, steps=0):
        cmd = [sys.executable, "-m", "benchmarks.memory", "--framework", fw, "--workload", workload,
               "--threads", str(args.threads), "--mode", mode, "--steps", str(steps or 1)]
        if args.quick:
            cmd.append("--quick")
        p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
        if p.returncode != 0:
            return {"framework": fw, "workload": workload, "error": p.stderr.strip()[-1500:]}
        return json.loads(p.stdout.strip().splitlines()[-1])

    for workload in (train, "big-lstm"):
        for fw in frameworks:
            r = child(fw, workload, "peak")
            out["peak"].append(r)
            log(f"memory peak {workload} {fw}: " + (r.get("error") or
                f"first step +{r['first_step_peak_kib'] / 1024:.1f} MiB, steady step +{r['steady_step_peak_kib'] / 1024:.1f} MiB"))
    for fw in frameworks:
        r = child(fw, train, "flat", args.memory_steps)
        out["flat"].append(r)
        log(f"memory flat {train} {fw}: " + (r.get("error") or
            f"RSS {r['rss_kib']} KiB, growth after step {r['growth_from_step']}: {r['growth_kib']} KiB"))
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny shapes, one round, short memory run (CI)")
    p.add_argument("--threads", type=int, default=2, help="threads for rnnkit and torch (default 2)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7; quick: 1)")
    p.add_argument("--min-block", type=float, default=None,
                   help="seconds each timed block of calls lasts at least (default 0.25; quick: 0)")
    p.add_argument("--quiet-wait", type=float, default=None,
                   help="before each round, wait up to this many seconds for other processes to use < 0.25 cores "
                        "(default 20; quick: 0)")
    p.add_argument("--quiet-budget", type=float, default=900, help="total seconds of such waiting (default 900)")
    p.add_argument("--only", default=None, help="comma-separated subset of: " + ",".join(cases.CASE_NAMES))
    p.add_argument("--no-torch", action="store_true", help="rnnkit only, numpy references")
    p.add_argument("--competitor", action="store_true",
                   help="rnnkit only: each row at --threads and at 1 thread beside one busy process "
                        "(benchmarks/under_load.py); prints a table, writes --json, leaves --out alone")
    p.add_argument("--skip-memory", action="store_true", help="skip the memory measurements")
    p.add_argument("--memory-steps", type=int, default=None, help="steps of the flat-memory run (default 1000; quick: 20)")
    p.add_argument("--cpp-bench", default=None,
                   help=f"Google Benchmark binary to run a subset of (default in full mode: {os.path.relpath(cpp_bench.DEFAULT_BINARY, REPO)} if built)")
    p.add_argument("--no-cpp-bench", action="store_true", help="do not run the C++ micro-benchmarks")
    p.add_argument("--out", default=os.path.join(REPO, "BENCHMARKS.md"), help="markdown report (default: BENCHMARKS.md)")
    p.add_argument("--json", default=None, help="also write every number as JSON here")
    p.add_argument("--render", default=None, metavar="JSON",
                   help="measure nothing: rewrite --out from a run saved with --json (e.g. after changing report.py)")
    a = p.parse_args(argv)
    if a.rounds is None:
        a.rounds = 1 if a.quick else 7
    if a.min_block is None:
        a.min_block = 0.0 if a.quick else 0.25
    if a.quiet_wait is None:
        a.quiet_wait = 0.0 if a.quick else 20.0
    if a.memory_steps is None:
        a.memory_steps = 20 if a.quick else 1000
    if a.only:
        a.only = set(s.strip() for s in a.only.split(","))
        unknown = a.only - set(cases.CASE_NAMES)
        if unknown:
            p.error(f"--only: unknown case(s) {sorted(unknown)}; choose from {', '.join(cases.CASE_NAMES)}")
    if a.threads < 1:
        p.error("--threads must be >= 1")
    return a


def load_run(path):
    """A run saved with --json, with the thread-count keys JSON turned into strings made ints again."""
    with open(path) as f:
        run = json.load(f)
    for when in ("before", "after"):
        if run["gemm"].get(when):
            run["gemm"][when] = {int(k): v for k, v in run["gemm"][when].items()}
    return run


def run_under_load(ctx, args, facts, log):
    rows = cases.build_rows(ctx, args.only)
    failed = [row for row in rows if row.threads == args.threads and not row.skip and not check_row(row, None, log)]
    results = under_load.compare_rows(rows, args.threads, args.rounds, args.min_block, time_interleaved, log)
    log("")
    log(under_load.table(results, under_load.wait_settings()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"facts": facts, "wait_settings": under_load.wait_settings(), "under_load": results},
                      f, indent=1, default=float)
    return 1 if failed else 0


def main(argv=None):
    args = parse_args(argv)

    def log(msg):
        print(msg, flush=True)

    if args.render:
        run = load_run(args.render)
        run["targets"] = report.evaluate_targets(run)  # derived: follows report.py's current targets
        with open(args.out, "w") as f:
            f.write(report.markdown(run))
        log(f"wrote {args.out} from {args.render}")
        return 0

    torch, torch_note = import_torch(args.no_torch)
    if torch is None:
        log(f"PyTorch: {torch_note}; rnnkit only, checked against numpy references")
    set_threads(torch, args.threads)
    started = datetime.datetime.now(datetime.timezone.utc)
    facts = machine.machine_facts(torch)
    facts["load_average_start"] = machine.load_average()
    log(f"machine: {facts['cpu']}, {facts['logical_cpus']} CPUs, rnnkit {facts['rnnkit_arch']} ({facts['rnnkit_simd']})")

    ctx = cases.Context(torch, args.threads, args.quick)
    if args.competitor:
        return run_under_load(ctx, args, facts, log)
    gshapes = gemm_shapes(ctx.shapes, args.quick)
    threads_list = sorted({args.threads, 1})
    repeats = 2 if args.quick else 7
    gemm = {"before": measure_gemm(threads_list, gshapes, repeats, log, args.quiet_wait)}

    rows = cases.build_rows(ctx, args.only)
    run_rows(rows, torch, args, log)
    scaling = measure_scaling(rows, torch, args, log)
    loaded_rows = [r for r in rows if r.case == "char" and r.threads == args.threads]
    loaded = under_load.compare_rows(loaded_rows, args.threads, min(args.rounds, 3), args.min_block, time_interleaved,
                                     log) if args.threads > 1 else []

    memory = None if args.skip_memory else run_memory(args, torch is not None, log)
    cpp = None
    if not args.no_cpp_bench and (args.cpp_bench or not args.quick):
        if args.quiet_wait > 0:
            machine.wait_until_quiet(args.quiet_wait)
        load = machine.ForeignLoad()
        cpp = cpp_bench.run(args.cpp_bench or cpp_bench.DEFAULT_BINARY, min_time=0.05 if args.quick else 0.2)
        cpp["foreign_cores"] = load.cores()
        log("C++ micro-benchmarks: " + (cpp.get("skipped") or f"{len(cpp['rows'])} results"))
    gemm["after"] = measure_gemm(threads_list, gshapes, repeats, log, args.quiet_wait)
    facts["load_average_end"] = machine.load_average()
    finished = datetime.datetime.now(datetime.timezone.utc)

    run = {
        "command": "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started": started.isoformat(timespec="seconds"), "finished": finished.isoformat(timespec="seconds"),
        "quick": args.quick, "threads": args.threads, "rounds": args.rounds, "min_block_s": args.min_block,
        "quiet_wait_s": args.quiet_wait, "quiet_budget_s": args.quiet_budget, "gemm_repeats": repeats,
        "torch_note": torch_note, "facts": facts, "gemm": gemm, "memory": memory, "cpp_bench": cpp,
        "scaling": scaling, "under_load": loaded, "wait_settings": under_load.wait_settings(),
        "platform": platform.platform(),
    }
    run["rows"] = [report.row_dict(r, report.ceiling(gemm, r.threads)) for r in rows]
    run["targets"] = report.evaluate_targets(run)
    text = report.markdown(run)
    log("")
    log(report.results_table(run))
    log("")
    log(report.targets_table(run))
    with open(args.out, "w") as f:
        f.write(text)
    log(f"\nwrote {args.out}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(run, f, indent=1, default=float)
        log(f"wrote {args.json}")
    failed = [r for r in run["rows"] if r["check_ok"] is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
