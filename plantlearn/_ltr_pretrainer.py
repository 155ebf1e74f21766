"""LTRPretrainer: PLANT stage 1b as a scikit-learn transformer."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._input import PlantInput
from ._ltr import RankingData, evaluate_ranker, split_graded_pairs, train_factor_ranker
from ._mi_initializer import MIInitializer, text_input_tags
from ._nn import FactorRanker
from ._validation import (
    _is_label_lists, check_targets, check_texts, label_position, resolve_device,
)

__all__ = ["LTRPretrainer", "fitted_mi_for"]


def fitted_mi_for(X, Y, mi_param, fit_rows=None):
    """Return (texts, fitted MIInitializer, Y as CSR) for raw text or a PlantInput.

    A PlantInput brings its fitted MI step (computed upstream in a pipeline);
    raw text gets a fresh clone of ``mi_param`` (or a default MIInitializer)
    fitted here, on the documents ``fit_rows(n_documents)`` selects when given
    (with the full label set: labels absent from those rows keep no words).
    """
    if isinstance(X, PlantInput):
        texts = check_texts(X.texts)
        mi = X.mi
        Y_csr, kind, classes = check_targets(Y, len(texts), classes=_label_list_classes(Y, mi))
        if Y_csr.shape[1] != mi.mi_.shape[0]:
            raise ValueError(
                f"Y has {Y_csr.shape[1]} labels but the upstream MIInitializer was fitted "
                f"on {mi.mi_.shape[0]}; pass the same Y to every pipeline step."
            )
        return texts, mi, Y_csr, kind, classes
    texts = check_texts(X)
    Y_csr, kind, classes = check_targets(Y, len(texts))
    mi = clone(mi_param) if mi_param is not None else MIInitializer()
    if fit_rows is None:
        mi.fit(texts, Y)
    else:
        rows = fit_rows(len(texts))
        mi.fit([texts[i] for i in rows], Y_csr[rows])
        mi.classes_ = classes  # the names of the whole label set, as a fit on all of Y gives
    return texts, mi, Y_csr, kind, classes


def _label_list_classes(Y, mi):
    """Reuse the upstream label order when Y is given as label lists."""
    return mi.classes_ if _is_label_lists(Y) else None


class LTRPretrainer(TransformerMixin, BaseEstimator):
    """Learn token and label factors that rank every label's words by MI (PLANT stage 1b).

    Trains the factor model ``score(t, l) = u_t . v_l + b_t + b_l`` with
    LambdaRank (a pairwise logistic loss weighted by the change in NDCG@k a
    swap would cause) on lists that mix each label's MI-graded words with words
    sampled uniformly from the vocabulary. A held-out share of every label's
    graded words measures ranking quality after each epoch (NDCG@k against
    ungraded words); the best epoch's factors are kept.

    Parameters
    ----------
    n_factors : int, default=64
        Dimension of the token and label factors (the paper used 400); it also
        sets the attention key size of a planted PlantClassifier.
    list_size : int, default=64
        Words per ranking list.
    n_positives : int, default=16
        Graded words per list; the rest are sampled from the vocabulary.
    sigma : float, default=0.5
        Slope of the pairwise logistic loss.
    ndcg_k : int, default=15
        Truncation of the NDCG that weights pairs and selects the model.
    gain : {"linear", "exponential"}, default="linear"
        Relevance gain of a grade; see Notes.
    max_iter : int, default=25
        Maximum number of epochs. An epoch presents every graded training pair
        once, repeated until it holds at least 4,096 lists (small label sets).
    learning_rate : float, default=0.05
        AdamW step size.
    weight_decay : float, default=1e-4
        AdamW decoupled weight decay.
    batch_size : int, default=256
        Lists per optimisation step.
    validation_fraction : float, default=0.1
        Share of each label's graded words held out to measure NDCG.
    early_stopping : bool, default=True
        Stop after ``n_iter_no_change`` epochs without improvement.
    n_iter_no_change : int, default=3
    tol : float, default=1e-3
        Minimum NDCG improvement that counts.
    mi : MIInitializer or None, default=None
        The MI step run on raw text (a default MIInitializer when None). Its
        parameters are tunable as ``mi__top_k``. Ignored when the input comes
        from an upstream MIInitializer in a pipeline.
    device : str, default="auto"
        "auto" picks CUDA when available, else CPU.
    random_state : int, RandomState or None, default=None
        Seeds a local torch generator and numpy generator (never the global ones).
    verbose : int, default=0
        Print one line per epoch when > 0.

    Attributes
    ----------
    token_factors_ : ndarray of shape (vocab_size, n_factors)
    label_factors_ : ndarray of shape (n_labels, n_factors)
    token_bias_ : ndarray of shape (vocab_size,)
    label_bias_ : ndarray of shape (n_labels,)
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float
        Mean training loss per epoch.
    validation_scores_ : list of float
        Held-out NDCG@ndcg_k after each epoch.
    best_validation_score_ : float
    untrained_validation_score_ : float
        Held-out NDCG@ndcg_k of the randomly initialised model, for reference.
    mi_ : MIInitializer
        The fitted MI step whose grades were learnt (and whose tokenizer is shared).
    classes_ : ndarray
    validation_lists_ : tuple of ndarray or None
        The fixed held-out ranking lists (labels, tokens, grades, mask) that
        :meth:`holdout_ndcg` scores.
    random_seed_ : int
        The seed this fit drew its initial factors and lists from.

    See Also
    --------
    MIInitializer : produces the graded word rankings.
    PlantClassifier : plants the factors into label-wise attention.

    Notes
    -----
    The paper's gain is ``2**grade``; with about 100 log-scale grades that
    weights practically only the top word of every list and the rest of the
    ranking gets no gradient, so the default gain is linear in the grade.

    Examples
    --------
    >>> from plantlearn import LTRPretrainer
    >>> from plantlearn.datasets import make_multilabel_text
    >>> X, Y = make_multilabel_text(n_samples=300, n_labels=5, random_state=0)
    >>> ltr = LTRPretrainer(n_factors=16, max_iter=5, random_state=0).fit(X, Y)
    >>> ltr.token_factors_.shape[1]
    16
    """

    _parameter_constraints = {
        "n_factors": [Interval(Integral, 1, None, closed="left")],
        "list_size": [Interval(Integral, 2, None, closed="left")],
        "n_positives": [Interval(Integral, 1, None, closed="left")],
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "ndcg_k": [Interval(Integral, 1, None, closed="left")],
        "gain": [StrOptions({"linear", "exponential"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "early_stopping": ["boolean"],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "mi": [HasMethods(["fit", "transform"]), None],
        "device": [str, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, *, n_factors=64, list_size=64, n_positives=16, sigma=0.5, ndcg_k=15,
                 gain="linear", max_iter=25, learning_rate=0.05, weight_decay=1e-4,
                 batch_size=256, validation_fraction=0.1, early_stopping=True,
                 n_iter_no_change=3, tol=1e-3, mi=None, device="auto", random_state=None,
                 verbose=0):
        self.n_factors = n_factors
        self.list_size = list_size
        self.n_positives = n_positives
        self.sigma = sigma
        self.ndcg_k = ndcg_k
        self.gain = gain
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.mi = mi
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        return text_input_tags(super().__sklearn_tags__())

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, Y):
        """Learn the factors from the MI grades of the training documents.

        Parameters
        ----------
        X : iterable of str or PlantInput
            Raw documents (an MIInitializer is fitted on them first) or the
            output of a fitted MIInitializer.
        Y : sparse matrix, 0/1 array or list of label lists
            Label assignments of the documents.

        Returns
        -------
        self : LTRPretrainer
        """
        if self.n_positives >= self.list_size:
            raise ValueError(
                f"n_positives={self.n_positives} must be smaller than list_size="
                f"{self.list_size}: every list needs sampled words to rank below its graded ones."
            )
        _, mi, Y_csr, _, classes = fitted_mi_for(X, Y, self.mi)
        device = resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        rng = np.random.default_rng(seed)
        vocab_size = mi.tokenizer_.vocab_size
        n_labels = mi.grades_.shape[0]
        train_g, held_g = split_graded_pairs(mi.grades_, self.validation_fraction, rng)
        if train_g.nnz == 0:
            raise ValueError(
                "no (label, word) pair has a positive MI: the labels share no word "
                "with their documents beyond chance, so there is no ranking to learn."
            )
        data = RankingData(
            train_g, held_g, vocab_size, list_size=self.list_size,
            n_positives=self.n_positives, rng=rng,
        )
        model, hist = train_factor_ranker(
            data, vocab_size, n_labels, n_factors=self.n_factors, sigma=self.sigma,
            ndcg_k=self.ndcg_k, gain=self.gain, max_iter=self.max_iter,
            learning_rate=self.learning_rate, weight_decay=self.weight_decay,
            batch_size=self.batch_size, early_stopping=self.early_stopping,
            n_iter_no_change=self.n_iter_no_change, tol=self.tol, device=device,
            seed=seed, verbose=self.verbose,
        )
        self.token_factors_ = model.token_factors.detach().numpy().copy()
        self.label_factors_ = model.label_factors.detach().numpy().copy()
        self.token_bias_ = model.token_bias.detach().numpy().copy()
        self.label_bias_ = model.label_bias.detach().numpy().copy()
        self.n_iter_ = hist["n_iter"]
        self.loss_curve_ = hist["loss"]
        self.validation_scores_ = hist["validation"]
        self.best_validation_score_ = hist["best_validation"]
        self.untrained_validation_score_ = hist["untrained_validation"]
        self.mi_ = mi
        self.classes_ = classes
        # Kept so holdout_ndcg can rescore the same lists at another k.
        self.validation_lists_ = data.validation
        self.random_seed_ = seed
        return self

    def transform(self, X):
        """Wrap documents with the fitted stages for PlantClassifier.

        Returns
        -------
        PlantInput
        """
        check_is_fitted(self, "token_factors_")
        texts = check_texts(X.texts if isinstance(X, PlantInput) else X, allow_empty_corpus=True)
        return PlantInput(texts, mi=self.mi_, ltr=self)

    def scores(self, label):
        """L2R score of every vocabulary word for one label (index or name)."""
        check_is_fitted(self, "token_factors_")
        j = label_position(self.classes_, label)
        return self.token_factors_ @ self.label_factors_[j] + self.token_bias_ + self.label_bias_[j]

    def top_tokens(self, label, n=10):
        """The words the L2R model ranks highest for a label, with their scores."""
        s = self.scores(label)
        s[:2] = -np.inf  # padding and unknown-word ids
        best = np.argsort(-s, kind="stable")[:n]
        tok = self.mi_.tokenizer_
        return [(tok.id_to_token(int(i)), float(s[i])) for i in best]

    def holdout_ndcg(self, k=10, *, untrained=False):
        """NDCG@k on the held-out graded words (of the fitted or the untrained model).

        Parameters
        ----------
        k : int, default=10
        untrained : bool, default=False
            Score the randomly initialised model this fit started from instead.
        """
        check_is_fitted(self, "token_factors_")
        import torch

        n_tokens, n_labels = self.token_factors_.shape[0], self.label_factors_.shape[0]
        gen = torch.Generator().manual_seed(self.random_seed_)
        model = FactorRanker(n_tokens, n_labels, self.n_factors, generator=gen)
        if not untrained:
            with torch.no_grad():
                model.token_factors.copy_(torch.as_tensor(self.token_factors_))
                model.label_factors.copy_(torch.as_tensor(self.label_factors_))
                model.token_bias.copy_(torch.as_tensor(self.token_bias_))
                model.label_bias.copy_(torch.as_tensor(self.label_bias_))
        return evaluate_ranker(model, self.validation_lists_, k=k, gain=self.gain,
                               device=torch.device("cpu"))
