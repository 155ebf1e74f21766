"""Cross-validation for every target format plantlearn's estimators take.

:func:`cross_validate` and :func:`cross_val_score` mirror the scikit-learn functions of the same
name, but accept a CSR label matrix, a dense 0/1 array and label lists alike. scikit-learn 1.9's
own versions reject a sparse ``y`` in their parameter validation, and with label lists and an
int ``cv`` their classifier check calls ``type_of_target``, which refuses label lists as a
"legacy multi-label data representation".
"""

import numbers
import time
from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold

__all__ = ["cross_validate", "cross_val_score"]


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------


def _n_documents(X):
    """Number of documents in ``X``, or a TypeError for what cannot be split by index."""
    if isinstance(X, (str, bytes)):
        raise TypeError(
            f"X must be a sequence of documents (e.g. a list of str), got a single "
            f"{type(X).__name__}; wrap it in a list: [text]."
        )
    if X is None or isinstance(X, (Mapping, set, frozenset)):
        raise TypeError(
            "X must be a sequence of documents (e.g. a list of str) or an array indexable by "
            f"integer arrays, got {type(X).__name__}."
        )
    if sp.issparse(X) or isinstance(X, np.ndarray):
        if X.ndim == 0:
            raise TypeError("X must be a sequence of documents, got a 0-d array.")
        return X.shape[0]
    if not (hasattr(X, "__len__") and hasattr(X, "__getitem__")):
        raise TypeError(
            "X must be a sequence of documents (e.g. a list of str) or an array indexable by "
            f"integer arrays, got {type(X).__name__}."
        )
    return len(X)


def _n_targets(y):
    """Number of rows (sparse, arrays) or items (label lists) in ``y``; None for no ``y``."""
    if y is None:
        return None
    if isinstance(y, (str, bytes)):
        raise TypeError(
            f"y must be a label indicator matrix or a list of label lists, got a "
            f"{type(y).__name__}."
        )
    if sp.issparse(y) or isinstance(y, np.ndarray):
        if y.ndim == 0:
            raise TypeError("y must be a label indicator matrix or label lists, got a 0-d array.")
        return y.shape[0]
    if isinstance(y, (Mapping, set, frozenset)) or not (
        hasattr(y, "__len__") and hasattr(y, "__getitem__")
    ):
        raise TypeError(
            "y must be a label indicator matrix (sparse or dense) or a list of label lists, "
            f"got {type(y).__name__}."
        )
    return len(y)


def _take(data, idx):
    """The items ``idx`` of ``data``, per its format.

    Arrays and sparse matrices are indexed directly (CSR rows), pandas objects by position,
    anything else (lists of documents, label lists, nested-list indicators, a
    :class:`~plantlearn.PlantInput`) item by item into a new list. A PlantInput thus becomes a
    plain list of str, as with scikit-learn's indexing: the stage-1 statistics it carries saw
    the test documents, so each fold refits them on its training part.
    """
    if data is None:
        return None
    if sp.issparse(data) or isinstance(data, np.ndarray):
        return data[idx]
    if hasattr(data, "iloc"):
        return data.iloc[idx]
    return [data[i] for i in idx]


def _check_cv(cv, n):
    """A splitter (with ``split``) or a list of (train, test) pairs."""
    if cv is None:
        cv = 5
    if isinstance(cv, numbers.Integral) and not isinstance(cv, (bool, np.bool_)):
        if cv < 2:
            raise ValueError(f"cv must be at least 2 folds; got cv={cv}.")
        if cv > n:
            raise ValueError(
                f"cv={cv} folds need at least {cv} documents, but X has {n}; lower cv."
            )
        return KFold(n_splits=int(cv))
    if hasattr(cv, "split") and hasattr(cv, "get_n_splits"):
        return cv
    if isinstance(cv, (str, bytes, bool, np.bool_)) or not isinstance(cv, Iterable):
        raise TypeError(
            "cv must be an int (the number of KFold folds), a scikit-learn splitter or an "
            f"iterable of (train, test) index arrays; got {cv!r}."
        )
    return list(cv)


