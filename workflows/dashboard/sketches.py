"""Latency sketches: durations counted per logarithmic bucket, so that summaries of
two spans add up and percentiles are known to within ``SKETCH_ACCURACY``."""

from __future__ import annotations

import math

from django.db.models import IntegerField, Value
from django.db.models.functions import Cast, Ceil, Greatest, Ln

# Latency sketches: a duration of x seconds falls in bucket ceil(log(x) / log(gamma));
# the bucket's middle value is within SKETCH_ACCURACY of every duration in it.
SKETCH_ACCURACY = 0.01
SKETCH_GAMMA = (1 + SKETCH_ACCURACY) / (1 - SKETCH_ACCURACY)


def sketch_bucket(seconds) -> Cast:
    """The sketch bucket of a duration, in SQL; a second or less is bucket 0."""
    return Cast(Ceil(Ln(Greatest(seconds, Value(1.0))) / Value(math.log(SKETCH_GAMMA))),
                IntegerField())


def bucket_value(bucket: int) -> float:
    """The duration a bucket stands for: within ``SKETCH_ACCURACY`` of all it holds."""
    return 2 * SKETCH_GAMMA ** bucket / (SKETCH_GAMMA + 1)


def sketch_percentile(sketch: dict[int, int], fraction: float) -> float | None:
    """``percentile_cont`` over the sketched durations: linear interpolation between the
    two closest ranks, each known to within ``SKETCH_ACCURACY``."""
    total = sum(sketch.values())
    if not total:
        return None
    position = fraction * (total - 1)
    wanted = (math.floor(position), math.ceil(position))
    found: list[float] = []
    seen = 0
    for bucket in sorted(sketch):
        seen += sketch[bucket]
        while len(found) < 2 and wanted[len(found)] < seen:
            found.append(bucket_value(bucket))
    lower, upper = found
    return lower + (upper - lower) * (position - wanted[0])


def bucket_of(seconds: float) -> int:
    """``sketch_bucket`` in Python."""
    return max(0, math.ceil(math.log(max(seconds, 1.0)) / math.log(SKETCH_GAMMA)))
