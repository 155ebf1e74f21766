"""The first steps of ``PlantClassifier.fit``: the validation carve and stage 1 (MI, L2R).

The carve holds out a share of the training documents for everything the fit chooses on
data: early stopping, the evidence head's weight, the calibration and the decision rule.
Stage 1 (:class:`MIInitializer`, :class:`LTRPretrainer`) and the evidence head are fitted on
the rest only, so that those choices judge the model on documents it has not seen. Stage-1
steps fitted upstream in a pipeline (a :class:`PlantInput`) are reused as they are: they saw
everything they were given.
"""

import numpy as np
from sklearn.base import clone

from ._input import PlantInput
from ._ltr_pretrainer import LTRPretrainer
from ._mi_initializer import MIInitializer

__all__ = ["validation_carve", "fit_stage_one"]


def _same_tokenizer(fitted, path):
    """Whether a fitted tokenizer is the pretrained model's in ``path`` (same vocabulary)."""
    from ._pretrained import PretrainedTokenizer

    return (isinstance(fitted, PretrainedTokenizer)
            and fitted.get_vocabulary() == PretrainedTokenizer(path).fit(None).get_vocabulary())

#: Fewest training documents from which a validation share is carved at all.
MIN_DOCUMENTS_TO_CARVE = 10


def validation_carve(n_documents, fraction, seed):
    """Row indices (train, validation) of the carve, both sorted.

    The same for a given ``n_documents``, ``fraction`` and ``seed``; no carve (an empty
    validation part) below :data:`MIN_DOCUMENTS_TO_CARVE` documents.
    """
    rng = np.random.default_rng(seed)
    n_val = int(round(fraction * n_documents)) if n_documents >= MIN_DOCUMENTS_TO_CARVE else 0
    perm = rng.permutation(n_documents)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def fit_stage_one(texts, Y, rows, *, classes, upstream=None, mi=None, ltr=None, need_ltr,
                  seed, device="auto", verbose=0, tokenizer=None):
    """Fitted MI and L2R steps for a fit on ``texts[rows]``.

    Parameters
    ----------
    texts : list of str
        All training documents.
    Y : csr_matrix (n_documents, n_labels)
        Their labels, in the classifier's label order.
    rows : ndarray of int
        The training part of the validation carve.
    classes : ndarray
        Label names in column order (given to the fitted MI step, which otherwise only
        sees the indicator columns).
    upstream : PlantInput or None
        Stage-1 steps fitted upstream in a pipeline: reused (the L2R step is fitted here on
        ``rows`` if it is missing and needed).
    mi, ltr : MIInitializer / LTRPretrainer or None
        Templates (cloned) for the steps fitted here; defaults when None.
    need_ltr : bool
        Whether the L2R factors are needed (planting or static scores).
    seed : int
        Random state of an L2R template that has none.
    device : str
        Device of an L2R template left at "auto".
    verbose : int
        Verbosity of default steps.
    tokenizer : path or None
        A pretrained encoder's model directory: the MI step tokenizes with that model's
        tokenizer (whatever its template says), so that planting maps onto the positions
        the encoder reads.

    Returns
    -------
    mi : fitted MIInitializer
    ltr : fitted LTRPretrainer or None
    """
    train_texts = [texts[i] for i in rows]
    Y_train = Y[rows]
    if upstream is not None:
        fitted_mi = upstream.mi
        if tokenizer is not None and not _same_tokenizer(fitted_mi.tokenizer_, tokenizer):
            raise ValueError(
                "the upstream MIInitializer did not tokenize with the pretrained encoder's "
                f"tokenizer; set MIInitializer(tokenizer={str(tokenizer)!r}) in the pipeline.")
    else:
        fitted_mi = clone(mi) if mi is not None else MIInitializer(verbose=verbose)
        if tokenizer is not None:
            fitted_mi.set_params(tokenizer=str(tokenizer))
        fitted_mi.fit(train_texts, Y_train)
        fitted_mi.classes_ = np.asarray(classes)  # the whole label space, by name
    if not need_ltr:
        return fitted_mi, None
    if upstream is not None and upstream.ltr is not None:
        return fitted_mi, upstream.ltr
    fitted_ltr = clone(ltr) if ltr is not None else LTRPretrainer(verbose=verbose)
    if fitted_ltr.random_state is None:
        fitted_ltr.set_params(random_state=seed)
    if fitted_ltr.device == "auto" and device != "auto":
        fitted_ltr.set_params(device=device)
    fitted_ltr.fit(PlantInput(train_texts, mi=fitted_mi), Y_train)
    return fitted_mi, fitted_ltr
