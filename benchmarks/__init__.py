"""rnnkit's benchmark harness: `python -m benchmarks.run` (see run.py)."""
