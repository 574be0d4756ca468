"""Holm's step-down correction: many tests in one report keep their family-wise error at alpha.

Every figure that reports several tests at once uses it: the seed gaps of a run (bench/stats/seeds.py) and
the two curves of `bench converge` (bench/stats/converge.py).
"""

from __future__ import annotations


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of p values (the family-wise error rate), in the input order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
