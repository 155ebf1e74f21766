"""The object that carries stage-1 results along a scikit-learn Pipeline.

``MIInitializer.transform`` and ``LTRPretrainer.transform`` return a
:class:`PlantInput`: the raw documents together with the fitted upstream
steps (and so their shared tokenizer). The next step reads the fitted
statistics from it instead of recomputing them, and a Pipeline with
``memory=`` caches it like any transformer output.

Cross-validation splits the raw text before the pipeline runs, so the
statistics a PlantInput carries were always computed on the training fold
only. If a PlantInput itself is split by scikit-learn's indexing helpers it
degrades to a plain list of str, and the downstream estimator then refits the
stage-1 steps on that subset: the safe direction, never a leak.
"""

from collections.abc import Sequence

import numpy as np

__all__ = ["PlantInput"]


class PlantInput(Sequence):
    """Documents plus the fitted PLANT stage-1 steps.

    Parameters
    ----------
    texts : list of str
        The documents.
    mi : MIInitializer
        Fitted mutual-information step (owns the tokenizer).
    ltr : LTRPretrainer or None
        Fitted learning-to-rank step, when it has run.

    Notes
    -----
    Indexing with an int returns the document; with a slice, an index array
    or a boolean mask it returns a new PlantInput with the same fitted steps.
    """

    def __init__(self, texts, *, mi, ltr=None):
        self.texts = list(texts)
        self.mi = mi
        self.ltr = ltr

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.texts[key]
        if isinstance(key, slice):
            return PlantInput(self.texts[key], mi=self.mi, ltr=self.ltr)
        key = np.asarray(key)
        if key.dtype == bool:
            key = np.flatnonzero(key)
        return PlantInput([self.texts[i] for i in key], mi=self.mi, ltr=self.ltr)

    def __iter__(self):
        return iter(self.texts)

    def __repr__(self):
        stages = "MI" + (" + LTR" if self.ltr is not None else "")
        return f"PlantInput({len(self.texts)} documents, fitted {stages})"