def _check_indices(idx, n, what):
    try:
        arr = np.asarray(idx)
    except (ValueError, TypeError):
        arr = np.asarray(idx, dtype=object)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"{what} is a boolean mask of shape {arr.shape}; expected ({n},).")
        arr = np.flatnonzero(arr)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{what} must be a 1-D array of integer indices.")
    if arr.size == 0:
        raise ValueError(f"{what} is empty.")
    if arr.min() < 0 or arr.max() >= n:
        raise ValueError(f"{what} has indices outside [0, {n}), the documents of X.")
    return arr.astype(np.intp)


def _folds(cv, X, y, n):
    """The validated (train, test) index arrays of every fold."""
    pairs = cv.split(X, y) if hasattr(cv, "split") else cv
    folds = []
    for i, pair in enumerate(pairs):
        try:
            train, test = pair
        except (TypeError, ValueError):
            raise TypeError(
                f"cv must yield (train, test) pairs of index arrays; fold {i} is {pair!r}."
            ) from None
        folds.append((
            _check_indices(train, n, f"the training part of cv fold {i}"),
            _check_indices(test, n, f"the test part of cv fold {i}"),
        ))
    if not folds:
        raise ValueError("cv gave no (train, test) split.")
    return folds


def _estimator_score(estimator, X, y):
    """``scoring=None``: the estimator's own ``score`` method."""
    return estimator.score(X, y)


def _resolve_one(scoring, where="scoring"):
    if isinstance(scoring, str):
        return get_scorer(scoring)
    if callable(scoring):
        return scoring
    raise TypeError(
        f"{where} must be a scorer name (str) or a callable scorer(estimator, X, y); "
        f"got {scoring!r}."
    )


def _check_scoring(estimator, scoring):
    """A single scorer, or a dict ``{name: scorer}`` for several."""
    if scoring is None:
        if not hasattr(estimator, "score"):
            raise TypeError(
                f"scoring=None uses the estimator's score method, but "
                f"{type(estimator).__name__} has none; pass scoring=."
            )
        return _estimator_score
    if isinstance(scoring, Mapping):
        if not scoring:
            raise ValueError("scoring is an empty dict; name at least one scorer.")
        scorers = {}
        for name, scorer in scoring.items():
            if not isinstance(name, str):
                raise TypeError(f"the names of a scoring dict must be str; got {name!r}.")
            scorers[name] = _resolve_one(scorer, where=f"scoring[{name!r}]")
        return scorers
    if isinstance(scoring, (list, tuple, set, frozenset)):
        if not scoring or not all(isinstance(name, str) for name in scoring):
            raise ValueError(
                "a list of scorings must hold scorer names (str); use a dict "
                "{name: scorer} for callables."
            )
        return {name: get_scorer(name) for name in scoring}
    return _resolve_one(scoring)


# --------------------------------------------------------------------------------------------
# Folds
# --------------------------------------------------------------------------------------------


def _as_score(value, name):
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"scoring must return a number, got {value!r} ({type(value).__name__}) "
            f"from {name}."
        )
    return float(value)


def _score(estimator, X, y, scorers):
    """A float, or a dict of floats for a dict of scorers or a scorer that returns one."""
    if isinstance(scorers, dict):
        return {
            name: _as_score(scorer(estimator, X, y), f"scoring[{name!r}]")
            for name, scorer in scorers.items()
        }
    value = scorers(estimator, X, y)
    if isinstance(value, Mapping):
        return {str(name): _as_score(v, f"scoring[{name!r}]") for name, v in value.items()}
    return _as_score(value, "scoring")


