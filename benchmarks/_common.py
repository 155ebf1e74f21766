"""Shared machinery of the evidence benchmarks: data splits, one metrics function, measured runs.

Everything a benchmark compares goes through the same three steps:

1. :func:`load_split` reads a dataset the same way for every model (train / dev / test, the
   label space of the training split, plus test-only labels appended at the end so that a
   label no model can know still counts as a miss);
2. each model is fitted and applied in a child process (:func:`run_measured`), which reports
   fit and predict seconds and its peak resident memory;
3. :func:`evaluate` turns the test scores and binary predictions into one dict of metrics.

Conventions (the same as ``shared/docs/baselines.md``)
------------------------------------------------------
- Label space for fitting: the training split's ``target_names``. For evaluation, labels that
  occur only in dev/test are appended as extra columns; models score them below every other
  label and never predict them (they are the "unseen" bucket, and count as misses).
- Ranking metrics average over test documents with at least one gold label.
- Thresholds: PLANT / control use their own ``threshold_`` (default ``threshold="auto"``: one
  micro-F1 cut on logits minus per-label offsets, tuned on the validation split they carve from
  the training data) and are ranked by their logits. Comparators tune one
  global threshold for micro-F1 on the ``dev`` split, or, for datasets without one
  (Reuters-21578), on a fixed 10% of train drawn with seed 0; they are then fitted on the other
  90%, so that the threshold is tuned on documents the model has not seen.
- macro-F1: over the training labels that also occur in test. The frequency buckets (unseen,
  1-5, 6-50, >50 training documents) and "rare" (1-10 training documents, present in test)
  use the reference training labels of the run (see each subcommand), as do the PSP@5
  propensities (Jain et al., A=0.55, B=1.5).
"""

import contextlib
import importlib
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import scipy.sparse as sp

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent

DATASET_ALIASES = {
    "reuters": "reuters21578_modapte",
    "reuters21578": "reuters21578_modapte",
    "codiesp": "codiesp_d_en",
    "codiesp_d": "codiesp_d_en",
    "goemotions": "goemotions",
}

#: Seed of the fixed validation carve for datasets without a dev split.
VALIDATION_SEED = 0
VALIDATION_FRACTION = 0.1
#: Seed of the --max-train / --max-test subsamples.
SUBSAMPLE_SEED = 0
BUCKET_BINS = (0, 5, 50)
RARE_RANGE = (1, 10)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def resolve_dataset(name):
    return DATASET_ALIASES.get(name, name)


