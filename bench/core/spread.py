"""The one coefficient of variation every figure uses (step_time_cv, compare's and ab's noise, the view's
between-process spread)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def cv(values: Sequence[float] | np.ndarray) -> float:
    """Sample coefficient of variation: the standard deviation with Bessel's correction (ddof=1) over
    the mean. NaN where it is undefined: fewer than two values, or a mean that is not positive."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return math.nan
    mean = float(x.mean())
    return float(x.std(ddof=1) / mean) if mean > 0 else math.nan


def cv_or_inf(values: Sequence[float] | np.ndarray) -> float:
    """cv, with an undefined spread read as unbounded: what a noise limit must reject."""
    c = cv(values)
    return math.inf if math.isnan(c) else c
