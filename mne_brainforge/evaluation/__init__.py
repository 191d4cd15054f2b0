"""Evaluation stage: one simulate -> estimate -> score runner and its configurations.

:mod:`.testdata` draws test data that share nothing with training;
:mod:`.runner` runs every method on them and scores the estimates;
:mod:`.benchmark` and :mod:`.demo` are configurations of it (plus, for the
demo, the real SEP of :mod:`.real_data`); :mod:`.report` writes the results.
"""

from .benchmark import run_benchmark
from .demo import run_demo
from .methods import METHODS, make_methods
from .runner import SCENARIOS, Scenario, run_evaluation

__all__ = [
    "METHODS",
    "SCENARIOS",
    "Scenario",
    "make_methods",
    "run_benchmark",
    "run_demo",
    "run_evaluation",
]
