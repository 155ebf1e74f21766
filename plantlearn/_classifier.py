"""PlantClassifier: planted label-wise attention as a scikit-learn classifier.

The estimator shell: parameters, the order of the fit's steps, and the prediction API.
Each step lives in its own module: the validation carve and stage 1 in ``_stage1``, the
network and its planting in ``_nn``, the evidence head in ``_head``, the training loop in
``_train`` (with ``callbacks``), the calibration and decision rule in ``_decision``, saving
and loading in ``_persist``.
"""

import copy
import json
import os
import time
from pathlib import Path
from contextlib import contextmanager
from functools import partial
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _distributed as distributed
from . import _persist
from ._decision import (
    ValidationPairs, fit_decision_rule, fit_decision_rule_from_pairs, label_offsets,
)
from ._head import PAIR_SELECTIONS, best_evidence_scale, fit_evidence_head
from ._input import PlantInput
from ._ltr_pretrainer import LTRPretrainer
from ._mi_initializer import MIInitializer, text_input_tags
from ._nn import NETWORK_PARAMS, build_plant_net, plant_attention
from ._pretrained import PretrainedEncoder
from ._stage1 import fit_stage_one, validation_carve
from ._train import TrainConfig, iterate_logits, predict_logits, train_network
from ._validation import (
    check_targets, check_texts, label_position, resolve_device, targets_to_format,
)
from .callbacks import Checkpoint, EarlyStopping, FreezeEncoder, ProgressPrinter

__all__ = ["PlantClassifier"]

#: The stage-1 steps a PlantClassifier creates on demand for nested parameters
#: (``set_params(mi__top_k=50)`` on a classifier whose ``mi`` is None).
_STAGE_ONE_STEPS = {"mi": MIInitializer, "ltr": LTRPretrainer}


