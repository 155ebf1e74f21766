"""MIInitializer: PLANT stage 1a as a scikit-learn transformer."""

import os
import time
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._input import PlantInput
from ._mi import NORMALIZATIONS, binary_document_term_matrix, log_scale_grades, mutual_information
from ._tokenize import TextTokenizer
from ._validation import check_targets, check_texts, label_position

__all__ = ["MIInitializer"]

_TOKENIZER_KINDS = ("word", "wordpiece", "bpe")


def text_input_tags(tags):
    """Mark an estimator as taking raw text (sklearn's CountVectorizer contract)."""
    tags.input_tags.string = True
    tags.input_tags.two_d_array = False
    tags.target_tags.required = True
    # Not two_d_labels: sklearn reserves that for label transformers whose X *is*
    # the target (MultiLabelBinarizer), and its checks then call fit(y) alone.
    return tags


def make_tokenizer(kind, *, lowercase, min_frequency, max_vocab):
    """An unfitted tokenizer: a :class:`TextTokenizer` of ``kind``, or, when ``kind`` is the
    path of a pretrained model directory (or its ``tokenizer.json``), that model's own
    tokenizer (:class:`~plantlearn._pretrained.PretrainedTokenizer`)."""
    if isinstance(kind, str) and kind in _TOKENIZER_KINDS:
        return TextTokenizer(kind=kind, lowercase=lowercase, strip_accents=lowercase,
                             min_frequency=min_frequency, max_vocab=max_vocab)
    from pathlib import Path

    from ._pretrained import PretrainedTokenizer

    if not Path(kind).expanduser().exists():
        raise ValueError(
            f"tokenizer must be one of {', '.join(map(repr, _TOKENIZER_KINDS))} or the path of "
            f"a pretrained model directory or tokenizer.json; {os.fspath(kind)!r} is neither.")
    return PretrainedTokenizer(kind)


def tokenizer_constraints():
    """Parameter constraints of the tokenizer settings shared by the estimators."""
    return {
        # a kind, or the path of a pretrained model's tokenizer (checked in fit)
        "tokenizer": [str, os.PathLike],
        "lowercase": ["boolean"],
        "min_frequency": [Interval(Integral, 1, None, closed="left")],
        "max_vocab": [Interval(Integral, 2, None, closed="left"), None],
    }


