"""Shapes of every case: the issue's (FULL) and tiny ones for CI (QUICK).
Kept apart from cases.py so that memory.py's child processes can read them
without importing rnnkit (the torch child must not load it)."""

from dataclasses import dataclass


@dataclass
class Shapes:
    """Full and quick (tiny, CI) shapes for every case."""
    seed: dict
    char: dict
    sampling: dict
    generation: dict
    charrnn: dict
    deepbench: list
    big: dict
    gru: dict
    vanilla: dict


FULL = Shapes(
    seed=dict(B=1, T=5, D=4, H=2),
    char=dict(B=32, T=50, C=65, H=128),
    sampling=dict(C=65, H=256, steps=100),
    generation=dict(C=65, H=256, steps=200),
    charrnn=dict(B=32, T=50, C=98, H=128, L=2),
    # DeepBench's LSTM training shapes give hidden size only; input = hidden.
    deepbench=[dict(B=16, T=25, D=512, H=512), dict(B=16, T=150, D=256, H=256)],
    big=dict(B=32, T=50, D=1024, H=1024),
    gru=dict(B=64, T=100, D=256, H=512),
    vanilla=dict(B=64, T=100, D=256, H=512),
)

QUICK = Shapes(
    seed=dict(B=1, T=5, D=4, H=2),
    char=dict(B=3, T=4, C=7, H=8),
    sampling=dict(C=7, H=8, steps=5),
    generation=dict(C=7, H=8, steps=5),
    charrnn=dict(B=3, T=4, C=7, H=8, L=2),
    deepbench=[dict(B=2, T=3, D=8, H=8), dict(B=2, T=6, D=4, H=4)],
    big=dict(B=2, T=3, D=16, H=16),
    gru=dict(B=2, T=3, D=5, H=6),
    vanilla=dict(B=2, T=3, D=5, H=6),
)
