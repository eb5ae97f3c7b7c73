"""PromQL function implementations of the numpy evaluator.

Importing this package registers every function in
:data:`promlab.promql.eval.registry.FUNCTION_IMPLS` (and, via
:mod:`promlab.promql.eval.aggregations`, every aggregation).
"""

from promlab.promql.eval import aggregations as aggregations
from promlab.promql.eval.functions import duration as duration
from promlab.promql.eval.functions import histogram as histogram
from promlab.promql.eval.functions import labels as labels
from promlab.promql.eval.functions import math as math
from promlab.promql.eval.functions import misc as misc
from promlab.promql.eval.functions import overtime as overtime
from promlab.promql.eval.functions import rangefuncs as rangefuncs
from promlab.promql.eval.functions import time as time

__all__ = ["aggregations", "duration", "histogram", "labels", "math", "misc", "overtime", "rangefuncs", "time"]