class MIInitializer(TransformerMixin, BaseEstimator):
    """Rank the words of every label by mutual-information gain (PLANT stage 1a).

    Fits a tokenizer on the training documents, then computes for every
    (word, label) pair the mutual information between "the word occurs in the
    document" and "the label is assigned", normalised by their joint entropy as
    in the PLANT paper. Only positively associated pairs are kept (a word whose
    absence predicts a label is not something attention can point at), and of
    those the ``top_k`` best words of each label. The kept scores are turned
    into integer relevance grades for the learning-to-rank stage.

    Parameters
    ----------
    top_k : int, default=100
        Number of words kept per label.
    normalize : {"joint_entropy", "sqrt", "none"}, default="joint_entropy"
        ``I / H(T, L)`` as in the paper (in [0, 1]); ``I / sqrt(H(T) H(L))``;
        or raw mutual information in nats.
    n_grades : int, default=100
        Number of log-scale relevance grades (the best word of a label gets
        ``n_grades``, the tail of the kept words grade 1).
    tokenizer : {"word", "wordpiece", "bpe"} or path, default="word"
        Word-level tokens keep the statistics readable; subword tokenizers are
        available for morphologically rich text. A path to a pretrained model
        directory (or its ``tokenizer.json``) ranks that model's own subword
        vocabulary (``lowercase``, ``min_frequency`` and ``max_vocab`` are then
        ignored); a ``PlantClassifier`` with a ``PretrainedEncoder`` sets it.
    lowercase : bool, default=True
        Lowercase (and strip accents) before tokenizing.
    min_frequency : int, default=2
        Words seen fewer times in the training texts map to the unknown token.
    max_vocab : int or None, default=None
        Keep only the most frequent words.
    verbose : int, default=0
        Print timings when > 0.

    Attributes
    ----------
    tokenizer_ : TextTokenizer
        Tokenizer trained on the fit documents; shared with later stages.
    vocabulary_ : dict
        Word -> column index of ``mi_`` and ``grades_``.
    mi_ : scipy.sparse.csr_matrix of shape (n_labels, vocab_size)
        Normalised MI of the kept (label, word) pairs.
    grades_ : scipy.sparse.csr_matrix of shape (n_labels, vocab_size)
        Integer relevance grades with the sparsity of ``mi_``.
    label_document_frequency_ : ndarray of shape (n_labels,)
        Number of training documents of each label.
    token_document_frequency_ : ndarray of shape (vocab_size,)
        Number of training documents containing each word.
    empty_labels_ : ndarray
        Indices of labels without any training document (no words ranked).
    classes_ : ndarray
        Label names (for label-list targets) or column indices.
    n_documents_ : int
        Number of training documents.

    See Also
    --------
    LTRPretrainer : learns factors that reproduce these rankings.
    PlantClassifier : plants them into label-wise attention.

    Notes
    -----
    The co-occurrence counts are the sparse product ``Y^T B`` of the label
    matrix and the binary document-word matrix, computed in label chunks of
    bounded size, so memory stays bounded at MIMIC-III scale. Statistics come
    from the documents given to ``fit`` only; inside a Pipeline under
    cross-validation that is the training fold.

    References
    ----------
    Saha Roy, Wallace, Aslam. "Don't Pay Attention, PLANT It: Pretraining
    Attention via Learning-to-Rank", arXiv 2410.23066.

    Examples
    --------
    >>> from plantlearn import MIInitializer
    >>> from plantlearn.datasets import make_multilabel_text
    >>> X, Y = make_multilabel_text(n_samples=300, n_labels=5, random_state=0)
    >>> mi = MIInitializer(top_k=20).fit(X, Y)
    >>> words = mi.top_tokens(0, n=3)  # [(word, score), ...]
    """

    _parameter_constraints = {
        "top_k": [Interval(Integral, 1, None, closed="left")],
        "normalize": [StrOptions(set(NORMALIZATIONS))],
        "n_grades": [Interval(Integral, 2, None, closed="left")],
        **tokenizer_constraints(),
        "verbose": ["verbose"],
    }

    def __init__(self, *, top_k=100, normalize="joint_entropy", n_grades=100, tokenizer="word",
                 lowercase=True, min_frequency=2, max_vocab=None, verbose=0):
        self.top_k = top_k
        self.normalize = normalize
        self.n_grades = n_grades
        self.tokenizer = tokenizer
        self.lowercase = lowercase
        self.min_frequency = min_frequency
        self.max_vocab = max_vocab
        self.verbose = verbose

    def __sklearn_tags__(self):
        return text_input_tags(super().__sklearn_tags__())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, Y):
        """Tokenize the documents and rank every label's words by MI.

        Parameters
        ----------
        X : iterable of str
            Training documents (a :class:`PlantInput` is accepted too; its
            texts are used and its fitted steps ignored).
        Y : sparse matrix, 0/1 array of shape (n_documents, n_labels), or list of label lists
            Label assignments.

        Returns
        -------
        self : MIInitializer
        """
        texts = check_texts(X.texts if isinstance(X, PlantInput) else X)
        Y_csr, _, classes = check_targets(Y, len(texts))
        t0 = time.perf_counter()
        tok = make_tokenizer(self.tokenizer, lowercase=self.lowercase,
                             min_frequency=self.min_frequency, max_vocab=self.max_vocab).fit(texts)
        encoded = tok.encode(texts)
        n_empty = sum(1 for e in encoded if len(e) == 0)
        if n_empty == len(texts):
            raise ValueError("every document in X is empty after tokenization; nothing to learn from.")
        if n_empty:
            warnings.warn(
                f"{n_empty} of {len(texts)} training documents are empty after tokenization; "
                f"they contribute only to the label counts.", UserWarning, stacklevel=2,
            )
        t1 = time.perf_counter()
        B = binary_document_term_matrix(encoded, tok.vocab_size)
        del encoded
        mi, token_df, label_df = mutual_information(
            B, Y_csr, top_k=self.top_k, normalize=self.normalize,
        )
        grades = log_scale_grades(mi, self.n_grades)
        t2 = time.perf_counter()

        self.tokenizer_ = tok
        self.vocabulary_ = tok.get_vocabulary()
        self.mi_ = mi
        self.grades_ = grades
        self.token_document_frequency_ = token_df
        self.label_document_frequency_ = label_df
        # A fresh array, not flatnonzero's view: joblib.hash includes strides, an
        # empty view has (8,) but comes back from joblib's cache as (0,), so
        # Pipeline(memory=...) never found the steps after this one in its cache.
        self.empty_labels_ = np.flatnonzero(label_df == 0).copy()
        self.classes_ = classes
        self.n_documents_ = len(texts)
        self.tokenize_time_ = t1 - t0
        self.mi_time_ = t2 - t1
        if self.verbose:
            print(
                f"[MIInitializer] {len(texts)} documents, {tok.vocab_size} tokens, "
                f"{Y_csr.shape[1]} labels ({self.empty_labels_.size} without documents); "
                f"tokenize {t1 - t0:.1f}s, MI {t2 - t1:.1f}s, {mi.nnz} pairs kept",
                flush=True,
            )
        return self

    def transform(self, X):
        """Wrap documents with this fitted step for the next pipeline stage.

        Returns
        -------
        PlantInput
            The documents and the fitted statistics (and tokenizer).
        """
        check_is_fitted(self, "mi_")
        texts = check_texts(X.texts if isinstance(X, PlantInput) else X, allow_empty_corpus=True)
        return PlantInput(texts, mi=self)

    def top_tokens(self, label, n=10):
        """The label's best words with their normalised MI, best first.

        Parameters
        ----------
        label : int or str
            Label column index, or label name when fitted on label lists.
        n : int, default=10

        Returns
        -------
        list of (str, float)
            Empty for a label without training documents.
        """
        check_is_fitted(self, "mi_")
        j = label_position(self.classes_, label)
        s, e = self.mi_.indptr[j], self.mi_.indptr[j + 1]
        cols = self.mi_.indices[s:e]
        vals = self.mi_.data[s:e]
        order = np.lexsort((cols, -vals))[:n]
        return [(self.tokenizer_.id_to_token(int(cols[i])), float(vals[i])) for i in order]
