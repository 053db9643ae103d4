"""Diagrams (matplotlib Displays, scikit-learn conventions).

matplotlib is imported only when something is drawn, so importing this package
works without it.  No function here calls ``plt.show()``; every Display keeps
its figure in ``figure_`` and its artists as attributes, so tests (and users)
can check what was drawn.
"""

from calkit.plotting.cumulative import CumulativeCalibrationDisplay
from calkit.plotting.curves import OODRocDisplay, RiskCoverageDisplay
from calkit.plotting.figures import evaluation_figures
from calkit.plotting.gamma import GammaDynamicsDisplay
from calkit.plotting.histogram import ConfidenceHistogramDisplay
from calkit.plotting.reliability import ReliabilityDisplay

__all__ = [
    "ConfidenceHistogramDisplay",
    "CumulativeCalibrationDisplay",
    "GammaDynamicsDisplay",
    "OODRocDisplay",
    "ReliabilityDisplay",
    "RiskCoverageDisplay",
    "evaluation_figures",
]

from calkit.plotting.multilabel import plot_multilabel_reliability  # noqa: E402

__all__ += ["plot_multilabel_reliability"]
