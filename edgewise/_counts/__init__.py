"""Number systems for path counts: exact Python ints, scaled float64, and float64 logarithms.

All expose the same few operations the pathway engine needs, so the engine is
written once:

* ``ExactCounts``: numpy object arrays of Python ints.
* ``ScaledCounts`` (the float default): linear float64 mantissas times one
  power of two per array, ``count = m * 2**e``. Every step of the engine is a
  sum of non-negative terms with integer weights ≥ 1, so it is as accurate in
  linear float64 as in logarithms (each sum of non-negative terms is
  well-conditioned) and needs no ``log``/``exp`` per element. Bounds on the
  largest and smallest non-zero mantissa are carried along, and an array is
  rescaled by an exact power of two before it could overflow. When one array's
  counts span more than float64's range (about 10^600 between its smallest and
  largest non-zero count) it raises :class:`OutOfRange`, and the engine
  starts again with ``LogCounts``.
* ``LogCounts``: natural logarithms (−inf for zero), for any dynamic range; its
  spatial step multiplies in linear space after subtracting each fibre's
  maximum, and falls back to a log-sum-exp when a fibre spans more than
  ``_SAFE`` nats (where the small entries would underflow).

A spatial step applies, along each axis, the transpose of one integer matrix
(:class:`AxisMap`). Small matrices are used densely (banded into blocks when
that saves work); long axes (1-D inputs of thousands of positions) use the
matrix's non-zeros only, column group by column group, so time and memory grow
with the number of taps rather than the square of the length.
"""

from .common import AxisMap, OutOfRange
from .exact import ExactCounts
from .logspace import LogCounts
from .scaled import ScaledCounts

__all__ = ["AxisMap", "ExactCounts", "ScaledCounts", "LogCounts", "OutOfRange"]
