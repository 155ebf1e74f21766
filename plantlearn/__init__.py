"""plantlearn: extreme multi-label text classification with planted attention (PLANT).

Label-wise attention is not learnt from a random start but planted from a
learning-to-rank model that ranks, for every label, the vocabulary by its
mutual-information gain with that label (Saha Roy, Wallace, Aslam,
arXiv 2410.23066).

The three estimators follow scikit-learn's conventions and compose in a
Pipeline::

    make_pipeline(MIInitializer(), LTRPretrainer(), PlantClassifier())

Public helper modules: :mod:`plantlearn.metrics`, :mod:`plantlearn.datasets` and
:mod:`plantlearn.model_selection`.
"""

__version__ = "0.1.0"

from ._classifier import PlantClassifier
from ._input import PlantInput
from ._ltr_pretrainer import LTRPretrainer
from ._mi_initializer import MIInitializer

__all__ = ["MIInitializer", "LTRPretrainer", "PlantClassifier", "PlantInput", "__version__"]
