"""Runnable examples: python -m rnnkit.examples.hello / hihello / sentence."""