def default_data_home():
    env = os.environ.get("PLANTLEARN_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def add_subset_arguments(parser, *, dataset_required=True, fraction_required=False):
    """``--dataset``, ``--data-home`` and ``--fraction`` (a nested training subset), as the
    analysis scripts take them; :func:`subset_split` loads what they name."""
    parser.add_argument("--dataset", required=dataset_required)
    parser.add_argument("--data-home", default=None,
                        help="folder of the datasets (default: PLANTLEARN_DATA or ../shared/data)")
    if fraction_required:
        parser.add_argument("--fraction", type=float, required=True)
    else:
        parser.add_argument("--fraction", type=float, default=1.0)


def subset_split(args):
    """The :class:`Split` of parsed :func:`add_subset_arguments`."""
    return Split(args.dataset, args.data_home or default_data_home())


def _load_quietly(name, subset, data_home, label_names=None):
    import warnings

    from plantlearn.datasets import load_dataset

    with warnings.catch_warnings():
        # Labels outside the given space are expected here (test-only labels are handled).
        warnings.simplefilter("ignore", UserWarning)
        return load_dataset(name, subset, data_home=data_home, label_names=label_names)


def _subsample(texts, Y, n, seed):
    if n is None or n >= len(texts):
        return texts, Y, np.arange(len(texts))
    idx = np.sort(np.random.default_rng(seed).permutation(len(texts))[:n])
    return [texts[i] for i in idx], Y[idx], idx


class Split:
    """One dataset, loaded once and shared by every model of a run.

    Attributes
    ----------
    name : str
        Dataset folder name.
    label_names : ndarray of str
        The training split's labels: the label space every model is fitted on (``L``).
    eval_label_names : ndarray of str
        ``label_names`` followed by labels seen only in dev/test (``L_eval >= L``).
    train_texts, Y_train : list of str, CSR (n_train, L)
        Training split (after ``max_train``).
    test_texts, Y_test : list of str, CSR (n_test, L_eval)
        Test split (after ``max_test``), in the evaluation label space.
    dev_texts, Y_dev : list of str and CSR (n_dev, L), or None
        The dev split when the dataset has one.
    validation : str
        Where comparators tune their threshold: ``"dev"`` or ``"train-10%-seed0"``.
    """

    def __init__(self, name, data_home, *, max_train=None, max_test=None):
        self.name = resolve_dataset(name)
        self.data_home = Path(data_home)
        train = _load_quietly(self.name, "train", self.data_home)
        self.n_train_full = len(train.data)
        self.label_names = np.asarray(train.target_names)
        self.train_texts, self.Y_train, _ = _subsample(
            train.data, train.target.tocsr(), max_train, SUBSAMPLE_SEED
        )
        dev = None
        try:
            dev_raw = _load_quietly(self.name, "dev", self.data_home)
        except FileNotFoundError:
            dev_raw = None
        test_raw = _load_quietly(self.name, "test", self.data_home)
        known = set(self.label_names.tolist())
        extra = set(test_raw.target_names.tolist())
        if dev_raw is not None:
            extra |= set(dev_raw.target_names.tolist())
        extra = sorted(extra - known)
        self.eval_label_names = np.concatenate([self.label_names, np.asarray(extra, dtype=str)])
        test = _load_quietly(self.name, "test", self.data_home, label_names=self.eval_label_names)
        self.n_test_full = len(test.data)
        self.test_texts, self.Y_test, _ = _subsample(
            test.data, test.target.tocsr(), max_test, SUBSAMPLE_SEED
        )
        if dev_raw is not None:
            dev = _load_quietly(self.name, "dev", self.data_home, label_names=self.label_names)
            self.dev_texts, self.Y_dev = dev.data, dev.target.tocsr()
            self.validation = "dev"
        else:
            self.dev_texts, self.Y_dev = None, None
            self.validation = f"train-{int(VALIDATION_FRACTION * 100)}%-seed{VALIDATION_SEED}"
        self.max_train, self.max_test = max_train, max_test

    @property
    def n_labels(self):
        return self.label_names.size

    def comparator_split(self, idx=None):
        """Fit and validation data for the comparators' global threshold.

        Parameters
        ----------
        idx : array of int, optional
            Restrict to these training documents (a learning-curve subset). Then the
            validation data is always a 10% carve of the subset (seed 0), so that every model
            sees exactly the same labelled documents; without ``idx`` the dev split is used
            when the dataset has one.

        Returns
        -------
        fit_texts, Y_fit, val_texts, Y_val, description
        """
        if idx is None and self.dev_texts is not None:
            return self.train_texts, self.Y_train, self.dev_texts, self.Y_dev, "dev"
        if idx is None:
            idx = np.arange(len(self.train_texts))
        idx = np.asarray(idx)
        perm = np.random.default_rng(VALIDATION_SEED).permutation(idx.size)
        n_val = max(1, int(round(VALIDATION_FRACTION * idx.size)))
        val, fit = np.sort(idx[perm[:n_val]]), np.sort(idx[perm[n_val:]])
        return (
            [self.train_texts[i] for i in fit],
            self.Y_train[fit],
            [self.train_texts[i] for i in val],
            self.Y_train[val],
            f"{int(VALIDATION_FRACTION * 100)}% of the training documents (seed {VALIDATION_SEED})",
        )

    def describe(self):
        Y = self.Y_train
        freq = np.bincount(Y.indices, minlength=self.n_labels)
        return {
            "name": self.name,
            "data_home": str(self.data_home),
            "n_train": len(self.train_texts),
            "n_train_full": self.n_train_full,
            "n_dev": None if self.dev_texts is None else len(self.dev_texts),
            "n_test": len(self.test_texts),
            "n_test_full": self.n_test_full,
            "n_labels_train_space": int(self.n_labels),
            "n_labels_eval_space": int(self.eval_label_names.size),
            "n_test_only_labels": int(self.eval_label_names.size - self.n_labels),
            "n_labels_without_training_docs": int((freq == 0).sum()),
            "max_train": self.max_train,
            "max_test": self.max_test,
            "comparator_validation": self.validation,
        }


def nested_subsets(n, fractions, seed):
    """Nested training subsets: the first ``ceil(f * n)`` of one permutation drawn with ``seed``.

    For a fixed seed the subset of a smaller fraction is contained in that of a larger one.
    """
    perm = np.random.default_rng(10_000 + int(seed)).permutation(n)
    out = {}
    for f in fractions:
        m = min(n, max(10, math.ceil(float(f) * n)))
        out[float(f)] = np.sort(perm[:m])
    return out


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def _pad_columns(M, n_cols, fill):
    """Append columns to a dense or sparse matrix (sparse: structural zeros, fill ignored)."""
    extra = n_cols - M.shape[1]
    if extra < 0:
        raise ValueError(f"matrix has {M.shape[1]} columns, more than {n_cols}.")
    if extra == 0:
        return M
    if sp.issparse(M):
        return sp.hstack([M, sp.csr_matrix((M.shape[0], extra), dtype=M.dtype)], format="csr")
    M = np.asarray(M)
    return np.hstack([M, np.full((M.shape[0], extra), fill, dtype=M.dtype)])


def pad_scores(y_score, n_cols):
    """Scores for labels a model cannot know: strictly below every real score."""
    y_score = np.asarray(y_score)
    if y_score.shape[1] == n_cols:
        return y_score
    low = (float(np.min(y_score)) if y_score.size else 0.0) - 1.0
    return _pad_columns(y_score.astype(np.float64, copy=False), n_cols, low)


def _f1_on(Y, P, labels):
    from plantlearn.metrics import macro_f1

    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        return float("nan")
    return macro_f1(Y, P, labels=labels)


def _rare_f1(Y, P, train_freq, present):
    """Macro-F1 over the labels present in test with RARE_RANGE training documents, and their count."""
    lo, hi = RARE_RANGE
    rare = np.flatnonzero(present & (train_freq >= lo) & (train_freq <= hi))
    return _f1_on(Y, P, rare), int(rare.size)


def evaluate(y_true, y_score, y_pred, y_train, *, y_subset_train=None, y_proba=None):
    """All metrics of a run on one score matrix and one binary prediction matrix.

    Parameters
    ----------
    y_true : CSR of shape (n_test, L_eval)
        Test labels in the evaluation label space (training labels first).
    y_score : ndarray of shape (n_test, L) or (n_test, L_eval)
        Scores; missing trailing columns (test-only labels) are scored below everything.
    y_pred : sparse or dense 0/1 of shape (n_test, L) or (n_test, L_eval)
        Binary predictions; missing trailing columns are never predicted.
    y_train : CSR of shape (n_ref, L) or (n_ref, L_eval)
        Reference training labels: label frequencies for the buckets, "rare" and PSP@5.
    y_subset_train : CSR, optional
        The labels of the training subset the model actually saw (learning curves): adds
        ``subset_rare_macro_f1`` and ``subset_n_rare_labels``, "rare" counted in that subset.
    y_proba : ndarray of shape (n_test, L), optional
        Calibrated probabilities (``predict_proba``): adds ``ece`` (all pairs of the
        training label columns) and ``ece_01`` (the pairs given at least 0.01).

    Returns
    -------
    dict
        ``p@1 p@3 p@5 ndcg@5 psp@5 micro_f1 macro_f1 macro_f1_all_present macro_auc
        rare_macro_f1 n_rare_labels`` and ``buckets`` (a list of dicts from
        :func:`plantlearn.metrics.frequency_bucket_report`, with macro-F1 and recall@5).
    """
    from plantlearn.metrics import (
        frequency_bucket_report,
        jain_propensity,
        micro_f1,
        ndcg_at_k,
        precision_at_k,
        psprecision_at_k,
    )

    Y = sp.csr_matrix(y_true)
    L_eval = Y.shape[1]
    S = pad_scores(y_score, L_eval)
    P = _pad_columns(sp.csr_matrix(y_pred, dtype=np.int8), L_eval, 0)
    T = _pad_columns(sp.csr_matrix(y_train, dtype=np.int32), L_eval, 0)

    train_freq = np.bincount(T.indices, minlength=L_eval)
    test_freq = np.bincount(Y.indices, minlength=L_eval)
    present = test_freq > 0
    out = {
        "p@1": precision_at_k(Y, S, k=1),
        "p@3": precision_at_k(Y, S, k=3),
        "p@5": precision_at_k(Y, S, k=5),
        "ndcg@5": ndcg_at_k(Y, S, k=5),
        "psp@5": psprecision_at_k(Y, S, k=5, propensities=jain_propensity(T)),
        "micro_f1": micro_f1(Y, P),
        # baselines.md's maF1@t: training labels that also occur in test.
        "macro_f1": _f1_on(Y, P, np.flatnonzero(present & (train_freq > 0))),
        # Every label present in test; a label unseen in training scores 0.
        "macro_f1_all_present": _f1_on(Y, P, np.flatnonzero(present)),
    }
    out["rare_macro_f1"], out["n_rare_labels"] = _rare_f1(Y, P, train_freq, present)
    if y_subset_train is not None:
        T_sub = _pad_columns(sp.csr_matrix(y_subset_train, dtype=np.int32), L_eval, 0)
        out["subset_rare_macro_f1"], out["subset_n_rare_labels"] = _rare_f1(
            Y, P, np.bincount(T_sub.indices, minlength=L_eval), present)
    out["macro_auc"] = _macro_auc(Y, S, np.flatnonzero(present & (train_freq > 0)))
    if y_proba is not None:
        from plantlearn.metrics import expected_calibration_error

        y_proba = np.asarray(y_proba, dtype=np.float64)
        Y_fit_space = Y[:, :y_proba.shape[1]]
        out["ece"] = expected_calibration_error(Y_fit_space, y_proba)
        out["ece_01"] = expected_calibration_error(Y_fit_space, y_proba, min_probability=0.01)
    out["n_test_docs_with_labels"] = int((np.diff(Y.indptr) > 0).sum())
    buckets = frequency_bucket_report(Y, S, T, y_pred=P, bins=BUCKET_BINS, k=5)
    out["buckets"] = [{k: jsonable(v) for k, v in row.items()} for row in buckets]
    return {k: jsonable(v) for k, v in out.items()}


def _macro_auc(Y, S, labels):
    """Mean ROC-AUC over ``labels`` that have both positives and negatives in ``Y``."""
    from sklearn.metrics import roc_auc_score

    Yc = sp.csc_matrix(Y)
    n = Y.shape[0]
    aucs = []
    for j in labels:
        col = np.zeros(n, dtype=np.int8)
        col[Yc.indices[Yc.indptr[j] : Yc.indptr[j + 1]]] = 1
        if 0 < col.sum() < n:
            aucs.append(roc_auc_score(col, S[:, j]))
    return float(np.mean(aucs)) if aucs else float("nan")


def jsonable(v):
    """``v`` with numpy scalars and arrays turned into JSON types (NaN as null)."""
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return None if math.isnan(v) else v
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.ndarray):
        return [jsonable(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    return v


def tune_global_threshold(Y_val, val_score):
    """One threshold tuned for micro-F1 on validation scores (0.0 when Y_val has no positive)."""
    # plantlearn's package imports its estimators (and torch) lazily: this import keeps
    # torch out of the comparators' processes and so out of their memory figures.
    from plantlearn._thresholds import best_global_threshold

    try:
        return float(best_global_threshold(Y_val, val_score))
    except ValueError:
        return 0.0  # no positive in the validation labels (tiny subsets only)


def fill_untrainable(score, trainable, n_labels):
    """Scatter scores of the ``trainable`` columns into ``n_labels`` columns; the others rank last."""
    score = np.asarray(score, dtype=np.float64)
    full = np.empty((score.shape[0], n_labels), dtype=np.float64)
    low = (float(score.min()) if score.size else 0.0) - 1.0
    full[:] = low
    full[:, trainable] = score
    return full


def trainable_labels(Y):
    """Columns with at least one positive and one negative document."""
    counts = np.bincount(sp.csr_matrix(Y).indices, minlength=Y.shape[1])
    return np.flatnonzero((counts > 0) & (counts < Y.shape[0]))


# --------------------------------------------------------------------------------------------
# PLANT and the no-planting control
# --------------------------------------------------------------------------------------------


def apply_params(clf, params):
    """``--set`` parameters, through the command line's own ``configure``."""
    from plantlearn.cli import configure

    return configure(clf, dict(params))


def run_plant(train_texts, Y_train, test_texts, *, plant, params, seed, dev_texts=None, **_):
    """Fit a PlantClassifier (``plant=False``: the control) and score the test documents
    (and the dev documents, when given): ranking scores, decisions and probabilities."""
    import torch

    from plantlearn import PlantClassifier

    if os.environ.get("PLANTBENCH_THREADS"):
        torch.set_num_threads(int(os.environ["PLANTBENCH_THREADS"]))
    clf = PlantClassifier(plant=plant, random_state=seed)
    apply_params(clf, params)
    clf.set_params(plant=plant)
    t0 = time.perf_counter()
    clf.fit(train_texts, Y_train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    # Rank by decision_function (the documented ranking scores); decide as predict() does,
    # from the same forward pass.
    logits = clf.decision_function(test_texts)
    pred = clf.decision_rule_.decide(logits)
    proba = clf.decision_rule_.probabilities(logits)
    predict_s = time.perf_counter() - t0
    dev = {}
    if dev_texts is not None:
        dev_logits = clf.decision_function(dev_texts)
        dev = {"dev_score": dev_logits.astype(np.float32),
               "dev_pred": clf.decision_rule_.decide(dev_logits),
               "dev_proba": clf.decision_rule_.probabilities(dev_logits).astype(np.float32)}
    thr = np.asarray(clf.threshold_) if hasattr(clf, "threshold_") else None
    info = {
        "fit_time_": dict(getattr(clf, "fit_time_", {})),
        "n_iter_": getattr(clf, "n_iter_", None),
        "validation_scores_": list(getattr(clf, "validation_scores_", [])),
        "evidence_scale_": getattr(clf, "evidence_scale_", None),
        "threshold": None if thr is None else (float(thr) if thr.ndim == 0 else
                                               f"per label ({clf.threshold!r})"),
        "best_iteration_": getattr(clf, "best_iteration_", None),
        "params": {
            k: v for k, v in clf.get_params(deep=False).items()
            if isinstance(v, (int, float, str, bool, type(None)))
        },
    }
    return {
        "test_score": logits.astype(np.float32),
        "test_pred": pred,
        "test_proba": proba.astype(np.float32),
        **dev,
        "fit_seconds": fit_s,
        "predict_seconds": predict_s,
        "info": info,
    }


# --------------------------------------------------------------------------------------------
# Measured child processes
# --------------------------------------------------------------------------------------------


def peak_rss_mb():
    """Peak resident memory of this process in MiB.

    ``VmHWM`` from ``/proc/self/status`` where it exists. ``getrusage(RUSAGE_SELF).ru_maxrss``
    is not used for the figure on Linux: the kernel carries it across ``fork`` + ``exec``, so
    a spawned child would report at least the parent's resident set at the time it was started.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


#: The arrays a model's run may return (``*_pred``: 0/1 decisions, the rest dense).
_RESULT_ARRAYS = ("test_score", "test_pred", "test_proba", "native_pred", "dev_score",
                  "dev_pred", "dev_proba")


def _child_entry(target, out_dir, threads):
    """Runs in a spawned process: import, run ``target(**kwargs)``, store results in ``out_dir``.

    The arguments are read from ``out_dir/kwargs.pkl`` rather than sent through the process
    pipe, so a child that dies while starting can never leave the parent blocked on a write.
    """
    import pickle

    out_dir = Path(out_dir)
    meta = {"status": "ok"}
    try:
        # Own process group: on a timeout the parent stops this child together with any
        # worker it started (LibMultiLabel's), and nothing else.
        os.setpgrp()
        with open(out_dir / "kwargs.pkl", "rb") as fh:
            kwargs = pickle.load(fh)
        if threads:
            # Read by run_plant (torch is imported only by the models that need it, so that
            # the comparators' memory figures do not include it).
            os.environ["PLANTBENCH_THREADS"] = str(int(threads))
        module, func = target.split(":")
        fn = getattr(importlib.import_module(module), func)
        meta["rss_before_mb"] = peak_rss_mb()  # after imports, before fitting
        res = fn(**kwargs)
        # Scores and probabilities as .npy, decisions as sparse .npz: whatever the run returns.
        for key in _RESULT_ARRAYS:
            if res.get(key) is None:
                continue
            if key.endswith("_pred"):
                sp.save_npz(out_dir / f"{key}.npz", sp.csr_matrix(res[key], dtype=np.int8))
            else:
                np.save(out_dir / f"{key}.npy", np.asarray(res[key]))
        meta.update(
            fit_seconds=float(res["fit_seconds"]),
            predict_seconds=float(res["predict_seconds"]),
            info=jsonable(res.get("info", {})),
        )
    except NotInstalled as exc:
        meta = {"status": "not installed", "error": str(exc)}
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, never swallowed
        meta = {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()}
    meta["peak_rss_mb"] = peak_rss_mb()
    # Subprocesses (LibMultiLabel's worker) report their own peak in info["worker"].
    worker = (meta.get("info") or {}).get("worker") or {}
    meta["peak_rss_children_mb"] = worker.get("peak_rss_mb")
    (out_dir / "meta.json").write_text(json.dumps(meta))


class NotInstalled(RuntimeError):
    """A comparator whose software is missing: reported and skipped, never an error."""


def run_measured(target, kwargs, *, timeout=None, threads=None):
    """Run ``target(**kwargs)`` in a fresh spawned process and collect its results.

    Parameters
    ----------
    target : str
        ``"module:function"``, importable in the child (the benchmarks folder is on its path).
    kwargs : dict
        Picklable arguments.
    timeout : float, optional
        Seconds; the child is terminated past it and the run reported as ``"timeout"``.
    threads : int, optional
        ``torch.set_num_threads`` in the child (BLAS threads follow ``OMP_NUM_THREADS``).

    Returns
    -------
    dict
        ``status`` ("ok", "error", "timeout", "not installed"), and when ok ``test_score``,
        ``test_pred`` (CSR), ``fit_seconds``, ``predict_seconds``, ``peak_rss_mb`` (the larger
        of the child's and its own subprocesses' peak resident set), ``info``.
    """
    import pickle

    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="plantbench.") as tmp:
        with open(Path(tmp) / "kwargs.pkl", "wb") as fh:
            pickle.dump(kwargs, fh, protocol=pickle.HIGHEST_PROTOCOL)
        proc = ctx.Process(target=_child_entry, args=(target, tmp, threads))
        t0 = time.perf_counter()
        proc.start()
        try:
            with _sigterm_raises():
                proc.join(timeout)
        except BaseException:
            # Ctrl-C or SIGTERM of the harness: the child leads its own process group, so
            # nothing else would stop the fit it is running.
            if proc.is_alive():
                _stop_group(proc)
            raise
        wall = time.perf_counter() - t0
        if proc.is_alive():
            _stop_group(proc)
            return {"status": "timeout", "wall_seconds": wall,
                    "error": f"stopped after {timeout:.0f} s (--time-limit-min)"}
        meta_path = Path(tmp) / "meta.json"
        if not meta_path.is_file():
            return {"status": "error", "wall_seconds": wall,
                    "error": f"child exited with code {proc.exitcode} without a result"}
        meta = json.loads(meta_path.read_text())
        meta["wall_seconds"] = wall
        if meta["status"] != "ok":
            return meta
        for key in _RESULT_ARRAYS:
            dense, sparse = Path(tmp) / f"{key}.npy", Path(tmp) / f"{key}.npz"
            meta[key] = (np.load(dense) if dense.is_file() else
                         sp.load_npz(sparse).tocsr() if sparse.is_file() else None)
        meta["peak_rss_mb"] = max(meta["peak_rss_mb"], meta.get("peak_rss_children_mb") or 0.0)
        return meta


@contextlib.contextmanager
def _sigterm_raises():
    """Within the block, SIGTERM raises SystemExit (so ``finally`` and cleanup code run)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def _raise(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_group(proc):
    """Terminate a timed-out child and the process group it leads (its workers)."""
    import signal

    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            # Not a group leader yet (killed while starting): the child alone.
            (proc.terminate if sig == signal.SIGTERM else proc.kill)()
        proc.join(wait)
        if not proc.is_alive():
            break
    # Workers that ignored SIGTERM after their parent died.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------------------------------------------
# Provenance and summaries
# --------------------------------------------------------------------------------------------


def _git(*args):
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(argv):
    """Machine, software and repository facts recorded with every result file."""
    import datetime

    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command_line": [sys.executable, *argv],
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "memory_gb": _memory_gb(),
        },
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }
    versions = {}
    for mod in ("plantlearn", "numpy", "scipy", "sklearn", "torch"):
        try:
            versions[mod] = importlib.import_module(mod).__version__
        except Exception:  # noqa: BLE001
            versions[mod] = None
    info["versions"] = versions
    info["plantlearn_version"] = versions["plantlearn"]
    return info


def _memory_gb():
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


SUMMARY_METRICS = ("p@1", "p@3", "p@5", "ndcg@5", "psp@5", "micro_f1", "macro_f1",
                   "rare_macro_f1", "subset_rare_macro_f1", "macro_auc")
SUMMARY_COSTS = ("fit_seconds", "predict_seconds", "peak_rss_mb")


def bucket_f1(run, bucket):
    for row in run.get("metrics", {}).get("buckets", []):
        if row["bucket"] == bucket:
            return row.get("macro_f1")
    return None


def summarize(runs, keys):
    """Mean and sample standard deviation of metrics and costs per group of ``keys``."""
    groups = {}
    for r in runs:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    out = []
    for key, rs in groups.items():
        ok = [r for r in rs if r.get("status") == "ok"]
        row = dict(zip(keys, key))
        row["n_runs"] = len(ok)
        row["status"] = "ok" if ok else rs[0].get("status")
        values = {}
        for m in SUMMARY_METRICS:
            values[m] = [r["metrics"].get(m) for r in ok]
        for b in ("unseen", "1-5", "6-50", ">50"):
            values[f"bucket_{b}_macro_f1"] = [bucket_f1(r, b) for r in ok]
        for c in SUMMARY_COSTS:
            values[c] = [r.get(c) for r in ok]
        for name, vs in values.items():
            vs = [v for v in vs if v is not None]
            row[name] = float(np.mean(vs)) if vs else None
            row[name + "_std"] = float(np.std(vs, ddof=1)) if len(vs) > 1 else (0.0 if vs else None)
        out.append(row)
    return out


def format_table(rows, label_keys, metrics=None, digits=1, scale=100.0):
    """Plain-text table of summary rows: metrics in percent as mean±std, costs as is."""
    metrics = metrics or ["p@1", "p@3", "p@5", "ndcg@5", "psp@5", "micro_f1", "macro_f1",
                          "rare_macro_f1"]
    header = [*label_keys, "n", *metrics, "fit s", "pred s", "peak MB"]
    table = [header]
    for r in rows:
        line = [str(r.get(k)) for k in label_keys]
        line.append(str(r.get("n_runs")) if r.get("status") == "ok" else r.get("status", "?"))
        for m in metrics:
            line.append(_pm(r.get(m), r.get(m + "_std"), scale, digits))
        line.append(_pm(r.get("fit_seconds"), r.get("fit_seconds_std"), 1.0, 1))
        line.append(_pm(r.get("predict_seconds"), None, 1.0, 1))
        line.append(_pm(r.get("peak_rss_mb"), None, 1.0, 0))
        table.append(line)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _pm(mean, std, scale, digits):
    if mean is None:
        return "-"
    s = f"{mean * scale:.{digits}f}"
    if std:
        s += f"±{std * scale:.{digits}f}"
    return s


def ratios_to_best_peer(rows, model_key="model", target="plant",
                        metrics=("p@1", "p@5", "macro_f1", "rare_macro_f1")):
    """PLANT's mean divided by the best other model's mean, per metric."""
    mine = next((r for r in rows if r.get(model_key) == target and r.get("status") == "ok"), None)
    peers = [r for r in rows if r.get(model_key) != target and r.get("status") == "ok"]
    out = {}
    if mine is None or not peers:
        return out
    for m in metrics:
        cands = [(r[m], r[model_key]) for r in peers if r.get(m) is not None]
        if not cands or mine.get(m) is None:
            continue
        best, who = max(cands)
        out[m] = {"plant": mine[m], "best_peer": who, "best_peer_value": best,
                  "ratio": (mine[m] / best) if best else None}
    return out


def format_ratios(ratios):
    if not ratios:
        return "(no ratio: PLANT or every peer missing)"
    parts = []
    for m, r in ratios.items():
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
        parts.append(f"{m}: PLANT {100 * r['plant']:.1f} / {r['best_peer']} "
                     f"{100 * r['best_peer_value']:.1f} = {ratio}")
    return "\n".join(parts)
