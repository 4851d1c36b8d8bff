"""Runnable examples: python -m rnnkit.examples.hello / hihello / sentence (the char tutorials),
stock / classify / wordlm (Sequential.fit: regression, ragged classification, a stateful word LM)."""