def _fit_and_score(estimator, X, y, train, test, scorers, return_train_score, fold, n_folds,
                   verbose):
    X_train, X_test = _take(X, train), _take(X, test)
    y_train, y_test = _take(y, train), _take(y, test)
    start = time.perf_counter()
    if y is None:
        estimator.fit(X_train)
    else:
        estimator.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    start = time.perf_counter()
    test_scores = _score(estimator, X_test, y_test, scorers)
    score_time = time.perf_counter() - start
    result = {
        "fit_time": fit_time,
        "score_time": score_time,
        "test_scores": test_scores,
        "estimator": estimator,
    }
    if return_train_score:
        result["train_scores"] = _score(estimator, X_train, y_train, scorers)
    if verbose > 1:
        shown = (
            ", ".join(f"{k}={v:.4f}" for k, v in test_scores.items())
            if isinstance(test_scores, dict)
            else f"{test_scores:.4f}"
        )
        print(
            f"[CV] fold {fold + 1}/{n_folds}: test {shown} (fit {fit_time:.1f}s, "
            f"score {score_time:.1f}s)",
            flush=True,
        )
    return result


def _gather(results, key):
    """Per-name arrays of the fold scores under ``key``."""
    first = results[0][key]
    if not isinstance(first, dict):
        if any(isinstance(r[key], dict) for r in results):
            raise ValueError("the scorer returned a dict for some folds and a number for others.")
        return {"score": np.array([r[key] for r in results], dtype=np.float64)}
    names = list(first)
    for r in results:
        if not isinstance(r[key], dict) or list(r[key]) != names:
            raise ValueError("the scorer returned different metric names in different folds.")
    return {name: np.array([r[key][name] for r in results], dtype=np.float64) for name in names}


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def cross_validate(estimator, X, y, *, scoring=None, cv=5, n_jobs=None, verbose=0,
                   return_estimator=False, return_train_score=False):
    """Evaluate an estimator by cross-validation, on any target format.

    Like :func:`sklearn.model_selection.cross_validate` (same results structure), but ``y``
    may be a CSR label matrix, a dense 0/1 array or a list of label lists, the three target
    formats :class:`~plantlearn.PlantClassifier` takes; scikit-learn 1.9's version rejects a
    sparse ``y`` and, for classifiers with an int ``cv``, label lists. Each fold fits a clone
    (:func:`sklearn.base.clone`) of ``estimator`` on its training part and scores its test
    part.

    Parameters
    ----------
    estimator : estimator object
        Unfitted estimator (e.g. a ``PlantClassifier`` or a Pipeline ending in one); it is
        cloned for every fold and never fitted itself.
    X : list of str, or array-like indexable by integer arrays
        The documents. Lists (and other sequences, such as a ``PlantInput``) are split into
        new lists of documents; numpy arrays, sparse matrices and pandas objects are indexed
        by position. A ``PlantInput`` thus reaches each fold as a plain list, and the fold
        refits the stage-1 statistics on its training part (they would otherwise have seen
        the test documents).
    y : sparse matrix, 0/1 array of shape (n_documents, n_labels), or list of label lists
        The labels, split per format: CSR rows, array rows or list items. ``None`` fits
        ``estimator.fit(X_train)`` without labels.
    scoring : str, callable, list of str or dict, default=None
        ``None``: ``estimator.score`` (subset accuracy for ``PlantClassifier``). A callable
        ``scorer(estimator, X, y) -> float``, such as
        :func:`plantlearn.metrics.precision_at_k_scorer` or
        :func:`plantlearn.metrics.micro_f1_scorer`, which accept every target format; a
        callable may also return a dict ``{name: float}``. A str is resolved with
        :func:`sklearn.metrics.get_scorer`: scikit-learn's scorers such as ``"f1_micro"`` work
        on indicator targets but not on label lists (scikit-learn rejects them as a legacy
        multi-label format); use ``micro_f1_scorer()`` there. A dict ``{name: scorer}`` (or a
        list of names) evaluates several scorers on the same fits.
    cv : int, splitter or iterable, default=5
        An int is the number of folds of ``KFold(n_splits=cv)`` (no shuffling), which is what
        scikit-learn uses for multi-label indicator targets too; it must lie in
        ``[2, n_documents]``. Or any scikit-learn splitter (its ``split(X, y)`` is called:
        stratified and group splitters do not support multi-label targets), or an iterable of
        ``(train, test)`` index arrays.
    n_jobs : int, default=None
        Folds run in parallel with :class:`joblib.Parallel`; ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context, ``-1`` means all processors.
    verbose : int, default=0
        Passed to :class:`joblib.Parallel`; above 1, a line per fold is printed too.
    return_estimator : bool, default=False
        Whether to return the fitted estimator of every fold.
    return_train_score : bool, default=False
        Whether to score the training part of every fold as well.

    Returns
    -------
    scores : dict of ndarray of shape (n_folds,)
        ``fit_time`` and ``score_time`` (seconds; the score time covers the test part), then
        ``estimator`` (a list, with ``return_estimator=True``), then ``test_score`` for a
        single scorer, or ``test_<name>`` for every name of a dict of scorers, each followed
        by its ``train_score`` / ``train_<name>`` with ``return_train_score=True``.

    Raises
    ------
    TypeError
        If ``X`` is a single str or not indexable, ``y`` is not a target, ``cv`` is of an
        unknown kind, or ``scoring=None`` and the estimator has no ``score``.
    ValueError
        If ``X`` and ``y`` describe different numbers of documents, an int ``cv`` is below 2
        or above the number of documents, or a fold's indices are empty or out of range.

    Notes
    -----
    Errors raised while fitting or scoring a fold propagate (scikit-learn's
    ``error_score="raise"``); no fold is silently scored NaN.

    See Also
    --------
    cross_val_score : the test scores of a single scorer.
    plantlearn.metrics.precision_at_k_scorer : scorers for every target format.

    Examples
    --------
    >>> from plantlearn import PlantClassifier
    >>> from plantlearn.datasets import make_multilabel_text
    >>> from plantlearn.metrics import micro_f1_scorer, precision_at_k_scorer
    >>> from plantlearn.model_selection import cross_validate
    >>> X, Y = make_multilabel_text(n_samples=120, n_labels=5, vocab_size=200,
    ...                             length=(20, 60), random_state=0)
    >>> clf = PlantClassifier(max_iter=2, embed_dim=16, hidden_size=16, random_state=0)

    On the CSR label matrix:

    >>> result = cross_validate(clf, X, Y, scoring=precision_at_k_scorer(k=1), cv=3)
    >>> sorted(result)
    ['fit_time', 'score_time', 'test_score']
    >>> result["test_score"].shape
    (3,)

    On label lists, with several scorers; each fold's model maps them with its classes_:

    >>> names = ["earn", "grain", "wheat", "trade", "crude"]
    >>> labels = [[names[j] for j in row.indices] for row in Y]
    >>> scoring = {"p@1": precision_at_k_scorer(k=1), "f1": micro_f1_scorer()}
    >>> result = cross_validate(clf, X, labels, scoring=scoring, cv=3,
    ...                         return_train_score=True)
    >>> sorted(result)
    ['fit_time', 'score_time', 'test_f1', 'test_p@1', 'train_f1', 'train_p@1']
    """
    if isinstance(X, Iterator):
        X = list(X)
    if isinstance(y, Iterator):
        y = list(y)
    n = _n_documents(X)
    n_y = _n_targets(y)
    if n_y is not None and n_y != n:
        raise ValueError(
            f"X has {n} documents but y describes {n_y}; they must describe the same documents."
        )
    if n == 0:
        raise ValueError("X is empty: cross-validation needs documents.")
    if sp.issparse(y):
        if y.ndim != 2:
            raise ValueError(f"a sparse y must be 2-D (documents x labels); got {y.shape}.")
        y = sp.csr_matrix(y)  # row-indexable
    if sp.issparse(X):
        X = sp.csr_matrix(X)
    scorers = _check_scoring(estimator, scoring)
    folds = _folds(_check_cv(cv, n), X, y, n)
    parallel = Parallel(n_jobs=n_jobs, verbose=verbose)
    results = parallel(
        delayed(_fit_and_score)(
            clone(estimator), X, y, train, test, scorers, return_train_score, i, len(folds),
            verbose,
        )
        for i, (train, test) in enumerate(folds)
    )
    out = {
        "fit_time": np.array([r["fit_time"] for r in results], dtype=np.float64),
        "score_time": np.array([r["score_time"] for r in results], dtype=np.float64),
    }
    if return_estimator:
        out["estimator"] = [r["estimator"] for r in results]
    test = _gather(results, "test_scores")
    train = _gather(results, "train_scores") if return_train_score else {}
    for name, values in test.items():
        out[f"test_{name}"] = values
        if return_train_score:
            out[f"train_{name}"] = train[name]
    return out


