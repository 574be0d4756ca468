"""Change points in a case's step-time history: where it moved for good, by how much, how surely.

A pairwise gate sees one commit against its parent; a slowdown that arrives as ten commits of 1% each,
or a framework upgrade that shifts a case by 4%, passes it (asv's issue 932). Change-point detection
looks at the whole series instead:

0. **Outliers out**: a run that shared the machine with something else reads 30-60% slow, and in a
   history of 17 points one such run at the wrong place hid an injected 15% slowdown (permutation p
   0.018-0.032 on ranks, two real histories, docs/measurements.md "Change points: a real history"). A
   Hampel filter (each point against the median of the five around it, in units of the series' noise;
   Pearson 2002) replaces such a slow point by that median before anything else. A plateau of three
   points or more (`min_size`) survives it, so no change can be filtered away. On synthetic
   histories of 17 points with 2.5% noise and 12% outlier runs (30-60% slow) it lifts the detection of a
   10% step from 44% to 90% of 200 histories, with no change found in any of 200 flat ones either way
   (tests/unit/test_changes.py checks at least 80% and at most 2%).
1. **Candidates**: `ruptures`' binary segmentation (`Binseg`) with its rank cost (`model="rank"`:
   step times carry outliers, a process that shared the machine with something else, and a rank does
   not care how far out one lies), segments of at least `min_size` points, one candidate per
   2 x min_size points at most. ruptures was chosen over
   Apache Otava (its package pins NumPy 2.2 and brings BigQuery, Slack and Postgres clients) and
   MongoDB's signal-processing-algorithms (NumPy < 2, Python 3.11 only, gevent): it needs only NumPy
   and SciPy, ships wheels for every platform and is tested and maintained.
2. **Significance**: each candidate is kept only when the segments on its two sides differ by at
   least `min_magnitude` (ratio of their medians) and a permutation test says the split is not chance:
   the statistic is the best split's reduction of the squared error of the ranks over the two segments
   together, compared with the best split of PERMUTATIONS random orders of the same points (E-divisive's
   way of testing, Matteson and James 2014, as Otava and MongoDB do), so searching for the best split is
   paid for in the p value (a t-test on the chosen split would not be: it reads 3-7% false changes on flat
   series), and on ranks, so three outliers of 60% cannot hide a 20% step (on the squared error of log
   times they did: p 0.064 on a history with an injected step). A candidate that fails is removed and its neighbours are tested again on the
   merged segments, until every remaining change passes. One noisy point cannot be a change: no segment
   is shorter than `min_size`, and a median does not follow one outlier.

A slow creep (1% a commit) becomes one change in the middle of the ramp whose size is the accumulated
shift, which is what asv's fix for issue 932 compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_MIN_SIZE = 3  # points per segment: no change rests on fewer
# The Hampel filter: a window of 2 x HAMPEL_HALF_WIDTH + 1 points; an outlier lies more than HAMPEL_SIGMAS
# robust standard deviations above the window's median; the deviation is floored at HAMPEL_FLOOR (log
# scale, about 1%) so that on a very quiet series a 3% wobble is not called an outlier.
HAMPEL_HALF_WIDTH = 2
HAMPEL_SIGMAS = 3.0
HAMPEL_FLOOR = 0.01
DEFAULT_ALPHA = 0.01
# The smallest relative change worth reporting. From the A/A spread of the `ci` matrix's history on the
# 2-core CI machine (docs/measurements.md, "Change points: a real history"): over 17 commits that changed
# no code, the medians of two segments of a case differed by 2.8-8.5% at the most favourable split, and
# the permutation test let one of those through (a 5.0% drift of the machine); 5% with p < 0.01 keeps such
# histories nearly quiet while a 10% step is still found (90% of synthetic histories, tests).
DEFAULT_MIN_MAGNITUDE = 0.05


@dataclass(frozen=True)
class Change:
    index: int  # the first point of the new segment
    before_ms: float  # the median of the segment before it (outlier runs replaced, see hampel)
    after_ms: float  # ... and of the one after
    p_value: float

    @property
    def ratio(self) -> float:
        return self.after_ms / self.before_ms

    @property
    def slowdown(self) -> bool:
        return self.ratio > 1


def hampel(y: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """(the series with its slow outliers replaced by their window's median, the outliers' indices); y on a
    log scale. Two departures from the textbook filter, both measured on real histories: the scale is the
    whole series' noise, from the median distance between neighbours (1.4826 x median |y[i] - y[i-1]| / sqrt 2:
    a step moves one difference only), because a five-point window's own MAD collapses whenever three of its
    points agree by chance and then calls a 3% wobble an outlier; and only slow points are outliers,
    because contention only ever adds time (a step has a floor, not a ceiling)."""
    n = len(y)
    local = np.array([np.median(y[max(0, i - HAMPEL_HALF_WIDTH) : i + HAMPEL_HALF_WIDTH + 1]) for i in range(n)])
    sigma = max(1.4826 * float(np.median(np.abs(np.diff(y)))) / np.sqrt(2), HAMPEL_FLOOR) if n > 1 else HAMPEL_FLOOR
    out = [i for i in range(n) if y[i] - local[i] > HAMPEL_SIGMAS * sigma]
    z = y.copy()
    z[out] = local[out]
    return z, out


def candidates(y: np.ndarray, min_size: int) -> list[int]:
    """Change-point candidates (indices of the first point of each new segment) from ruptures' Binseg on
    ranks; generous on purpose: the tests below prune them."""
    import ruptures as rpt

    n = len(y)
    if n < 2 * min_size:
        return []
    bkps = rpt.Binseg(model="rank", min_size=min_size, jump=1).fit(y.reshape(-1, 1)).predict(
        n_bkps=max(1, n // (2 * min_size)))
    return [b for b in bkps if b < n]


# The smallest p is 1/2000; the estimate of a p near 0.01 is within about 0.002 (a history of 12 points with
# a perfect step of 4 has p = 2/495 = 0.004: 499 permutations read it as 0.01 as often as not).
PERMUTATIONS = 1999


def best_gains(segments: np.ndarray, min_size: int) -> np.ndarray:
    """Per row of `segments` (each a series), the largest reduction of the squared error that one split
    into two parts of at least `min_size` points achieves (cumulative sums: all splits at once)."""
    m = segments.shape[1]
    total = segments.sum(axis=1, keepdims=True)
    left = np.cumsum(segments, axis=1)[:, min_size - 1 : m - min_size]  # split after index min_size-1 .. m-min_size-1
    k = np.arange(min_size, m - min_size + 1)  # points on the left
    right = total - left
    gain = left**2 / k + right**2 / (m - k) - total**2 / m  # SSE(all) - SSE(left) - SSE(right)
    return gain.max(axis=1)


def permutation_p(segment: np.ndarray, min_size: int, seed: int = 0) -> float:
    """P of the segment's best split (on ranks) being as good as it is by chance (its points in random order)."""
    from scipy.stats import rankdata

    if len(segment) < 2 * min_size or np.ptp(segment) == 0:
        return 1.0
    segment = rankdata(segment)
    observed = best_gains(segment[None, :], min_size)[0]
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(segment, (PERMUTATIONS, 1)), axis=1)
    return float((1 + np.sum(best_gains(shuffled, min_size) >= observed * (1 - 1e-12))) / (1 + PERMUTATIONS))


