"""PlantClassifier: planted label-wise attention as a scikit-learn classifier."""

import json
import os
import shutil
import tempfile
import time
import warnings
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._input import PlantInput
from ._linear import (
    cooccurrence_pairs, cross_validated_thresholds, fit_restricted_svms,
    selected_and_frequent_pairs,
)
from ._ltr_pretrainer import LTRPretrainer, fitted_mi_for
from ._mi_initializer import MIInitializer, text_input_tags
from ._mi import smoothed_idf
from ._nn import PlantNet
from ._thresholds import (
    FULL_TRUST_CUT_POSITIVES, best_global_threshold, best_per_label_thresholds,
    shrunk_global_threshold,
)
from ._tokenize import TextTokenizer
from ._train import (
    evidence_features, iterate_logits, predict_logits, token_presence, train_network,
)
from ._validation import check_targets, check_texts, resolve_device, targets_to_format

__all__ = ["PlantClassifier"]

FORMAT_VERSION = 3  # 2: evidence head over tf-idf values (idf saved); 3: its per-label bias
#: Older formats this version still reads (a version-2 head has no bias: zeros).
_READABLE_VERSIONS = (2, FORMAT_VERSION)
_PARAMS_FILE = "params.json"
_WEIGHTS_FILE = "weights.pt"
_TOKENIZER_FILE = "tokenizer.json"