class PlantClassifier(ClassifierMixin, BaseEstimator):
    """Multi-label text classifier with label-wise attention planted from an L2R model.

    The default model has two parts whose scores add up:

    - **planted label-wise attention** (the PLANT model): word embeddings and a sequence
      encoder (a bidirectional GRU by default) give a state per word; every label attends
      over the states with its own query and scores its context vector. The queries and
      the word keys start at the factors of a learning-to-rank model
      (:class:`LTRPretrainer`) that ranks each label's words by mutual information
      (:class:`MIInitializer`), and the frozen L2R score of every input word is added to
      the attention logits, so that at step 0 each label reads a document the way the L2R
      model ranks its words;
    - a frozen **linear evidence head**: one linear SVM per label over that label's own
      evidence words (its top MI words, and the commonest co-occurring words of labels
      with many documents), fitted before the network trains, weighted into the output on
      validation data (``evidence_scale_``).

    ``predict_proba`` gives probabilities calibrated on the validation split; ``predict``
    returns exactly the labels whose probability is at least ``threshold_`` (0.5 by
    default).

    Parameters
    ----------
    embed_dim : int, default=100
        Word embedding size.
    hidden_size : int, default=64
        Encoder size (per direction for the GRU).
    encoder : {"gru", "cnn", "transformer"}, PretrainedEncoder or torch.nn.Module, default="gru"
        Sequence encoder. A :class:`PretrainedEncoder` plants the attention on a local
        Hugging Face model (stage 1 then ranks that model's subword vocabulary, and
        ``max_length`` counts its subword tokens; ``embed_dim`` and ``hidden_size`` are
        unused). A module must map ``(embeddings (n, T, embed_dim), mask (n, T))`` to
        states ``(n, T, D)`` and expose ``output_dim = D``.
    dropout : float, default=0.2
        Dropout on embeddings and encoder states.
    plant : bool, default=True
        Start the attention's queries (and keys) at the L2R factors. False starts them at
        random and changes nothing else: the paper's control, the same network with the
        same inputs and the same evidence head.
    plant_keys : bool, default=True
        With ``plant``, plant the word keys as well as the label queries (False plants the
        queries only).
    static_scores : bool, default=True
        Add the frozen L2R score ``u_t . v_l + b_t`` of each input word to the attention
        logits (with or without planting).
    evidence_head : bool, default=True
        Add the frozen linear evidence head. False is the label-wise attention model alone
        (the paper's architecture).
    evidence_pairs : {"mi+cooccurrence", "mi", "cooccurrence"}, default="mi+cooccurrence"
        The (label, word) pairs the head weighs. "mi": the words stage 1 ranks highest by
        mutual information with the label (``mi.top_k`` per label). "cooccurrence": every
        word seen in a training document of the label (at most 1,000 per label, those in
        the most of its documents): nothing selected by stage 1. "mi+cooccurrence": the MI
        words, and for a label with more training documents than ``mi.top_k`` also its most
        frequent co-occurring words, one per document beyond ``mi.top_k`` (1,000 words in
        all at most): rare labels keep the MI words alone, frequent ones can also weigh
        common words, for or against.
    evidence_tf : {"sublinear", "sublinear+raw"}, default="sublinear"
        Term frequency of the head's tf-idf values. "sublinear": ``1 + log tf``.
        "sublinear+raw": each pair's word is seen twice, by its sublinear and by its
        raw-count tf-idf, and the head weighs the two apart (twice the weights). Measured
        better on short news texts (Reuters) and worse on long clinical notes; see the
        user guide.
    evidence_C : float, default=1.0
        Inverse regularisation strength of the head's SVMs (liblinear's ``C``).
    inattention_k : int or None, default=None
        Keep only each label's ``inattention_k`` highest-scoring positions (per chunk) in
        the softmax; None attends to every position.
    shortlist : int, "auto" or None, default="auto"
        Compute each document's attention only for its ``shortlist`` best candidate labels
        by the cheap linear evidence (the evidence head's score, else the L2R score of the
        document), its true labels added in training; the other labels get their output
        bias plus the head's term. This is how label-wise attention reaches very large label
        sets (AttentionXML, LightXML). "auto": 256 candidates when there are more than
        1,000 labels (5,000 without the head, when only the static scores rank them), else
        every label. None: every label.
    max_length : int, default=256
        Tokens per chunk.
    stateful : bool, default=True
        Read documents longer than ``max_length`` in up to ``max_chunks`` chunks, with an
        exact streaming softmax over the chunks; False truncates to the first chunk.
    max_chunks : int, default=8
        Chunks read per document when ``stateful``.
    batch_size : int, default=64
    learning_rate : float, default=3e-3
        Peak AdamW learning rate (linear warm-up, then linear decay).
    weight_decay : float, default=0.01
    max_iter : int, default=15
        Maximum number of epochs.
    early_stopping : bool, default=True
        Stop when the validation nDCG@5 has not improved for ``n_iter_no_change`` epochs
        and restore the best epoch's weights (only with at least 50 validation documents:
        on fewer the score is too noisy to stop on, and every epoch runs).
    validation_fraction : float, default=0.1
        Share of the training documents held out for early stopping, the head's weight,
        the calibration and the decision rule. Fitting on raw text, stage 1 and the head
        never see them either.
    n_iter_no_change : int, default=3
    tol : float, default=1e-4
    freeze_encoder_epochs : int, default=0
        Epochs during which only the attention and output layer train.
    threshold : "auto" or float in (0, 1), default="auto"
        The decision rule. "auto": per-label decision margins tuned on the validation split
        for micro-F1 (each label's logit offset by its training log-odds and by the head's
        cross-validated SVM margin, as LibMultiLabel's SCutFBR does for rare labels; one
        cut on top), and probabilities calibrated on those margins so that a label is
        predicted exactly when its probability is at least 0.5 (``threshold_`` is 0.5). A
        float: the probabilities calibrated on the validation split, cut at that value.
    classes : array-like of shape (n_labels,), default=None
        Label names in column order. With a 0/1 indicator target (such as
        ``load_dataset(...).target``, with ``.target_names``) they name the columns, so that
        ``classes_``, explanations, reports and saved models show names; with label lists
        they fix the label space and its order (labels outside it are an error).
    mixed_precision : bool, default=True
        bfloat16 autocast on CUDA while training (the attention softmax stays float32).
        Predictions, validation scores and explanations always run in float32, so a model
        scores the same on the GPU as on the CPU.
    warm_start : bool, default=False
        Continue training the fitted (or loaded) network on the next ``fit`` (same labels;
        stage 1 and the evidence head are kept as they are, the head's weight and the
        decision rule are chosen again on the new validation split).
    checkpoint_dir : str, path-like or None, default=None
        Save the fit's state there: stage 1 and the head once, then the whole training
        state after every epoch, atomically. A fit started again with the same parameters
        and data continues from the last saved epoch and ends with the same model as an
        uninterrupted fit. A directory holding another fit's checkpoint is an error.
    callbacks : list of plantlearn.callbacks.Callback or None, default=None
        Extra callbacks of the training loop (see :mod:`plantlearn.callbacks`).
    n_jobs : int or None, default=None
        joblib workers for the per-label work (the evidence head's SVMs and their
        cross-validated thresholds): None is one, -1 every core. Inside
        ``joblib.parallel_backend("dask")`` (or "ray") the work spreads over that cluster.
        Results do not depend on it.
    device : str, default="auto"
        "auto" uses CUDA when present, else CPU.
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        1: progress of every stage and one line per epoch; 2: also within epochs.
    mi : MIInitializer or None, default=None
        Stage 1a used when fitting on raw text (tunable as ``mi__top_k``, also when None).
    ltr : LTRPretrainer or None, default=None
        Stage 1b used when fitting on raw text (tunable as ``ltr__n_factors``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_labels,)
        Label names (from label lists or ``classes``), else column indices.
    target_format_ : {"sparse", "dense", "labels"}
        The format of the fitted target, which ``predict`` mirrors.
    tokenizer_ : TextTokenizer
    mi_ : MIInitializer
        The fitted stage 1a (its statistics come from the training part of the carve).
    ltr_ : LTRPretrainer or None
        The fitted stage 1b (None when neither ``plant`` nor ``static_scores`` needs it).
    net_ : PlantNet
        The trained network (on CPU between calls).
    validation_indices_ : ndarray of int
        The training documents held out as the validation split.
    evidence_thresholds_ : ndarray of shape (n_labels,) or None
        The head's cross-validated SVM margin thresholds (offsets of ``threshold="auto"``).
    shortlist_size_ : int
        Candidate labels per document whose attention is computed (0: every label).
    evidence_scale_ : float
        Weight of the evidence head's term in the logits (0 without a head), chosen by
        validation nDCG@5 among 0 to 24.
    decision_rule_ : DecisionRule
        The calibration and the decision rule fitted on the validation split.
    threshold_ : float or ndarray
        The probability threshold(s) of ``predict``.
    n_iter_ : int
        Epochs run.
    best_iteration_ : int or None
        The epoch whose weights were kept by early stopping (None: the last).
    history_ : list of dict
        One record per epoch: ``epoch``, ``train_loss``, ``valid_ndcg@5``, ``seconds``.
    loss_curve_ : list of float
        Training loss per epoch.
    validation_scores_ : list of float
        Validation nDCG@5 per epoch.
    fit_time_ : dict
        Seconds spent in each step, in the order they ran (``check``, ``carve``, ``stage1``,
        ``evidence_head``, ``encode``, ``train``, ``evidence_scale``, ``decision_rule``; the
        first four only when they ran), and ``total``.

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
        "encoder": [StrOptions({"gru", "cnn", "transformer"}), torch.nn.Module,
                    PretrainedEncoder],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "plant": ["boolean"],
        "plant_keys": ["boolean"],
        "static_scores": ["boolean"],
        "evidence_head": ["boolean"],
        "evidence_pairs": [StrOptions(set(PAIR_SELECTIONS))],
        "evidence_tf": [StrOptions({"sublinear", "sublinear+raw"})],
        "evidence_C": [Interval(Real, 0, None, closed="neither")],
        "inattention_k": [Interval(Integral, 1, None, closed="left"), None],
        "shortlist": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
        "max_length": [Interval(Integral, 1, None, closed="left")],
        "stateful": ["boolean"],
        "max_chunks": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "freeze_encoder_epochs": [Interval(Integral, 0, None, closed="left")],
        "threshold": [Interval(Real, 0, 1, closed="neither"), StrOptions({"auto"})],
        "classes": ["array-like", None],
        "mixed_precision": ["boolean"],
        "warm_start": ["boolean"],
        "checkpoint_dir": [str, os.PathLike, None],
        "callbacks": [list, None],
        "n_jobs": [Integral, None],
        "device": [str, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "mi": [HasMethods(["fit", "transform"]), None],
        "ltr": [HasMethods(["fit", "transform"]), None],
    }

    def __init__(self, *, embed_dim=100, hidden_size=64, encoder="gru", dropout=0.2,
                 plant=True, plant_keys=True, static_scores=True, evidence_head=True,
                 evidence_pairs="mi+cooccurrence", evidence_tf="sublinear", evidence_C=1.0,
                 inattention_k=None, shortlist="auto", max_length=256, stateful=True,
                 max_chunks=8,
                 batch_size=64, learning_rate=3e-3, weight_decay=0.01, max_iter=15,
                 early_stopping=True, validation_fraction=0.1, n_iter_no_change=3, tol=1e-4,
                 freeze_encoder_epochs=0, threshold="auto", classes=None, mixed_precision=True,
                 warm_start=False, checkpoint_dir=None, callbacks=None, n_jobs=None,
                 device="auto", random_state=None, verbose=0, mi=None, ltr=None):
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
        self.evidence_C = evidence_C
        self.inattention_k = inattention_k
        self.shortlist = shortlist
        self.max_length = max_length
        self.stateful = stateful
        self.max_chunks = max_chunks
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.freeze_encoder_epochs = freeze_encoder_epochs
        self.threshold = threshold
        self.classes = classes
        self.mixed_precision = mixed_precision
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.callbacks = callbacks
        self.n_jobs = n_jobs
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

    def set_params(self, **params):
        """Set parameters; nested stage-1 parameters create the step when it is None.

        ``PlantClassifier().set_params(mi__top_k=50)`` (as GridSearchCV does) works on a
        default classifier: the missing ``mi`` (or ``ltr``) becomes a default
        :class:`MIInitializer` (:class:`LTRPretrainer`) whose parameter is then set.
        """
        for name, step in _STAGE_ONE_STEPS.items():
            nested = any(key.startswith(name + "__") for key in params)
            if nested and params.get(name, getattr(self, name, None)) is None:
                params = {name: step(), **params}
        return super().set_params(**params)

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, Y):
        """Fit stage 1 (unless given by a pipeline), plant, fit the head, train, calibrate.

        The new model is built aside and replaces the fitted one only once it is complete:
        an error or an interruption (Ctrl-C) during a refit leaves the previous model as it
        was.

        Parameters
        ----------
        X : iterable of str or PlantInput
            Raw training documents, or the output of a fitted MIInitializer /
            LTRPretrainer (then their statistics are reused).
        Y : sparse matrix, 0/1 array of shape (n_documents, n_labels), or list of label lists
            Label assignments; predictions come back in the same format.

        Returns
        -------
        self : PlantClassifier
        """
        times = {}
        clock = partial(_timed, times)
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        device = resolve_device(self.device)
        dist = distributed.current(device.type)  # torchrun: one rank of a data-parallel fit
        device = dist.device(device)
        with clock("check"):
            texts, Y, target_format, classes, upstream = self._check_fit_input(X, Y)
        warm = self.warm_start and hasattr(self, "net_")
        checkpoint = self._open_checkpoint(texts, Y, classes, warm, dist)

        # Steps 1-4 (carve, stage 1, planted network, evidence head), unless a warm start or
        # this fit's checkpoint already holds their result.
        # In a data-parallel fit rank 0 alone reads the checkpoint or computes the steps, and
        # sends the result to the other ranks.
        if warm:
            prepared = self._prepared_from_fitted(len(texts), seed)
        else:
            prepared = (checkpoint.load_prepared() if checkpoint is not None and dist.is_main
                        else None)
            prepared = dist.broadcast(prepared)
        if prepared is None and not dist.is_main:
            prepared = dist.broadcast(None)
        elif prepared is None:
            with clock("carve"):
                train_rows, val_rows = validation_carve(len(texts), self.validation_fraction,
                                                        seed)
            with clock("stage1"):
                mi, ltr = fit_stage_one(
                    texts, Y, train_rows, classes=classes, upstream=upstream, mi=self.mi,
                    ltr=self.ltr, need_ltr=self.plant or self.static_scores, seed=seed,
                    device=self.device, verbose=self.verbose,
                    tokenizer=self._backbone_path())
            net = self._planted_network(mi, ltr, Y.shape[1], seed)
            with clock("evidence_head"):
                margins = self._fit_head(net, mi, texts, Y, train_rows, seed)
            prepared = _Prepared(mi, ltr, mi.tokenizer_, net, train_rows, val_rows, margins)
            if checkpoint is not None:
                checkpoint.save_prepared(prepared)
            prepared = dist.broadcast(prepared)

        prepared.net.shortlist_size = resolve_shortlist(
            self.shortlist, Y.shape[1], ranker=prepared.net.candidate_ranker)
        # Steps 5-7 (training, the head's weight, the decision rule) on the carve's two parts.
        with clock("encode"):
            docs = self._encode(prepared.tokenizer, texts)
        train_docs = [docs[i] for i in prepared.train_rows]
        val_docs = [docs[i] for i in prepared.val_rows]
        Y_train, Y_val = Y[prepared.train_rows], Y[prepared.val_rows]
        net = prepared.net.to(device)
        # A frozen backbone keeps each chunk's hidden states for the fit's epochs.
        backbone_cache = getattr(net.encoder, "clear_cache", None) is not None
        if backbone_cache:
            net.encoder.caching = True
        try:
            with clock("train"):
                trainer = train_network(
                    net, train_docs, Y_train, val_docs, Y_val, config=self._train_config(),
                    device=device, seed=seed,
                    callbacks=self._training_callbacks(checkpoint, warm), distributed=dist)
            with clock("evidence_scale"):
                scale = self._choose_evidence_scale(net, val_docs, Y_val, device)
            with clock("decision_rule"):
                rule = self._fit_decision_rule(net, val_docs, Y_val, Y_train,
                                               prepared.evidence_thresholds, device)
        finally:
            net.cpu()
            if backbone_cache:
                net.encoder.caching = False
                net.encoder.clear_cache()
        times["total"] = sum(times.values())
        self._set_fitted(prepared, trainer, scale, rule, classes, target_format, times)
        if self.verbose and dist.is_main:
            print(f"[PlantClassifier] done in {times['total']:.1f}s ("
                  + ", ".join(f"{k} {v:.1f}s" for k, v in times.items() if k != "total")
                  + f"); evidence scale {scale:g}", flush=True)
        return self

    def _backbone_path(self):
        """The model directory of a pretrained encoder (checked), or None."""
        if not isinstance(self.encoder, PretrainedEncoder):
            return None
        path = self.encoder.model_directory()
        tokenizer = self.encoder.tokenizer()
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        positions = config.get("max_position_embeddings")
        special = len(tokenizer.prefix_ids_) + len(tokenizer.suffix_ids_)
        if positions is not None and self.max_length + special > positions:
            raise ValueError(
                f"max_length={self.max_length} does not fit the pretrained encoder: it reads "
                f"{positions} positions, {special} of them its special tokens; use "
                f"max_length <= {positions - special}.")
        return path

    def _check_fit_input(self, X, Y):
        """Documents, CSR targets, their format, label names, and upstream stage-1 steps."""
        upstream = X if isinstance(X, PlantInput) else None
        texts = check_texts(X.texts if upstream is not None else X)
        names = None if self.classes is None else np.asarray(self.classes)
        if names is not None and (names.ndim != 1 or names.size == 0
                                  or np.unique(names).size != names.size):
            raise ValueError("classes must be a 1-D sequence of distinct label names.")
        if upstream is not None and names is None:
            names = upstream.mi.classes_  # label lists: the pipeline's label order
        warm = self.warm_start and hasattr(self, "net_")
        if warm and names is None and self.target_format_ == "labels":
            names = self.classes_  # the fitted label space (label lists outside it: an error)
        Y_csr, target_format, classes = check_targets(Y, len(texts), classes=names)
        if target_format != "labels" and names is not None:
            if names.size != Y_csr.shape[1]:
                raise ValueError(
                    f"classes names {names.size} labels but Y has {Y_csr.shape[1]} columns.")
            classes = names
        if upstream is not None and Y_csr.shape[1] != upstream.mi.mi_.shape[0]:
            raise ValueError(
                f"Y has {Y_csr.shape[1]} labels but the upstream MIInitializer was fitted "
                f"on {upstream.mi.mi_.shape[0]}; pass the same Y to every pipeline step.")
        if warm and Y_csr.shape[1] != self.classes_.size:
            raise ValueError(f"warm_start=True needs the same labels: fitted on "
                             f"{self.classes_.size}, got {Y_csr.shape[1]}.")
        return texts, Y_csr, target_format, np.asarray(classes), upstream

    def _planted_network(self, mi, ltr, n_labels, seed):
        """The network, with its attention started from stage 1 (or at random)."""
        key_dim = (ltr.token_factors_.shape[1] if ltr is not None
                   else (self.ltr or LTRPretrainer()).n_factors)
        net = build_plant_net(mi.tokenizer_.vocab_size, n_labels, key_dim, seed=seed,
                              **{name: getattr(self, name) for name in NETWORK_PARAMS})
        factors = ((ltr.token_factors_, ltr.label_factors_, ltr.token_bias_)
                   if ltr is not None else (None, None, None))
        plant_attention(net.attention, *factors, plant=self.plant, plant_keys=self.plant_keys,
                        static_scores=self.static_scores,
                        generator=torch.Generator().manual_seed(seed))
        label_docs = np.asarray(mi.label_document_frequency_, dtype=np.float64)
        net.init_output_bias(label_docs / max(mi.n_documents_, 1))
        return net

    def _fit_head(self, net, mi, texts, Y, train_rows, seed):
        """The evidence head's pairs and SVMs (and their margin thresholds), or None."""
        if not self.evidence_head:
            return None
        train_docs = self._encode(mi.tokenizer_, [texts[i] for i in train_rows])
        return fit_evidence_head(
            net.evidence, train_docs, Y[train_rows], mi, selection=self.evidence_pairs,
            C=self.evidence_C, batch_size=self.batch_size * 4, max_length=self.max_length,
            random_state=seed, margin_thresholds=self.threshold == "auto",
            n_jobs=self.n_jobs, verbose=self.verbose)

    def _train_config(self):
        return TrainConfig(max_iter=self.max_iter, batch_size=self.batch_size,
                           max_length=self.max_length, learning_rate=self.learning_rate,
                           weight_decay=self.weight_decay, mixed_precision=self.mixed_precision)

    def _training_callbacks(self, checkpoint, warm):
        callbacks = [EarlyStopping(self.n_iter_no_change, self.tol)] if self.early_stopping else []
        if self.freeze_encoder_epochs and not warm:
            callbacks.append(FreezeEncoder(self.freeze_encoder_epochs))
        callbacks.append(ProgressPrinter(self.verbose))
        callbacks.extend(copy.deepcopy(list(self.callbacks or [])))
        if checkpoint is not None:
            callbacks.append(Checkpoint(checkpoint.training_file))
        return callbacks

    def _choose_evidence_scale(self, net, val_docs, Y_val, device):
        """The head's weight in the output, by validation nDCG@5 (1 without validation)."""
        head = net.evidence
        if head.n_pairs == 0:
            head.scale.fill_(0.0)
            return 0.0
        if not val_docs or Y_val.nnz == 0:
            head.scale.fill_(1.0)  # nothing to choose it on
            return 1.0
        parts = iterate_logits(net, val_docs, batch_size=self.batch_size * 2,
                               max_length=self.max_length, device=device, return_parts=True)
        scale, _ = best_evidence_scale(parts, Y_val)
        head.scale.fill_(scale)
        return scale

    def _fit_decision_rule(self, net, val_docs, Y_val, Y_train, evidence_thresholds, device):
        offsets = label_offsets(Y_train, evidence_thresholds, float(net.evidence.scale))
        cardinality = Y_train.nnz / max(Y_train.shape[0], 1)
        n_labels = Y_val.shape[1]
        if val_docs and Y_val.nnz and len(val_docs) * n_labels > DENSE_DECISION_PAIRS:
            # A validation matrix too large to hold: candidates and a sample, batch by batch.
            pairs = ValidationPairs(
                offsets, per_document=max(50, int(np.ceil(10 * cardinality))),
                sample_rate=min(1.0, CALIBRATION_SAMPLE / (len(val_docs) * n_labels)))
            for idx, logits in iterate_logits(net, val_docs, batch_size=self.batch_size * 2,
                                              max_length=self.max_length, device=device):
                pairs.add(idx, logits.numpy(), Y_val[idx])
            return fit_decision_rule_from_pairs(pairs, len(val_docs), n_labels,
                                                threshold=self.threshold,
                                                training_cardinality=cardinality)
        logits = None
        if val_docs and Y_val.nnz:
            logits = predict_logits(net, val_docs, batch_size=self.batch_size * 2,
                                    max_length=self.max_length, device=device)
        return fit_decision_rule(logits, Y_val, threshold=self.threshold, offsets=offsets,
                                 training_cardinality=cardinality)

    def _set_fitted(self, prepared, trainer, scale, rule, classes, target_format, times):
        """Swap the new model in, all at once (the last step of fit)."""
        history = [dict(h) for h in trainer.history]
        self.__dict__.update({
            "classes_": classes,
            "target_format_": target_format,
            "mi_": prepared.mi,
            "ltr_": prepared.ltr,
            "tokenizer_": prepared.tokenizer,
            "net_": trainer.net,
            "validation_indices_": np.asarray(prepared.val_rows),
            "evidence_thresholds_": prepared.evidence_thresholds,
            "evidence_scale_": float(scale),
            "shortlist_size_": int(trainer.net.shortlist_size),
            "decision_rule_": rule,
            "n_iter_": len(history),
            "best_iteration_": trainer.best_epoch,
            "history_": history,
            "fit_time_": dict(times),
        })

    def _prepared_from_fitted(self, n_documents, seed):
        """warm_start: the fitted stage 1, a copy of the network and a new carve."""
        train_rows, val_rows = validation_carve(n_documents, self.validation_fraction, seed)
        return _Prepared(self.mi_, self.ltr_, self.tokenizer_, copy.deepcopy(self.net_),
                         train_rows, val_rows, self.evidence_thresholds_)

    def _open_checkpoint(self, texts, Y, classes, warm, dist):
        if self.checkpoint_dir is None:
            return None
        if warm:
            raise ValueError("checkpoint_dir cannot be combined with warm_start=True: a "
                             "checkpoint restarts a fit from its own beginning.")
        opened = None
        if dist.is_main:  # creates the directory; the other ranks then read it
            opened = _persist.CheckpointDirectory.open(
                self.checkpoint_dir, params=self._json_params(), texts=texts, Y=Y,
                classes=classes, estimator=self)
        dist.barrier()
        if opened is None:
            opened = _persist.CheckpointDirectory.open(
                self.checkpoint_dir, params=self._json_params(), texts=texts, Y=Y,
                classes=classes, estimator=self)
        return opened

    # ------------------------------------------------------------- predict

    def _predict_texts(self, X):
        check_is_fitted(self, "net_")
        return check_texts(X.texts if isinstance(X, PlantInput) else X, allow_empty_corpus=True)

    def _encode(self, tokenizer, texts):
        return tokenizer.encode_chunks(texts, max_length=self.max_length,
                                       max_chunks=self.max_chunks if self.stateful else 1)

    def _logit_batches(self, texts):
        """(indices, logits) batch by batch, the network on the device meanwhile."""
        device = resolve_device(self.device)
        self.net_.to(device)
        try:
            yield from iterate_logits(
                self.net_, self._encode(self.tokenizer_, texts), batch_size=self.batch_size * 2,
                max_length=self.max_length, device=device)
        finally:
            self.net_.cpu()

    def _logits(self, X):
        texts = self._predict_texts(X)
        out = np.zeros((len(texts), self.classes_.size), dtype=np.float32)
        for idx, logits in self._logit_batches(texts):
            out[idx] = logits.numpy()
        return out

    def _decisions(self, X):
        """``predict``'s 0/1 CSR matrix, decided batch by batch: no (documents x labels)
        dense matrix is ever held."""
        texts = self._predict_texts(X)
        rule = self.decision_rule_
        blocks, order = [], []
        for idx, logits in self._logit_batches(texts):
            blocks.append(rule.decide(logits.numpy()))
            order.append(idx)
        if not blocks:
            return sp.csr_matrix((0, self.classes_.size), dtype=np.int8)
        stacked = sp.vstack(blocks, format="csr")
        # Batches come in length order: put the rows back in input order.
        position = np.empty(len(texts), dtype=np.int64)
        position[np.concatenate(order)] = np.arange(len(texts))
        return stacked[position]

    def _probabilities(self, X):
        texts = self._predict_texts(X)
        out = np.zeros((len(texts), self.classes_.size), dtype=np.float64)
        for idx, logits in self._logit_batches(texts):
            out[idx] = self.decision_rule_.probabilities(logits.numpy())
        return out

    def decision_function(self, X):
        """Ranking scores of every label, shape (n_documents, n_labels): the network's logits
        (the attention path plus the weighted evidence head).

        Rank a document's labels by these (P@k, nDCG@k; ``predict_topk`` does). They are not
        probabilities, and labels have different cuts on them: decide with :meth:`predict`
        or :meth:`predict_proba`.
        """
        return self._logits(X)

    def predict_proba(self, X):
        """Calibrated probability of every label, a dense array of shape (n_documents, n_labels).

        Fitted on the validation split (``decision_rule_``); a label is predicted exactly
        when its probability is at least ``threshold_``.
        """
        return self._probabilities(X)

    def predict(self, X):
        """Labels whose probability reaches ``threshold_``.

        Returns the format ``fit`` received: CSR for sparse, a dense 0/1 array for dense,
        and a list of label lists for label lists.
        """
        return targets_to_format(self._decisions(X), self.target_format_, self.classes_)

    def predict_topk(self, X, k=5):
        """The k best-ranked labels of every document (by :meth:`decision_function`), best
        first, with their calibrated probabilities.

        Never materialises the full (documents x labels) matrix, so it is the path for very
        many labels. A label's probability is that of its own decision margin: a label
        ranked lower can have a higher probability when the labels' cuts differ.

        Returns
        -------
        indices : ndarray of shape (n_documents, k)
            Label column indices (names are ``classes_[indices]``).
        probabilities : ndarray of shape (n_documents, k)
            Their calibrated probabilities (``predict_proba``'s values).
        """
        texts = self._predict_texts(X)
        n_labels = self.classes_.size
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_labels:
            raise ValueError(f"k must be an int in [1, {n_labels}], got {k!r}.")
        idx_out = np.zeros((len(texts), k), dtype=np.int64)
        prob_out = np.zeros((len(texts), k), dtype=np.float64)
        for idx, logits in self._logit_batches(texts):
            top = np.argsort(-logits.numpy(), axis=1, kind="stable")[:, :k]
            idx_out[idx] = top
            prob_out[idx] = self.decision_rule_.probabilities(
                np.take_along_axis(logits.numpy(), top, axis=1), columns=top)
        return idx_out, prob_out

    def score(self, X, Y, sample_weight=None):
        """Subset accuracy: the share of documents whose predicted label set is exactly right.

        scikit-learn's default score for multi-label classifiers, here for every target
        format ``fit`` accepts (the inherited one rejects label lists).

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
        classes = self.classes_ if self.target_format_ == "labels" else None
        Y_csr, _, _ = check_targets(Y, classes=classes, require_positive=False)
        pred = self._decisions(X)
        if Y_csr.shape != pred.shape:
            raise ValueError(
                f"Y has shape {Y_csr.shape} but the model predicts {pred.shape} "
                f"(documents x labels)."
            )
        return float(accuracy_score(Y_csr, pred, sample_weight=sample_weight))

    def calibrate(self, X, Y):
        """Fit the calibration and the decision rule again on other labelled documents.

        For a labelled validation set larger than the carve (never the test set): the
        network and the head stay as they are; ``decision_rule_`` and ``threshold_`` are
        replaced. Works on a loaded model too.

        Parameters
        ----------
        X : iterable of str
        Y : sparse matrix, 0/1 array or list of label lists
            True labels in the format ``fit`` received (label lists: names of ``classes_``).

        Returns
        -------
        self : PlantClassifier
        """
        texts = self._predict_texts(X)
        classes = self.classes_ if self.target_format_ == "labels" else None
        Y_csr, _, _ = check_targets(Y, len(texts), classes=classes)
        if Y_csr.shape[1] != self.classes_.size:
            raise ValueError(f"Y has {Y_csr.shape[1]} labels; the model has {self.classes_.size}.")
        logits = self._logits(texts)
        self.decision_rule_ = self.decision_rule_.refit(logits, Y_csr)
        return self

    @property
    def threshold_(self):
        """The probability threshold(s) of ``predict`` (0.5 with ``threshold="auto"``)."""
        check_is_fitted(self, "decision_rule_")
        return self.decision_rule_.threshold_

    @property
    def loss_curve_(self):
        """Training loss per epoch."""
        check_is_fitted(self, "history_")
        return [h["train_loss"] for h in self.history_]

    @property
    def validation_scores_(self):
        """Validation nDCG@5 per epoch (empty without a validation split)."""
        check_is_fitted(self, "history_")
        return [h["valid_ndcg@5"] for h in self.history_ if "valid_ndcg@5" in h]

    def label_index(self, label):
        """Column of a label: an int is taken as a column index, anything else as a name."""
        check_is_fitted(self, "classes_")
        return label_position(self.classes_, label)

    # --------------------------------------------------------- persistence

    def __getstate__(self):
        state = self.__dict__.copy()
        # Weights travel on CPU so a GPU-fitted model unpickles anywhere.
        if "net_" in state:
            state["net_"] = state["net_"].cpu()
        return state

    def _json_params(self):
        return _persist.json_params(self)

    def save(self, path, *, include_backbone=False):
        """Save the fitted model to a directory (created or replaced atomically).

        The directory holds ``params.json`` (hyperparameters, labels, the decision rule,
        history, format version), ``weights.pt`` (a plain state dict), ``tokenizer.json``
        and ``arrays.npz`` (stage 1's statistics and factors, the carve, the head's
        thresholds). It is written under a temporary name and renamed into place, so a crash
        never leaves half a model and an existing model at ``path`` is only replaced once the
        new one is complete.

        In a data-parallel fit (torchrun) only rank 0 writes; the other ranks return the
        path. Only a plantlearn model directory (holding nothing but a model's files) or an
        empty directory is ever replaced. A ``path`` that is an existing file, a directory with
        other content, or a location inside an existing model directory raises a ValueError
        and nothing is touched.

        With a :class:`PretrainedEncoder`, the model refers to the backbone's directory
        (and to a fingerprint of its weights, checked by :meth:`load`); a fine-tuned
        backbone's weights are in ``weights.pt``. ``include_backbone=True`` copies the
        backbone's configuration, tokenizer and safetensors weights into the model's
        ``backbone/`` folder, so that the saved model loads anywhere on its own.

        Returns
        -------
        pathlib.Path
        """
        check_is_fitted(self, "net_")
        if not distributed.current().is_main:
            return Path(path)  # data-parallel fit: every rank holds the model, rank 0 writes it
        return _persist.save_model(self, path, include_backbone=include_backbone)

    @classmethod
    def load(cls, path, *, device="auto"):
        """Load a model written by :meth:`save`.

        Nothing executable is read: weights with ``torch.load(weights_only=True)``, arrays
        with ``numpy.load(allow_pickle=False)``, the rest as JSON. A missing, truncated,
        corrupt or incompatible directory raises a FileNotFoundError or ValueError naming
        the file and the problem. The loaded model can do everything a fitted one can:
        predict, explain, ``calibrate``, and continue training with ``warm_start=True``.
        """
        return _persist.load_model(cls, path, device=device)

    # --------------------------------------------------------- explanations

    def explain(self, X, top_labels=5, top_tokens=10):
        """The words the trained attention and the evidence head weighed most for each top label.

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
            Per document, per label (most probable first) a dict with ``"label"`` (class
            name or index), ``"probability"`` (calibrated, as ``predict_proba``),
            ``"predicted"``, ``"attention_share"`` and ``"head_share"`` (the parts of the
            label's logit that come from the attention path and from the weighted evidence
            head, as shares of their absolute sum), ``"tokens"`` and ``"head_tokens"``.
            ``"tokens"`` is a list of ``{"token", "weight", "start", "end", "prior"}``, one
            per word occurrence, by decreasing weight: ``text[start:end]`` is ``token``;
            ``weight`` is the label's final attention weight on that position (summing to 1
            over the positions read); ``prior`` is the planted L2R model's static score
            ``u_t . v_l + b_t`` of the word, or None without stage-1 factors.
            ``"head_tokens"`` lists the document's words by their contribution to the head's
            term (``{"token", "contribution"}``: weight x tf-idf x the head's scale).

        See Also
        --------
        explain_html : the same as a self-contained HTML page.
        """
        from ._explain import explain

        return explain(self, X, top_labels=top_labels, top_tokens=top_tokens)

    def explain_html(self, X, path=None, top_labels=5, top_tokens=10, *, ids=None, labels=None):
        """Explanations as one self-contained HTML page (inline CSS, no scripts).

        Parameters
        ----------
        X : iterable of str
        path : str or path-like, optional
            Also write the page to this file (UTF-8); its folder must exist.
        top_labels, top_tokens : int
            As in :meth:`explain`.
        ids : sequence, optional
            A title per document.
        labels : sequence of label lists, optional
            True labels per document (names, or column indices for a model without names),
            marked in the report.

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


class _Prepared:
    """What the steps before training produce: stage 1, the planted network with its
    fitted head, and the carve. Saved once per fit in a checkpoint directory."""

    def __init__(self, mi, ltr, tokenizer, net, train_rows, val_rows, evidence_thresholds):
        self.mi = mi
        self.ltr = ltr
        self.tokenizer = tokenizer
        self.net = net
        self.train_rows = np.asarray(train_rows, dtype=np.int64)
        self.val_rows = np.asarray(val_rows, dtype=np.int64)
        self.evidence_thresholds = evidence_thresholds


@contextmanager
def _timed(times, name):
    """``with _timed(times, "name"):`` adds the block's seconds to ``times["name"]``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        times[name] = times.get(name, 0.0) + time.perf_counter() - t0


#: Validation (document, label) pairs above which the decision rule is fitted on candidates
#: and a sample (``_decision.ValidationPairs``) instead of the dense score matrix: 20 million
#: pairs (5,000 documents x 4,000 labels) are 160 MB per float64 copy.
DENSE_DECISION_PAIRS = 20_000_000
#: Pairs outside the candidates sampled for the calibration at most.
CALIBRATION_SAMPLE = 2_000_000

#: Labels above which ``shortlist="auto"`` turns the shortlist on, and its size then. Chosen
#: on CodiEsp-D's dev split (1,767 labels, three seeds): 256 candidates by the head against
#: every label gained P@1, P@5, macro-F1 and rare-label macro-F1 on every seed (+1.4, +1.3,
#: +3.6, +4.0 on average) and cut the fit 6-8x, at -2.2 micro-F1 (within its seed spread); at
#: 9,000 synthetic labels ranking was level. Below 1,000 labels 256 candidates are a quarter
#: or more of them and save little.
SHORTLIST_AUTO_LABELS = 1000
SHORTLIST_AUTO_SIZE = 256
#: Without the head, candidates come from the static L2R scores, a much weaker ranker: on
#: CodiEsp-D's dev split the attention-only network shortlisted by them stayed at the
#: label-prior floor (P@1 22; planted, without static scores, over every label: 82), so "auto"
#: uses them only where attending every label is out of reach (the threshold before 1,000).
SHORTLIST_AUTO_LABELS_STATIC = 5000


def resolve_shortlist(shortlist, n_labels, *, ranker="head"):
    """Candidate labels per document for a ``shortlist`` parameter (0: every label).

    ``ranker``: what picks the candidates: ``"head"`` (the evidence head), ``"static"`` (the
    static L2R scores) or None (nothing: "auto" attends every label; an explicit size is
    refused when used).
    """
    if shortlist is None:
        return 0
    if shortlist == "auto":
        threshold = {"head": SHORTLIST_AUTO_LABELS,
                     "static": SHORTLIST_AUTO_LABELS_STATIC}.get(ranker)
        return SHORTLIST_AUTO_SIZE if threshold is not None and n_labels > threshold else 0
    return 0 if shortlist >= n_labels else int(shortlist)