def _test(y: np.ndarray, values: np.ndarray, left: slice, right: slice, min_size: int) -> tuple[float, float, float]:
    """(median before, median after, permutation p) of two neighbouring segments."""
    p = permutation_p(y[left.start : right.stop], min_size, seed=left.start * 1000 + right.stop)
    return float(np.median(values[left])), float(np.median(values[right])), p


def settle(values: Sequence[float]) -> tuple[np.ndarray, list[int]]:
    """(the step times with their slow outlier runs replaced by `hampel`, the outliers' indices): a segment's
    level without the runs set aside is what the case costs when it has the machine. A series with a time
    that is not positive is returned as it is (it has no log scale)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0 or not np.all(x > 0):
        return x, []
    y, out = hampel(np.log(x))
    return np.exp(y), out


def detect(values: Sequence[float], min_size: int = DEFAULT_MIN_SIZE, min_magnitude: float = DEFAULT_MIN_MAGNITUDE,
           alpha: float = DEFAULT_ALPHA) -> list[Change]:
    """The significant changes of a series of step times (in history order), outlier runs set aside first."""
    return changes_of(settle(values)[0], min_size, min_magnitude, alpha)


def changes_of(x: np.ndarray, min_size: int, min_magnitude: float, alpha: float) -> list[Change]:
    """`detect` on a series that `settle` has already seen."""
    if x.size < 2 * min_size or not np.all(x > 0):
        return []
    y = np.log(x)
    kept = candidates(y, min_size)
    while True:
        bounds = [0, *kept, len(y)]
        tested = []
        for k in range(1, len(bounds) - 1):
            before, after, p = _test(y, x, slice(bounds[k - 1], bounds[k]), slice(bounds[k], bounds[k + 1]), min_size)
            tested.append(Change(bounds[k], before, after, p))
        weak = [c for c in tested if c.p_value >= alpha or abs(c.ratio - 1) < min_magnitude]
        if not weak:
            return tested
        # drop the weakest one and test the merged segments again
        worst = max(weak, key=lambda c: (c.p_value, -abs(c.ratio - 1)))
        kept = [i for i in kept if i != worst.index]


@dataclass(frozen=True)
class SeriesChanges:
    """A case's history on one machine, its changes and what its newest segment says."""

    case_id: str
    fingerprint: str
    machine: str
    points: int
    labels: tuple[str | None, ...]  # what names each point, in history order: its commit, or a version
    values: tuple[float, ...]
    changes: tuple[Change, ...]
    outliers: tuple[int, ...] = ()  # points the Hampel filter set aside (shown, never a change)
    commits: tuple[str | None, ...] = ()  # each point's commit, when the labels are versions
    settled: tuple[float, ...] = ()  # the values as the test saw them (`settle`); empty: the values themselves

    def levels(self) -> list[tuple[int, int, float]]:
        """(start, end, median) of each segment, outlier runs replaced as the test saw them: the levels
        that the changes' before and after are."""
        bounds = [0, *(c.index for c in self.changes), self.points]
        seen = np.asarray(self.settled or self.values)
        return [(a, b, float(np.median(seen[a:b]))) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]

    @property
    def newest_is_slowdown(self) -> bool:
        """Whether the newest segment is a significant slowdown against the one before it."""
        return bool(self.changes) and self.changes[-1].slowdown

    def first_after(self, change: Change) -> str | None:
        """The first commit (or version) of the new segment; a version that the segment before shares
        is no answer, so then its commit too ('2.13.0 @ 1f7ac4518')."""
        label = self.labels[change.index]
        if self.commits and change.index and self.labels[change.index - 1] == label:
            return f"{label} @ {(self.commits[change.index] or '?')[:9]}"
        return label


def analyse(points, min_size: int = DEFAULT_MIN_SIZE, min_magnitude: float = DEFAULT_MIN_MAGNITUDE,
            alpha: float = DEFAULT_ALPHA) -> list[SeriesChanges]:
    """Change points of every (case, machine) series of a history (bench/results/history.py)."""
    out = []
    for (case_id, fp), g in points.groupby(["case_id", "fingerprint"], sort=False):
        values = tuple(float(v) for v in g["step_time_ms"])
        settled, outliers = settle(values)  # once: the test, the outliers shown and the levels drawn share it
        labels = g["label"] if "label" in g else g["commit"]
        out.append(SeriesChanges(case_id, fp, str(g["machine"].iloc[0]), len(values), tuple(labels), values,
                                 tuple(changes_of(settled, min_size, min_magnitude, alpha)), tuple(outliers),
                                 tuple(g["commit"]) if not labels.equals(g["commit"]) else (),
                                 tuple(float(v) for v in settled)))
    return out