class PlantClassifier(ClassifierMixin, BaseEstimator):
    """Multi-label text classifier with label-wise attention planted from an L2R model.

    The PLANT model: word embeddings and a sequence encoder (a bidirectional
    GRU by default) produce a state per token; every label attends over the
    states with its own query and scores its context vector. Instead of
    learning the attention from a random start, the label queries and the
    token keys are initialised from the factors of a learning-to-rank model
    (:class:`LTRPretrainer`) that ranks each label's words by mutual
    information (:class:`MIInitializer`), and the static L2R score of every
    input word is added to the attention logits. ``plant=False`` gives the same
    network with nothing from stage 1 in it (the paper's control): random
    attention initialisation, and an evidence head over co-occurring words.

    Parameters
    ----------
    embed_dim : int, default=100
        Word embedding size.
    hidden_size : int, default=64
        Encoder size (per direction for the GRU).
    encoder : {"gru", "cnn", "transformer"} or torch.nn.Module, default="gru"
        Sequence encoder. A module must map ``(embeddings (n, T, embed_dim),
        mask (n, T))`` to states ``(n, T, D)`` and expose ``output_dim = D``.
    dropout : float, default=0.2
        Dropout on embeddings and encoder states.
    plant : bool, default=True
        Plant the attention from stage 1; False is the no-planting control
        (with ``evidence_pairs="auto"`` its head does not use stage 1 either).
    plant_keys : bool, default=True
        Plant the token keys as well as the label queries (False plants
        queries only; an ablation).
    static_scores : bool, default=True
        Add the frozen L2R score of each input word to the attention logits
        (only with ``plant=True``).
    evidence_head : {"linear", "residual", "joint"} or bool, default="linear"
        Add a sparse linear term per label over its evidence words (one weight
        per (label, word) pair; which words: ``evidence_pairs``): a direct path
        from a label's evidence words to its score beside the attention. A
        word's value is its tf-idf in the document (L2-normalised). "linear"
        fits the head before the
        network trains, as one linear SVM per label over its own words
        (squared hinge, ``evidence_C``; the tf-idf linear model of the field's
        strongest baselines, restricted to the planted pairs), and keeps it
        frozen: the network trains and early-stops exactly as without the head,
        and the output adds the head's margins at a weight chosen on the
        validation split. "residual" (or True) trains the head by gradient
        descent on what the attention misses; "joint" trains both on one loss
        (on small training sets the head then memorises them and starves the
        attention); False is the paper's architecture. Measured trade-offs in
        the user guide. The head's weight in the output, ``evidence_scale_``, is
        chosen on the validation split (0 switches it off). The no-planting
        control has the same head, over other words (``evidence_pairs``).
    evidence_pairs : {"auto", "mi", "mi+cooccurrence", "cooccurrence"}, default="auto"
        The (label, word) pairs the evidence head weighs. "mi": the words stage 1
        ranks highest by mutual information with the label (``mi.top_k`` per
        label). "cooccurrence": every word seen in a training document of the
        label (at most 1,000 per label, those in the most of its documents): no
        selection by stage 1. "mi+cooccurrence": the MI words, and for a label
        with more training documents than ``mi.top_k`` also its most frequent
        co-occurring words, one per document beyond ``mi.top_k`` (1,000 words in
        all at most): rare labels keep the MI words alone, frequent ones can
        also weigh common words, for or against. "auto" is "mi+cooccurrence"
        when planting and "cooccurrence" with ``plant=False``, so that the
        control takes nothing from stage 1; ``plant=False,
        evidence_pairs="mi+cooccurrence"`` is the ablation that removes the
        planted attention alone (measured in docs/benchmarks.md).
    evidence_tf : {"sublinear", "sublinear+raw"}, default="sublinear"
        Term frequency of the evidence head's tf-idf values. "sublinear": ``1 + log tf``
        (a word repeated in a long document does not drown the others). "sublinear+raw":
        each pair's word is seen twice, by its sublinear and by its raw-count tf-idf (each
        vector L2-normalised, both scaled by 1/sqrt 2), and the head weighs the two apart;
        twice the head's weights. On Reuters' short news texts the pair ranked better at
        most training sizes; on long clinical notes sublinear alone is best (figures in
        docs/benchmarks.md).
    inattention_k : int or None, default=None
        Keep only each label's ``inattention_k`` highest-scoring positions (per
        chunk) in the softmax; None attends to every position.
    max_length : int, default=256
        Tokens per chunk.
    stateful : bool, default=True
        Read documents longer than ``max_length`` in up to ``max_chunks``
        chunks, carrying an exact streaming softmax over the chunks; False
        truncates to the first chunk.
    max_chunks : int, default=8
        Chunks read per document when ``stateful``.
    batch_size : int, default=64
    learning_rate : float, default=3e-3
        Peak AdamW learning rate (linear warm-up, then linear decay).
    evidence_learning_rate : float, default=0.3
        Peak learning rate of a "residual" or "joint" evidence head's weights
        (same schedule, no weight decay). Its inputs are tf-idf values well
        below 1, so its weights must grow to tens while the network's stay near
        1: at the network's rate the head is far from trained when the network is.
    evidence_C : float, default=1.0
        Inverse regularisation strength of the "linear" evidence head's SVMs
        (liblinear's ``C``; 1 is the usual choice on L2-normalised tf-idf).
    weight_decay : float, default=0.01
    max_iter : int, default=15
        Maximum number of epochs.
    early_stopping : bool, default=True
        Stop when the validation nDCG@5 has not improved for
        ``n_iter_no_change`` epochs and restore the best epoch's weights.
        Only when the validation split holds at least 50 documents: on a
        smaller one the score is too noisy to stop on (a 5% subset of a
        500-document set left 2 validation documents and stopped training
        after 4 epochs), so all ``max_iter`` epochs run and the last is kept.
    validation_fraction : float, default=0.1
        Share of the training documents held out for early stopping, the
        evidence head's weight and threshold tuning (never the test data).
        Fitting on raw text, stage 1 (MI, L2R) and the linear head are fitted
        without them too, so they judge the model on unseen documents; stage-1
        steps fitted upstream in a pipeline saw all the documents they got.
    n_iter_no_change : int, default=3
    tol : float, default=1e-4
    freeze_encoder_epochs : int, default=0
        Epochs during which only attention and output layer train (gradual
        unfreezing).
    threshold : float, "auto", "global" or "per_label", default="auto"
        Decision threshold on probabilities. A float is used as given. "global":
        one threshold, tuned for micro-F1 on the validation split. "auto": one
        cut tuned the same way, but on each label's logit minus an offset, the
        label's training log-odds plus (linear head only) the head's weight times
        its SVM's cross-validated F1-optimal margin (SCutFBR, as in
        LibMultiLabel's ``thresholding``), so rare labels are not held back by
        their prior or by SVMs fitted on a few positives; ``threshold_`` then
        holds one probability per label (0.5 without a validation split). A
        micro-F1 cut tuned on few positives follows a few documents' labels: with
        ``n`` (document, label) positives in the validation split, under 200,
        "auto" moves the cut ``1 - n / 200`` of the way toward the cut at which the
        validation documents get as many labels on average as the training
        documents have (read from their scores, not their labels).
        "per_label": each label's threshold tuned on the validation split alone
        (falling back to the global one; noisy for labels with few validation
        documents).
    mixed_precision : bool, default=True
        bfloat16 autocast on CUDA (the attention softmax stays float32).
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit`` (same labels;
        stage 1 is not rerun).
    device : str, default="auto"
        "auto" uses CUDA when present, else CPU.
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        Progress per epoch when > 0.
    mi : MIInitializer or None, default=None
        Stage 1a used when fitting on raw text (tunable as ``mi__top_k``).
    ltr : LTRPretrainer or None, default=None
        Stage 1b used when fitting on raw text (tunable as ``ltr__n_factors``).

    Attributes
    ----------
    classes_ : ndarray
        Label names (label-list targets) or column indices.
    net_ : PlantNet
        The trained network (on CPU between calls).
    tokenizer_ : TextTokenizer
    mi_ : MIInitializer or None
        Fitted stage 1a (None after :meth:`load`).
    ltr_ : LTRPretrainer or None
        Fitted stage 1b (None with ``plant=False`` and after :meth:`load`).
    threshold_ : float or ndarray
        Decision threshold(s) in use.
    n_iter_ : int
    loss_curve_ : list of float
        Training loss per epoch (with a "residual" head: the attention path's
        binary cross-entropy plus the head's; otherwise the one loss trained).
    validation_scores_ : list of float
        Validation nDCG@5 per epoch.
    evidence_scale_ : float
        Weight of the evidence head's term in the logits (0 without a head),
        chosen by validation nDCG@5: among 0 to 24 for the linear head, 0 to 1
        for a trained one.
    fit_time_ : dict
        Seconds spent in each stage.

    See Also
    --------
    MIInitializer, LTRPretrainer

    References
    ----------
    Saha Roy, Wallace, Aslam. "Don't Pay Attention, PLANT It: Pretraining
    Attention via Learning-to-Rank", arXiv 2410.23066.

    Examples
    --------
    >>> from plantlearn import PlantClassifier
    >>> from plantlearn.datasets import make_multilabel_text
    >>> X, Y = make_multilabel_text(n_samples=400, n_labels=8, random_state=0)
    >>> clf = PlantClassifier(max_iter=2, random_state=0).fit(X, Y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 8)
    """

    _parameter_constraints = {
        "embed_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "encoder": [StrOptions({"gru", "cnn", "transformer"}), torch.nn.Module],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "plant": ["boolean"],
        "plant_keys": ["boolean"],
        "static_scores": ["boolean"],
        "evidence_head": ["boolean", StrOptions({"linear", "residual", "joint"})],
        "evidence_pairs": [StrOptions({"auto", "mi", "mi+cooccurrence", "cooccurrence"})],
        "evidence_tf": [StrOptions({"sublinear", "sublinear+raw"})],
        "inattention_k": [Interval(Integral, 1, None, closed="left"), None],
        "max_length": [Interval(Integral, 1, None, closed="left")],
        "stateful": ["boolean"],
        "max_chunks": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "evidence_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "evidence_C": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "freeze_encoder_epochs": [Interval(Integral, 0, None, closed="left")],
        "threshold": [Interval(Real, 0, 1, closed="both"),
                      StrOptions({"auto", "global", "per_label"})],
        "mixed_precision": ["boolean"],
        "warm_start": ["boolean"],
        "device": [str, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "mi": [HasMethods(["fit", "transform"]), None],
        "ltr": [HasMethods(["fit", "transform"]), None],
    }

    def __init__(self, *, embed_dim=100, hidden_size=64, encoder="gru", dropout=0.2,
                 plant=True, plant_keys=True, static_scores=True, evidence_head="linear",
                 evidence_pairs="auto", evidence_tf="sublinear", inattention_k=None,
                 max_length=256, stateful=True,
                 max_chunks=8, batch_size=64,
                 learning_rate=3e-3, evidence_learning_rate=0.3, evidence_C=1.0,
                 weight_decay=0.01, max_iter=15,
                 early_stopping=True,
                 validation_fraction=0.1, n_iter_no_change=3, tol=1e-4,
                 freeze_encoder_epochs=0, threshold="auto", mixed_precision=True,
                 warm_start=False, device="auto", random_state=None, verbose=0, mi=None,
                 ltr=None):
        self.embed_dim = embed_dim
        self.hidden_size = hidden_size
        self.encoder = encoder
        self.dropout = dropout
        self.plant = plant
        self.plant_keys = plant_keys
        self.static_scores = static_scores
        self.evidence_head = evidence_head
        self.evidence_pairs = evidence_pairs
        self.evidence_tf = evidence_tf
        self.inattention_k = inattention_k
        self.max_length = max_length
        self.stateful = stateful
        self.max_chunks = max_chunks
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.evidence_learning_rate = evidence_learning_rate
        self.evidence_C = evidence_C
        self.weight_decay = weight_decay
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.freeze_encoder_epochs = freeze_encoder_epochs
        self.threshold = threshold
        self.mixed_precision = mixed_precision
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.mi = mi
        self.ltr = ltr

    def __sklearn_tags__(self):
        tags = text_input_tags(super().__sklearn_tags__())
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        tags.non_deterministic = True  # bit-identical results are promised on CPU only
        return tags

    # ------------------------------------------------------------------ fit

    def _validation_split(self, n, seed):
        """Indices (train, validation) of the carve; the same for a given seed and n."""
        rng = np.random.default_rng(seed)
        n_val = int(round(self.validation_fraction * n)) if n >= 10 else 0
        perm = rng.permutation(n)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    def _stage_one(self, X, Y, seed):
        """Fitted MI and L2R steps: reused from a PlantInput, else fitted here.

        Fitted here, they see only the training part of the validation carve: the
        validation documents then judge early stopping, the head's scale and the
        threshold as unseen documents. (Steps fitted upstream in a pipeline saw
        everything they were given.)
        """
        t0 = time.perf_counter()
        # Default stage-1 steps report progress at the classifier's verbosity.
        mi_param = self.mi if self.mi is not None else MIInitializer(verbose=self.verbose)
        carve = {}

        def fit_rows(n):
            carve["train"] = self._validation_split(n, seed)[0]
            return carve["train"]

        texts, mi, Y_csr, kind, classes = fitted_mi_for(
            X, Y, mi_param, fit_rows=None if isinstance(X, PlantInput) else fit_rows)
        rows = carve.get("train", np.arange(len(texts)))
        t1 = time.perf_counter()
        ltr = None
        if self.plant:
            if isinstance(X, PlantInput) and X.ltr is not None:
                ltr = X.ltr
            else:
                ltr = clone(self.ltr) if self.ltr is not None else LTRPretrainer(verbose=self.verbose)
                if ltr.random_state is None:
                    ltr.set_params(random_state=seed)
                if ltr.device == "auto" and self.device != "auto":
                    ltr.set_params(device=self.device)
                ltr.fit(PlantInput([texts[i] for i in rows], mi=mi), Y_csr[rows])
        t2 = time.perf_counter()
        return texts, mi, ltr, Y_csr, kind, classes, {"mi": t1 - t0, "ltr": t2 - t1}

    def _key_dim(self, ltr):
        if ltr is not None:
            return ltr.token_factors_.shape[1]
        return (self.ltr if self.ltr is not None else LTRPretrainer()).n_factors

    def _encode(self, texts):
        n_chunks = self.max_chunks if self.stateful else 1
        return self.tokenizer_.encode_chunks(texts, max_length=self.max_length, max_chunks=n_chunks)

    def _build_net(self, vocab_size, n_labels, key_dim, seed=0):
        # Module constructors draw their initial weights from torch's global
        # generator: seed it inside a fork so that a refit with the same
        # random_state starts from the same weights and the caller's global
        # random state is left untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return PlantNet(
                vocab_size, n_labels, embed_dim=self.embed_dim, hidden_size=self.hidden_size,
                key_dim=key_dim, encoder=clone_encoder(self.encoder), dropout=self.dropout,
                inattention_k=self.inattention_k,
                evidence_raw_tf=self.evidence_tf == "sublinear+raw",
            )

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, Y):
        """Fit stage 1 (unless given by a pipeline), plant, and train the network.

        Parameters
        ----------
        X : iterable of str or PlantInput
            Raw training documents, or the output of a fitted
            MIInitializer / LTRPretrainer (then their statistics are reused).
        Y : sparse matrix, 0/1 array of shape (n_documents, n_labels), or list of label lists
            Label assignments; predictions come back in the same format.

        Returns
        -------
        self : PlantClassifier
        """
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        device = resolve_device(self.device)
        warm = self.warm_start and hasattr(self, "net_") and getattr(self, "mi_", None) is not None
        t_start = time.perf_counter()
        if warm:
            texts = check_texts(X.texts if isinstance(X, PlantInput) else X)
            Y_csr, kind, _ = check_targets(
                Y, len(texts), classes=self.classes_ if self._target_kind == "labels" else None
            )
            if Y_csr.shape[1] != self.classes_.size:
                raise ValueError(
                    f"warm_start=True needs the same labels: fitted on {self.classes_.size}, "
                    f"got {Y_csr.shape[1]}."
                )
            stage_times = {"mi": 0.0, "ltr": 0.0}
            net = self.net_
        else:
            texts, mi, ltr, Y_csr, kind, classes, stage_times = self._stage_one(X, Y, seed)
            self.mi_, self.ltr_, self.classes_ = mi, ltr, classes
            self.tokenizer_ = mi.tokenizer_
            self._target_kind = kind
            n_labels = Y_csr.shape[1]
            net = self._build_net(self.tokenizer_.vocab_size, n_labels, self._key_dim(ltr), seed)
            gen = torch.Generator().manual_seed(seed)
            net.attention.reset_random(gen)
            if self.plant:
                net.attention.plant(
                    ltr.token_factors_, ltr.label_factors_, ltr.token_bias_,
                    plant_keys=self.plant_keys, static_scores=self.static_scores,
                )
            self._history = {"loss": [], "validation": []}
        docs = self._encode(texts)

        # Validation split carved from the training documents only (the same carve
        # as stage 1's: see _stage_one).
        tr_idx, val_idx = self._validation_split(len(docs), seed)
        n_val = val_idx.size
        train_docs = [docs[i] for i in tr_idx]
        val_docs = [docs[i] for i in val_idx] if n_val else None
        Y_tr, Y_val = Y_csr[tr_idx], (Y_csr[val_idx] if n_val else None)

        if not warm:
            net.init_output_bias(np.asarray(Y_tr.sum(axis=0)).ravel() / max(Y_tr.shape[0], 1))
            if self.evidence_head:
                self._set_evidence_pairs(net, mi, train_docs, Y_tr)
        if self.evidence_head == "linear" and not warm:
            t_head = time.perf_counter()
            self._head_margin_thresholds = self._fit_linear_head(net, train_docs, Y_tr, seed)
            stage_times["evidence"] = time.perf_counter() - t_head
        elif not warm:
            self._head_margin_thresholds = None
        net.to(device)
        t_train = time.perf_counter()
        history = train_network(
            net, train_docs, Y_tr, val_docs, Y_val, max_iter=self.max_iter,
            batch_size=self.batch_size, max_length=self.max_length,
            learning_rate=self.learning_rate, weight_decay=self.weight_decay,
            evidence_learning_rate=self.evidence_learning_rate,
            evidence_training=_EVIDENCE_TRAINING[self.evidence_head],
            freeze_encoder_epochs=0 if warm else self.freeze_encoder_epochs,
            early_stopping=self.early_stopping, n_iter_no_change=self.n_iter_no_change,
            tol=self.tol, device=device, seed=seed, mixed_precision=self.mixed_precision,
            verbose=self.verbose, history=self._history,
        )
        self.threshold_ = self._tune_threshold(net, val_docs, Y_val, Y_tr, device)
        net.cpu()
        self.net_ = net
        self.n_iter_ = history["n_iter"]
        self.loss_curve_ = history["loss"]
        self.validation_scores_ = history["validation"]
        self.evidence_scale_ = _evidence_scale(net)
        self.fit_time_ = {
            **stage_times,
            "train": time.perf_counter() - t_train,
            "total": time.perf_counter() - t_start,
        }
        if self.verbose:
            print(
                f"[PlantClassifier] done in {self.fit_time_['total']:.1f}s "
                f"(MI {stage_times['mi']:.1f}s, L2R {stage_times['ltr']:.1f}s, "
                f"evidence head {stage_times.get('evidence', 0.0):.1f}s, "
                f"network {self.fit_time_['train']:.1f}s); threshold {self._threshold_repr()}, "
                f"evidence scale {self.evidence_scale_:g}",
                flush=True,
            )
        return self

    def _resolved_evidence_pairs(self):
        if self.evidence_pairs == "auto":
            return "mi+cooccurrence" if self.plant else "cooccurrence"
        return self.evidence_pairs

    def _set_evidence_pairs(self, net, mi, train_docs, Y_train):
        """Give the head its (label, word) pairs: stage 1's MI words, co-occurring words or both."""
        kind = self._resolved_evidence_pairs()
        n_vocab = self.tokenizer_.vocab_size
        # Co-occurrence is counted on the training part only, as stage 1 is fitted.
        if kind == "mi":
            pairs = mi.mi_.tocoo()
            labels, words = pairs.row, pairs.col
        elif kind == "mi+cooccurrence":
            labels, words = selected_and_frequent_pairs(
                mi.mi_, token_presence(train_docs, n_vocab), Y_train, n_selected=mi.top_k)
        else:
            labels, words = cooccurrence_pairs(token_presence(train_docs, n_vocab), Y_train)
        idf = smoothed_idf(mi.token_document_frequency_, mi.n_documents_)
        labels, features, n_features = net.evidence.feature_pairs(labels, words, n_vocab)
        net.set_evidence_pairs(labels, features, n_features, idf)

    def _fit_linear_head(self, net, train_docs, Y_train, seed):
        """Fit the evidence head as linear SVMs over each label's planted words (frozen after).

        Returns the SVMs' cross-validated margin thresholds when ``threshold="auto"``
        needs them (else None).
        """
        head = net.evidence
        if head.n_pairs == 0:
            return None
        X = evidence_features(head, train_docs, batch_size=self.batch_size * 4,
                              max_length=self.max_length)
        labels = head.pair_label.cpu().numpy()
        tokens = head.pair_tokens()
        support = sp.csr_matrix((np.arange(1, labels.size + 1, dtype=np.float64), (labels, tokens)),
                                shape=(Y_train.shape[1], X.shape[1]))
        def report(done, total):
            print(f"[PlantClassifier] evidence head: {done}/{total} labels fitted", flush=True)
        weights, bias = fit_restricted_svms(X, Y_train, support, C=self.evidence_C,
                                            random_state=seed,
                                            callback=report if self.verbose else None)
        # support's values hold each pair's position in the head (1-based): the fitted
        # weights share its pattern, so they map back without a search.
        position = support.data.astype(np.int64) - 1
        head_weight = np.zeros(labels.size, dtype=np.float32)
        head_weight[position] = weights.data
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(head_weight))
            head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        if self.threshold != "auto":
            return None
        if self.verbose:
            print("[PlantClassifier] evidence head: cross-validating its margin thresholds",
                  flush=True)
        return cross_validated_thresholds(X, Y_train, support, C=self.evidence_C,
                                          random_state=seed)

    def _label_offsets(self, net, Y_train):
        """Per-label logit offsets of threshold="auto": the label's training log-odds plus
        the head's weight times its SVM's cross-validated margin threshold."""
        offsets = training_log_odds(Y_train)
        margins = getattr(self, "_head_margin_thresholds", None)
        if margins is not None and margins.shape == offsets.shape:
            offsets = offsets + float(net.evidence.scale) * margins
        return offsets

    def _tune_threshold(self, net, val_docs, Y_val, Y_train, device):
        if not isinstance(self.threshold, str):
            return float(self.threshold)
        # Kept for retuning on another labelled set (the command line's --validation-file).
        auto = self.threshold == "auto"
        self._threshold_offsets = self._label_offsets(net, Y_train) if auto else None
        # The small-carve rule of "auto" (see _threshold_from_logits) needs it.
        self._training_cardinality = Y_train.nnz / max(Y_train.shape[0], 1) if auto else None
        if val_docs is None or Y_val is None or Y_val.nnz == 0:
            warnings.warn(
                f"threshold={self.threshold!r} needs a validation split with labels "
                f"(validation_fraction > 0); using 0.5.", UserWarning, stacklevel=3,
            )
            return 0.5
        logits = predict_logits(
            net, val_docs, batch_size=self.batch_size * 2, max_length=self.max_length,
            device=device, mixed_precision=self.mixed_precision,
        )
        return self._threshold_from_logits(logits, Y_val)

    def _threshold_from_logits(self, logits, Y):
        """The ``threshold`` rule (a string mode) tuned on labelled logits (never test data)."""
        logits = np.asarray(logits, dtype=np.float64)
        if self.threshold == "auto":
            offsets = getattr(self, "_threshold_offsets", None)
            if offsets is None:
                raise ValueError(
                    "retuning threshold='auto' needs the per-label offsets of this fit; a "
                    "loaded model does not keep them (refit, or set threshold_ directly)."
                )
            shifted = logits - offsets
            cardinality = getattr(self, "_training_cardinality", None)
            if cardinality:
                # A micro-F1 cut tuned on a few dozen positives follows one document's
                # labels; the validation documents' scores (not their labels) with the
                # training documents' mean label count give a steadier cut, and the mix
                # moves to the tuned cut as the positives grow.
                cut = shrunk_global_threshold(
                    Y, shifted, cardinality, full_trust_positives=FULL_TRUST_CUT_POSITIVES)
            else:
                cut = best_global_threshold(Y, shifted)
            # float64 probabilities round-trip to logits exactly enough up to about +-36;
            # above that a label rounds to 1 and is never predicted (only hopeless labels
            # get such cuts).
            return _sigmoid(cut + offsets, clip=None)
        proba = _sigmoid(logits)
        glob = best_global_threshold(Y, proba)
        if self.threshold == "global":
            return glob
        return best_per_label_thresholds(Y, proba, fallback=glob)

    def _logit_threshold(self):
        """``threshold_`` in logit space (scalar or per label)."""
        t = np.asarray(self.threshold_, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return np.log(t) - np.log1p(-t)

    def _decide(self, logits):
        """The 0/1 decisions ``probability >= threshold_``, compared in logit space (float32
        probabilities saturate at 1 for logits above about 17)."""
        cut = self._logit_threshold()
        # A tuned threshold can be one of the validation probabilities itself; turned back
        # into a logit it can come out a few float64 ulps above that document's logit. A
        # slack far below float32 resolution (logits are float32) keeps such a document
        # at the cut, as the probability rule has it, and never merges distinct logits.
        finite = np.isfinite(cut)
        slack = 1e-9 * np.maximum(1.0, np.abs(np.where(finite, cut, 0.0)))
        return sp.csr_matrix(logits >= np.where(finite, cut - slack, cut))

    def _threshold_repr(self):
        t = self.threshold_
        return f"{t:.3f}" if np.ndim(t) == 0 else f"per label (median {np.median(t):.3f})"

    # -------------------------------------------------------------- predict

    def _predict_texts(self, X):
        check_is_fitted(self, "net_")
        return check_texts(X.texts if isinstance(X, PlantInput) else X, allow_empty_corpus=True)

    def _logits(self, X):
        texts = self._predict_texts(X)
        device = resolve_device(self.device)
        self.net_.to(device)
        try:
            return predict_logits(
                self.net_, self._encode(texts), batch_size=self.batch_size * 2,
                max_length=self.max_length, device=device, mixed_precision=self.mixed_precision,
            )
        finally:
            self.net_.cpu()

    def decision_function(self, X):
        """Per-label logits, shape (n_documents, n_labels)."""
        return self._logits(X)

    def predict_proba(self, X):
        """Per-label probabilities, a dense array of shape (n_documents, n_labels)."""
        return _sigmoid(self._logits(X))

    def predict(self, X):
        """Labels whose probability reaches the threshold.

        Returns the format ``fit`` received: CSR for sparse, a dense 0/1 array
        for dense, and a list of label lists for label lists.
        """
        pred = self._decide(self._logits(X))
        return targets_to_format(pred, self._target_kind, self.classes_)

    def predict_topk(self, X, k=5):
        """The k most probable labels of every document, best first.

        Never materialises the full probability matrix, so it is the path for
        very many labels.

        Returns
        -------
        indices : ndarray of shape (n_documents, k)
            Label column indices (names are ``classes_[indices]``).
        probabilities : ndarray of shape (n_documents, k)
        """
        texts = self._predict_texts(X)
        n_labels = self.classes_.size
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= n_labels:
            raise ValueError(f"k must be an int in [1, {n_labels}], got {k!r}.")
        device = resolve_device(self.device)
        idx_out = np.zeros((len(texts), k), dtype=np.int64)
        prob_out = np.zeros((len(texts), k), dtype=np.float32)
        self.net_.to(device)
        try:
            for idx, logits in iterate_logits(
                self.net_, self._encode(texts), batch_size=self.batch_size * 2,
                max_length=self.max_length, device=device, mixed_precision=self.mixed_precision,
            ):
                top = torch.topk(logits, k, dim=1)
                idx_out[idx] = top.indices.numpy()
                prob_out[idx] = torch.sigmoid(top.values).numpy()
        finally:
            self.net_.cpu()
        return idx_out, prob_out

    def score(self, X, Y, sample_weight=None):
        """Subset accuracy: the share of documents whose predicted label set is exactly right.

        scikit-learn's default score for multi-label classifiers, here for every
        target format ``fit`` accepts (the inherited one rejects label lists).

        Parameters
        ----------
        X : iterable of str
            Documents.
        Y : sparse matrix, 0/1 array of shape (n_documents, n_labels), or list of label lists
            True labels, in any format ``fit`` accepts.
        sample_weight : array-like of shape (n_documents,), optional

        Returns
        -------
        score : float
        """
        from sklearn.metrics import accuracy_score

        check_is_fitted(self, "net_")
        classes = self.classes_ if self._target_kind == "labels" else None
        Y_csr, _, _ = check_targets(Y, classes=classes, require_positive=False)
        pred = self._decide(self._logits(X))
        if Y_csr.shape != pred.shape:
            raise ValueError(
                f"Y has shape {Y_csr.shape} but the model predicts {pred.shape} "
                f"(documents x labels)."
            )
        return float(accuracy_score(Y_csr, pred, sample_weight=sample_weight))

    # ---------------------------------------------------------- persistence

    def __getstate__(self):
        state = self.__dict__.copy()
        # Weights travel on CPU so a GPU-fitted model unpickles anywhere.
        if "net_" in state:
            state["net_"] = state["net_"].cpu()
        return state

    def _json_params(self):
        params = self.get_params(deep=False)
        if isinstance(params["encoder"], torch.nn.Module):
            raise ValueError(
                "save() cannot store a custom encoder module as JSON; pickle the model "
                "(joblib.dump) instead."
            )
        for name in ("mi", "ltr"):
            est = params[name]
            params[name] = None if est is None else {
                "class": type(est).__name__, "params": est.get_params(deep=False),
            }
            if est is not None and est.get_params(deep=False).get("mi") is not None:
                params[name]["params"]["mi"] = None  # nested stage carried by the outer one
        if not isinstance(params["random_state"], (int, type(None))):
            params["random_state"] = None
        return params

    def save(self, path):
        """Save the fitted model to a directory (created or replaced atomically).

        The directory holds ``params.json`` (hyperparameters, labels,
        thresholds, format version), ``weights.pt`` (a plain state dict) and
        ``tokenizer.json``. It is written under a temporary name and renamed
        into place, so a crash never leaves half a model and an existing model
        at ``path`` is only replaced once the new one is complete.

        Only a plantlearn model directory (holding nothing but a model's
        files) or an empty directory is ever replaced. A ``path`` that is an
        existing file, a directory with other content, or a location inside
        an existing model directory raises a ValueError and nothing is touched.
        """
        check_is_fitted(self, "net_")
        path = Path(path)
        meta = {
            "format_version": FORMAT_VERSION,
            "plantlearn_version": _version(),
            "params": self._json_params(),
            "classes": self.classes_.tolist(),
            "target_kind": self._target_kind,
            "threshold": np.asarray(self.threshold_).tolist(),
            "vocab_size": int(self.tokenizer_.vocab_size),
            "n_labels": int(self.classes_.size),
            "key_dim": int(self.net_.attention.key_dim),
            "n_iter": int(self.n_iter_),
        }
        _check_save_target(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            (tmp / _PARAMS_FILE).write_text(json.dumps(meta, indent=1))
            (tmp / _TOKENIZER_FILE).write_text(self.tokenizer_.to_json())
            torch.save({k: v.cpu() for k, v in self.net_.state_dict().items()}, tmp / _WEIGHTS_FILE)
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
                os.replace(path, old / "model")
                try:
                    os.replace(tmp, path)
                except BaseException:
                    os.replace(old / "model", path)  # put the previous model back
                    shutil.rmtree(old, ignore_errors=True)
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path, *, device="auto"):
        """Load a model written by :meth:`save`.

        Weights are read with ``torch.load(weights_only=True)``, so loading
        never runs code from the file. A missing, corrupt or incompatible
        directory raises a ValueError (or FileNotFoundError) naming the problem.
        """
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"no saved PlantClassifier at {path} (expected a directory).")
        for name in (_PARAMS_FILE, _WEIGHTS_FILE, _TOKENIZER_FILE):
            if not (path / name).is_file():
                raise ValueError(f"{path} is not a complete PlantClassifier model: {name} is missing.")
        try:
            meta = json.loads((path / _PARAMS_FILE).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path / _PARAMS_FILE} is corrupt: {exc}") from None
        version = meta.get("format_version") if isinstance(meta, dict) else None
        if version not in _READABLE_VERSIONS:
            raise ValueError(
                f"{path} has model format version {version!r}; this plantlearn reads "
                f"versions {', '.join(map(str, _READABLE_VERSIONS))}."
            )
        try:
            params = dict(meta["params"])
            stage_classes = {"MIInitializer": MIInitializer, "LTRPretrainer": LTRPretrainer}
            for name in ("mi", "ltr"):
                spec = params.get(name)
                params[name] = None if spec is None else stage_classes[spec["class"]](**spec["params"])
            params["device"] = device
            model = cls(**params)
            tokenizer = TextTokenizer.from_json((path / _TOKENIZER_FILE).read_text())
            state = torch.load(path / _WEIGHTS_FILE, map_location="cpu", weights_only=True)
            net = model._build_net(meta["vocab_size"], meta["n_labels"], meta["key_dim"])
            # Static-score buffers are empty until planted: size them from the file.
            att = net.attention
            for buf in ("static_token_factors", "static_token_bias", "static_label_factors"):
                key = f"attention.{buf}"
                if key in state:
                    setattr(att, buf, torch.zeros_like(state[key]))
            state.setdefault("evidence.bias", torch.zeros(meta["n_labels"]))  # format 2
            if state.get("evidence.weight") is not None and state["evidence.weight"].numel():
                net.evidence.set_pairs(state["evidence.pair_label"], state["evidence.token_ptr"],
                                       state["evidence.idf"])
            net.load_state_dict(state)
        except ValueError:
            raise
        except Exception as exc:
            raise ValueError(f"could not load the model in {path}: {type(exc).__name__}: {exc}") from None
        classes = np.asarray(meta["classes"])
        model.net_ = net
        model.tokenizer_ = tokenizer
        model.classes_ = classes
        model._target_kind = meta["target_kind"]
        thr = meta["threshold"]
        model.threshold_ = float(thr) if np.ndim(thr) == 0 else np.asarray(thr, dtype=np.float64)
        model.n_iter_ = meta.get("n_iter", 0)
        model.mi_ = None
        model.ltr_ = None
        model.loss_curve_ = []
        model.validation_scores_ = []
        model.evidence_scale_ = _evidence_scale(net)
        return model

    # --------------------------------------------------------- explanations

    def explain(self, X, top_labels=5, top_tokens=10):
        """The words the trained attention weighed most for each top label.

        Parameters
        ----------
        X : iterable of str
            Documents (a bare str is an error, as in :meth:`predict`).
        top_labels : int, default=5
            Explain this many of the most probable labels per document.
        top_tokens : int, default=10
            Word occurrences kept per label, by decreasing attention weight.

        Returns
        -------
        explanations : list of list of dict
            Per document, per label (most probable first) a dict with
            ``"label"`` (class name or index), ``"probability"`` and
            ``"tokens"``: a list of ``{"token", "weight", "start", "end",
            "prior"}``, one per word occurrence, sorted by decreasing weight.
            ``text[start:end]`` is ``token``; ``weight`` is the label's final
            attention weight on that position in [0, 1] (over all chunks of a
            long document, summing to 1 over the positions read); ``prior`` is
            the planted L2R model's static score ``u_t . v_l + b_t`` of the
            word, or None without planting. Positions the attention never
            reads (unknown words, positions masked by ``inattention_k``, text
            past ``max_length * max_chunks`` words) are left out.

        See Also
        --------
        explain_html : the same as a self-contained HTML page.

        Examples
        --------
        >>> from plantlearn.datasets import make_multilabel_text
        >>> X, Y = make_multilabel_text(n_samples=300, n_labels=6, random_state=0)
        >>> clf = PlantClassifier(max_iter=1, random_state=0).fit(X, Y)  # doctest: +SKIP
        >>> first = clf.explain(X[:1], top_labels=2)[0][0]  # doctest: +SKIP
        >>> sorted(first), sorted(first["tokens"][0])  # doctest: +SKIP
        (['label', 'probability', 'tokens'], ['end', 'prior', 'start', 'token', 'weight'])
        """
        from ._explain import explain

        return explain(self, X, top_labels=top_labels, top_tokens=top_tokens)

    def explain_html(self, X, path=None, top_labels=5, top_tokens=10, *, ids=None, labels=None):
        """Explanations as one self-contained HTML page (inline CSS, no scripts).

        For each document and each of its ``top_labels`` most probable labels
        the text is shown with the label's attention as highlight intensity,
        next to two rankings of the document's words: by the planted L2R
        prior and by the trained attention.

        Parameters
        ----------
        X : iterable of str
        path : str or path-like, optional
            Also write the page to this file (UTF-8).
        top_labels, top_tokens : int
            As in :meth:`explain`.
        ids : sequence, optional
            A title per document.
        labels : sequence of label lists, optional
            True labels per document, marked in the report.

        Returns
        -------
        page : str
        """
        from ._explain import explain_html, write_html

        page = explain_html(self, X, top_labels=top_labels, top_tokens=top_tokens,
                            ids=ids, labels=labels)
        if path is not None:
            write_html(page, path)
        return page


