"""Input checks shared by every estimator: texts, label targets and devices.

Errors are raised here, before any torch code runs, so that a user sees which
argument is wrong instead of a shape error from deep inside a model.
"""

from collections.abc import Iterable, Mapping, Set
from numbers import Number

import numpy as np
import scipy.sparse as sp

__all__ = ["check_texts", "check_targets", "targets_to_format", "resolve_device",
           "label_position"]


def check_texts(X, *, name="X", allow_empty_corpus=False):
    """Return ``X`` as a list of str, or raise a clear error.

    A bare string is rejected (as sklearn's CountVectorizer does): iterating
    over it would treat each character as a document.
    """
    if isinstance(X, (str, bytes)):
        raise TypeError(
            f"{name} must be an iterable of str documents, got a single "
            f"{type(X).__name__}; wrap it in a list: [text]."
        )
    if sp.issparse(X) or (isinstance(X, np.ndarray) and X.ndim != 1):
        raise TypeError(
            f"{name} must be a 1-D iterable of str documents (raw text), got "
            f"{type(X).__name__} with shape {getattr(X, 'shape', None)}."
        )
    if not isinstance(X, Iterable):
        raise TypeError(
            f"{name} must be an iterable of str documents, got {type(X).__name__}."
        )
    if isinstance(X, (Mapping, Set)):
        # Their order is not the order of the targets' rows (a dict iterates its keys).
        raise TypeError(
            f"{name} must be an ordered sequence of str documents (a list, tuple or array), "
            f"got a {type(X).__name__}."
        )
    texts = list(X)
    for i, doc in enumerate(texts):
        if not isinstance(doc, str):
            raise TypeError(
                f"{name}[{i}] is {type(doc).__name__}, expected str; every "
                f"document must be a string of raw text."
            )
    if not texts and not allow_empty_corpus:
        raise ValueError(f"{name} is empty: at least one document is required.")
    return texts


def _is_label_lists(Y):
    """True for a sequence of label collections such as [["a", "b"], ["c"]]."""
    if isinstance(Y, (str, bytes)) or sp.issparse(Y) or isinstance(Y, np.ndarray):
        return False
    if not isinstance(Y, Iterable):
        return False
    Y = list(Y)
    if not Y or not all(isinstance(row, (list, tuple, set, frozenset)) for row in Y):
        return False
    # Equal-length rows of 0/1 numbers are an indicator matrix written as
    # nested lists (sklearn's type_of_target reads them so), not label names.
    indicator = (
        all(isinstance(row, (list, tuple)) for row in Y)
        and len({len(row) for row in Y}) == 1
        and len(Y[0]) > 0
        and all(
            isinstance(v, (Number, np.number, np.bool_))
            and not isinstance(v, complex)
            and v in (0, 1)
            for row in Y for v in row
        )
    )
    return not indicator


