"""Distributed training: the throughput (samples/s) of Sequential.fit on a
char-rnn shape, plain in one process, grouped in one process (fit(groups=G),
the bits of a distributed run) and under `mpiexec -n R`, with the bytes each
step communicates. Each run first checks that the grouped runs' weights
agree bit for bit after the same steps, then times.

    python -m benchmarks.distributed                 # 1 and 2 ranks, batch 64
    python -m benchmarks.distributed --ranks 1,2,4 --batch 128 --steps 30
    python -m benchmarks.distributed --batch 32 --into benchmarks/last_run.json

--into adds the result (by batch size) to a harness run's JSON, whose
rendering (`python -m benchmarks.run --render`) shows it in BENCHMARKS.md.

Every configuration runs in its own process (one `mpiexec` job per rank
count), one timed fit of --steps steps after a warm-up step; the
configurations take turns for --rounds rounds (a shared machine drifts) and
each reports its median round.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

VOCAB, UNITS, STEPS_T = 65, 128, 50


def _model(seed=0):
    import rnnkit
    return rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicLSTMCell(UNITS, input_depth=VOCAB, seed=seed)),
                              rnnkit.Dense(VOCAB, input_depth=UNITS, seed=seed + 1)], loss=rnnkit.SequenceLoss())


def _worker(mode, batch, steps, rounds, groups):
    """Times fit in this process (one rank of a job under mpiexec); rank 0 prints a JSON line."""
    import rnnkit
    from rnnkit import distributed

    rng = np.random.default_rng(0)
    x = rng.integers(0, VOCAB, (batch * steps, STEPS_T))
    y = rng.integers(0, VOCAB, (batch * steps, STEPS_T))
    kwargs = {"plain": {"distributed": False}, "grouped": {"distributed": False, "groups": groups},
              "mpi": {"distributed": True, "groups": groups}}[mode]
    ranks = distributed.size() if mode == "mpi" else 1
    model, optimizer = _model(), rnnkit.AdamOptimizer(0.002)
    model.fit(x[:batch], y[:batch], optimizer=optimizer, batch_size=batch, shuffle=False, verbose=0, **kwargs)
    times, cpu = [], []
    for _ in range(rounds):
        began, began_cpu = time.perf_counter(), time.process_time()
        model.fit(x, y, optimizer=optimizer, batch_size=batch, shuffle=False, verbose=0, **kwargs)
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    if mode == "mpi" and not distributed.is_main():
        return
    per_step = float(np.median(times)) / steps
    variables = model.get_weights()
    parameters = sum(v.size for v in variables)
    digest = hashlib.sha256(b"".join(v.tobytes() for v in variables)).hexdigest()[:16]
    print(json.dumps({"mode": mode, "ranks": ranks, "threads": rnnkit.get_num_threads(), "batch": batch,
                      "groups": groups if mode != "plain" else None, "seconds_per_step": per_step,
                      "cpu_seconds_per_step": float(np.median(cpu)) / steps,
                      "samples_per_s": batch / per_step, "parameters": parameters,
                      "bytes_per_step": _bytes_per_step(parameters, 4, groups, batch, ranks) if mode == "mpi" else 0,
                      "weights_sha256": digest}),
          flush=True)


def _bytes_per_step(parameters, itemsize, groups, batch, ranks):
    """Bytes each rank receives in a step's Allgatherv: every rank's tree nodes,
    each a record of 4 float64 sums and the flat gradient (padded to 8 bytes)."""
    from rnnkit.distributed import _cover
    if ranks == 1:
        return 0  # one rank exchanges nothing
    count = min(groups, batch)
    nodes = sum(len(_cover(0, count, r * count // ranks, (r + 1) * count // ranks)) for r in range(ranks))
    record = 32 + parameters * itemsize
    record += -record % 8
    return nodes * record


def _run(command, env):
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", default="1,2", help="rank counts to launch with mpiexec (default 1,2)")
    parser.add_argument("--batch", type=int, default=64, help="global batch size (default 64)")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed fit (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every configuration; the median counts")
    parser.add_argument("--groups", type=int, default=8, help="gradient groups per batch (default 8)")
    parser.add_argument("--into", metavar="JSON", help="add the result to this harness run's JSON (see above)")
    parser.add_argument("--worker", choices=("plain", "grouped", "mpi"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker, args.batch, args.steps, args.rounds, args.groups)
    common = ["--batch", str(args.batch), "--steps", str(args.steps), "--rounds", "1", "--groups", str(args.groups)]
    me = [sys.executable, "-m", "benchmarks.distributed"] + common
    env = dict(os.environ)
    commands = [me + ["--worker", "plain"], me + ["--worker", "grouped"]]
    mpiexec = shutil.which("mpiexec", path=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]))
    if mpiexec is None:
        print("no mpiexec: pip install rnnkit[mpi] for the MPI rows", file=sys.stderr)
    else:
        commands += [[mpiexec, "-n", r] + me + ["--worker", "mpi"] for r in args.ranks.split(",")]
    runs = [[] for _ in commands]
    for _ in range(args.rounds):
        for command, done in zip(commands, runs):
            done.append(_run(command, env))
    rows = []
    for done in runs:
        done.sort(key=lambda r: r["seconds_per_step"])
        rows.append(dict(done[len(done) // 2], spread=(done[0]["seconds_per_step"], done[-1]["seconds_per_step"])))
    grouped = [r["weights_sha256"] for done in runs for r in done if r["mode"] != "plain"]
    result = {"batch": args.batch, "steps": args.steps, "rounds": args.rounds, "rows": rows,
              "bit_identical": len(set(grouped)) == 1, "load_average": os.getloadavg()[0]}
    print(table(result))
    if args.into:
        with open(args.into) as f:
            run = json.load(f)
        found = [r for r in run.get("distributed", []) if r["batch"] != args.batch]
        run["distributed"] = sorted(found + [result], key=lambda r: r["batch"])
        with open(args.into, "w") as f:
            json.dump(run, f, indent=1)
    if not result["bit_identical"]:
        raise SystemExit("the grouped runs' weights differ")


def table(result):
    """One batch size's runs as a markdown table, with a line naming the model."""
    rows = result["rows"]
    lines = [f"LSTM {UNITS} over {VOCAB} token ids, T={STEPS_T}, batch {result['batch']}, "
             f"{rows[0]['parameters']:,} parameters; grouped runs bit-identical: {result['bit_identical']}", "",
             "| run | ranks x threads | ms/step (min-max) | samples/s | vs plain | CPU ms/step of rank 0 "
             "| bytes received per step and rank |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        name = {"plain": "plain fit", "grouped": f"fit(groups={r['groups']})",
                "mpi": f"mpiexec -n {r['ranks']}"}[r["mode"]]
        low, high = r["spread"]
        lines.append(f"| {name} | {r['ranks']} x {r['threads']} | {r['seconds_per_step'] * 1e3:.1f} "
                     f"({low * 1e3:.1f}-{high * 1e3:.1f}) | "
                     f"{r['samples_per_s']:.0f} | {r['samples_per_s'] / rows[0]['samples_per_s']:.2f}x | "
                     f"{r['cpu_seconds_per_step'] * 1e3:.1f} | "
                     f"{r['bytes_per_step']:,} |")
    return "\n".join(lines)

if __name__ == "__main__":
    main()