def cross_val_score(estimator, X, y, *, scoring=None, cv=5, n_jobs=None, verbose=0):
    """Cross-validated scores of one scorer, on any target format.

    Like :func:`sklearn.model_selection.cross_val_score`, but ``y`` may be a CSR label matrix,
    a dense 0/1 array or a list of label lists (see :func:`cross_validate`, which this calls).

    Parameters
    ----------
    estimator : estimator object
        Unfitted estimator, cloned for every fold.
    X : list of str, or array-like indexable by integer arrays
        The documents.
    y : sparse matrix, 0/1 array of shape (n_documents, n_labels), or list of label lists
        The labels.
    scoring : str or callable, default=None
        A single scorer: ``None`` for ``estimator.score``, a callable
        ``scorer(estimator, X, y) -> float`` (e.g. ``precision_at_k_scorer(k=1)``, which
        accepts every target format) or a scikit-learn scorer name (indicator targets only).
    cv : int, splitter or iterable, default=5
        An int means ``KFold(n_splits=cv)``; see :func:`cross_validate`.
    n_jobs : int, default=None
        Number of folds run in parallel (:class:`joblib.Parallel`).
    verbose : int, default=0
        Verbosity.

    Returns
    -------
    scores : ndarray of shape (n_folds,)
        The test score of every fold.

    Raises
    ------
    ValueError
        If ``scoring`` names several scorers (use :func:`cross_validate`), and see
        :func:`cross_validate`.

    Examples
    --------
    >>> from plantlearn import PlantClassifier
    >>> from plantlearn.datasets import make_multilabel_text
    >>> from plantlearn.metrics import precision_at_k_scorer
    >>> from plantlearn.model_selection import cross_val_score
    >>> X, Y = make_multilabel_text(n_samples=120, n_labels=5, vocab_size=200,
    ...                             length=(20, 60), random_state=0)
    >>> clf = PlantClassifier(max_iter=2, embed_dim=16, hidden_size=16, random_state=0)
    >>> p1_csr = cross_val_score(clf, X, Y, scoring=precision_at_k_scorer(k=1), cv=3)
    >>> labels = [[f"label{j}" for j in row.indices] for row in Y]
    >>> p1_lists = cross_val_score(clf, X, labels, scoring=precision_at_k_scorer(k=1), cv=3)
    >>> p1_lists.shape
    (3,)
    """
    if isinstance(scoring, (Mapping, list, tuple, set, frozenset)):
        raise ValueError(
            "cross_val_score takes a single scorer; use cross_validate for several."
        )
    result = cross_validate(estimator, X, y, scoring=scoring, cv=cv, n_jobs=n_jobs,
                            verbose=verbose)
    if set(result) != {"fit_time", "score_time", "test_score"}:
        raise ValueError(
            "cross_val_score takes a scorer that returns one number; this one returned a dict "
            "(use cross_validate)."
        )
    return result["test_score"]