def check_targets(Y, n_samples=None, *, classes=None, name="Y", require_positive=True):
    """Validate a multi-label target and return it as CSR.

    Parameters
    ----------
    Y : sparse matrix, 2-D array-like of 0/1, or list of label collections
        The label indicator matrix (documents x labels), or one collection of
        label names per document.
    n_samples : int, optional
        Number of documents ``Y`` must describe.
    classes : array-like, optional
        Fixed label space for label lists (names in column order). Labels
        outside it raise an error naming them.
    require_positive : bool
        Raise when ``Y`` holds no positive label at all (nothing to learn).

    Returns
    -------
    Y_csr : scipy.sparse.csr_matrix of float32, shape (n_samples, n_labels)
    kind : {"sparse", "dense", "labels"}
        The input format, so that predictions can mirror it.
    classes : ndarray
        Label names for label lists, else ``arange(n_labels)``.
    """
    if Y is None:
        raise ValueError(f"{name} is required: a label indicator matrix or label lists.")
    if _is_label_lists(Y):
        rows = [list(r) for r in Y]
        if classes is None:
            seen = {lab for r in rows for lab in r}
            try:
                classes = np.array(sorted(seen))
            except TypeError:
                classes = np.array(sorted(seen, key=str), dtype=object)
        classes = np.asarray(classes)
        index = {lab: j for j, lab in enumerate(classes.tolist())}
        indptr, indices = [0], []
        unknown = set()
        for r in rows:
            cols = set()
            for lab in r:
                j = index.get(lab)
                if j is None:
                    unknown.add(lab)
                else:
                    cols.add(j)
            indices.extend(sorted(cols))
            indptr.append(len(indices))
        if unknown:
            shown = sorted(map(str, unknown))[:5]
            raise ValueError(
                f"{name} contains {len(unknown)} label(s) never seen in training, "
                f"e.g. {shown}."
            )
        Y_csr = sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr),
            shape=(len(rows), len(classes)),
        )
        kind = "labels"
    elif sp.issparse(Y):
        if Y.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {Y.shape}.")
        Y_csr = sp.csr_matrix(Y, dtype=np.float32)
        Y_csr.sum_duplicates()
        Y_csr.eliminate_zeros()
        if Y_csr.nnz and not np.all(Y_csr.data == 1):
            raise ValueError(
                f"{name} must be a 0/1 label indicator matrix; found values "
                f"{np.unique(Y_csr.data)[:5].tolist()}."
            )
        kind = "sparse"
    else:
        try:
            arr = np.asarray(Y)
        except Exception as exc:  # ragged nested lists and the like
            raise ValueError(
                f"{name} must be a 2-D 0/1 indicator matrix or a list of label "
                f"lists; could not convert it: {exc}"
            ) from None
        if arr.ndim != 2:
            raise ValueError(
                f"{name} must be a 2-D label indicator matrix (documents x labels) "
                f"or a list of label lists, got an array of shape {arr.shape}. "
                f"For single-label data pass [[label] for label in y]."
            )
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == bool
        ):
            raise ValueError(
                f"{name} must hold 0/1 numbers, got dtype {arr.dtype}."
            )
        if not np.isin(arr, (0, 1)).all():
            bad = np.unique(arr[~np.isin(arr, (0, 1))])[:5].tolist()
            raise ValueError(
                f"{name} must be a 0/1 label indicator matrix; found values {bad}."
            )
        Y_csr = sp.csr_matrix(arr.astype(np.float32))
        kind = "dense"
    if n_samples is not None and Y_csr.shape[0] != n_samples:
        raise ValueError(
            f"X has {n_samples} documents but {name} has {Y_csr.shape[0]} rows; "
            f"they must describe the same documents."
        )
    if Y_csr.shape[1] == 0:
        raise ValueError(f"{name} has no label columns.")
    if require_positive and Y_csr.nnz == 0:
        raise ValueError(
            f"{name} has no positive label: every document is unlabelled, so "
            f"there is nothing to learn."
        )
    if classes is None:
        classes = np.arange(Y_csr.shape[1])
    return Y_csr, kind, np.asarray(classes)


def targets_to_format(Y_csr, kind, classes):
    """Turn a CSR 0/1 prediction into the format the model was fitted on."""
    if kind == "sparse":
        return Y_csr.astype(np.int64).tocsr()
    if kind == "dense":
        return Y_csr.toarray().astype(np.int64)
    Y_csr = Y_csr.tocsr()
    return [
        [classes[j] for j in Y_csr.indices[Y_csr.indptr[i]:Y_csr.indptr[i + 1]]]
        for i in range(Y_csr.shape[0])
    ]


def resolve_device(device):
    """Map ``"auto"`` to CUDA when available, else CPU; validate the rest."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this "
            f"machine; use device='auto' or 'cpu'."
        )
    return dev


def label_position(classes, label):
    """Column index of a label: an int is a column index, anything else a name in ``classes``."""
    classes = np.asarray(classes)
    n = classes.size
    if isinstance(label, (int, np.integer)) and not isinstance(label, (bool, np.bool_)):
        if not 0 <= label < n:
            raise ValueError(f"label index {label} is out of range [0, {n}).")
        return int(label)
    hits = np.flatnonzero(classes == label)
    if hits.size == 0:
        raise ValueError(f"unknown label {label!r}; it is not one of the training labels.")
    return int(hits[0])