#: Every file a saved model directory may hold: save() replaces a directory only when it
#: holds nothing else, so that a user's own files are never deleted.
_MODEL_FILES = frozenset({_PARAMS_FILE, _WEIGHTS_FILE, _TOKENIZER_FILE})


def _is_model_directory(path):
    """True when ``path`` is a directory written by :meth:`PlantClassifier.save`."""
    try:
        meta = json.loads((path / _PARAMS_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "format_version" in meta and "plantlearn_version" in meta


def _check_save_target(path):
    """Refuse, before writing anything, a save that would destroy something not a model."""
    if path.is_symlink():
        raise ValueError(f"cannot save a model to {path}: it is a symbolic link.")
    for parent in path.resolve().parents:
        if _is_model_directory(parent):
            raise ValueError(
                f"cannot save a model to {path}: it lies inside the saved model {parent}, "
                f"which would be broken; choose a path outside it."
            )
    if not path.exists():
        return
    if not path.is_dir():
        raise ValueError(
            f"cannot save a model to {path}: a file of that name exists, and save() writes "
            f"a directory; it never replaces other files. Choose another path."
        )
    entries = sorted(entry.name for entry in path.iterdir())
    if not entries:
        return
    if not _is_model_directory(path) or not set(entries) <= _MODEL_FILES:
        other = [name for name in entries if name not in _MODEL_FILES] or entries
        raise ValueError(
            f"cannot save a model to {path}: the directory exists and is not a plantlearn "
            f"model (it holds {', '.join(other[:5])}{', ...' if len(other) > 5 else ''}); "
            f"save() only replaces a saved model or an empty directory."
        )


#: How train_network treats the head for each ``evidence_head`` value.
_EVIDENCE_TRAINING = {"linear": "frozen", "residual": "residual", True: "residual",
                      "joint": "joint", False: "frozen"}


def training_log_odds(Y_train):
    """Each label's log-odds of occurring in the training documents (0 for labels never or
    always seen: they keep the plain global cut). The label part of threshold="auto"'s offsets."""
    n_docs = Y_train.shape[0]
    counts = np.asarray(Y_train.sum(axis=0), dtype=np.float64).ravel()
    seen = (counts > 0) & (counts < n_docs)
    p = np.where(seen, counts, 1.0) / max(n_docs, 1)
    return np.where(seen, np.log(p) - np.log1p(-np.where(seen, p, 0.0)), 0.0)


def _evidence_scale(net):
    head = net.evidence
    return float(head.scale) if head.n_pairs else 0.0


def _sigmoid(z, clip=50):
    z = np.asarray(z)
    if clip is not None:
        z = np.clip(z, -clip, clip)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def clone_encoder(encoder):
    """A fresh copy of a user-supplied encoder module (so refits start anew)."""
    if isinstance(encoder, torch.nn.Module):
        import copy

        return copy.deepcopy(encoder)
    return encoder


def _version():
    from . import __version__

    return __version__
