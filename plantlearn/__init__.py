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

__all__ = ["MIInitializer", "LTRPretrainer", "PlantClassifier", "PlantInput",
           "PretrainedEncoder", "__version__"]

# The estimators are imported on first use (PEP 562): ``import plantlearn.metrics`` and the
# numpy-only kernels then load without torch, which keeps light processes light (the
# benchmarks' comparators, a metrics-only user).
_LAZY = {"PlantClassifier": "._classifier", "PlantInput": "._input",
         "LTRPretrainer": "._ltr_pretrainer", "MIInitializer": "._mi_initializer",
         "PretrainedEncoder": "._pretrained"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
