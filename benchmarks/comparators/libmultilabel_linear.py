"""LibMultiLabel's linear techniques (``linear.train_thresholding`` / ``linear.train_1vsrest``).

LibMultiLabel is not installed into plantlearn's environment: it runs in its own virtual
environment through :mod:`comparators.lml_worker`, started with the Python interpreter given by
``--lml-python`` (default: the environment variable ``LML_PYTHON``). Without one, or when that
interpreter cannot import ``libmultilabel``, the comparator is reported as "not installed" and
skipped. Set it up with (see benchmarks/README.md)::

    python3 -m venv /work/lml-venv && /work/lml-venv/bin/pip install libmultilabel

Data travel as ``.npz`` files: the tf-idf features (:mod:`comparators.tfidf`, identical to the
scikit-learn comparator's) are computed here, the worker trains and writes decision values.

- ``method="thresholding"``: the micromacro-freq technique (per-label thresholds from an
  internal 3-fold cross-validation, Lin et al., CIKM 2023); its own predictions (score > 0) are
  reported as ``native`` metrics.
- ``method="1vsrest"``: plain one-vs-rest.

Both are evaluated like every comparator: one global threshold on the decision values, tuned
for micro-F1 on the validation documents. liblinear options default to ``-B 1 -m THREADS``:
LibMultiLabel's solver defaults (``-s 1``: L2-loss SVM, dual; ``C=1``) plus a bias feature, as
in LibMultiLabel's example configurations (``-s 2 -B 1 ...``) and like scikit-learn's LinearSVC
intercept. Without ``-B 1`` liblinear fits no bias: on Reuters the rare labels' weights then
degenerate (macro ROC-AUC 0.865 instead of 0.975, thresholding macro-F1 46 instead of 61).
"""

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from _common import NotInstalled, fill_untrainable, trainable_labels, tune_global_threshold
from comparators.tfidf import tfidf_features

WORKER = Path(__file__).resolve().parent / "lml_worker.py"


def check_python(python):
    """Raise NotInstalled unless ``python`` exists and imports libmultilabel; return its version."""
    if not python:
        raise NotInstalled("no LibMultiLabel interpreter: pass --lml-python or set LML_PYTHON")
    if not Path(python).is_file():
        raise NotInstalled(f"--lml-python {python} does not exist")
    proc = subprocess.run(
        [python, "-c", "import importlib.metadata as m, libmultilabel.linear; "
                       "print(m.version('libmultilabel'))"],
        capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise NotInstalled(f"{python} cannot import libmultilabel.linear ({last})")
    return proc.stdout.strip()


def _put(arrays, name, M):
    M = sp.csr_matrix(M)
    arrays[f"{name}_data"] = M.data
    arrays[f"{name}_indices"] = M.indices
    arrays[f"{name}_indptr"] = M.indptr
    arrays[f"{name}_shape"] = np.asarray(M.shape)


def fit_predict(fit_texts, Y_fit, val_texts, Y_val, test_texts, *, seed=0, method="thresholding",
                lml_python=None, options=None, threads=1, **_):
    python = lml_python or os.environ.get("LML_PYTHON")
    version = check_python(python)
    if options is None:
        options = f"-B 1 -m {int(threads or 1)}"  # bias: see the module docstring
    L = Y_fit.shape[1]
    with tempfile.TemporaryDirectory(prefix="plantbench-lml.") as tmp:
        t0 = time.perf_counter()
        X_fit, X_val, X_test, _ = tfidf_features(fit_texts, val_texts, test_texts)
        tfidf_s = time.perf_counter() - t0
        cols = trainable_labels(Y_fit)
        arrays = {}
        _put(arrays, "x_fit", X_fit)
        _put(arrays, "x_val", X_val)
        _put(arrays, "x_test", X_test)
        _put(arrays, "y_fit", sp.csr_matrix(Y_fit[:, cols], dtype=np.float64))
        in_path, out_path = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(in_path, **arrays)
        proc = subprocess.run(
            [python, str(WORKER), str(in_path), str(out_path), method, str(seed), options],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"LibMultiLabel worker failed:\n{proc.stderr[-3000:]}")
        out = np.load(out_path)
        meta = json.loads(str(out["meta"]))
        val_score = fill_untrainable(out["val_score"], cols, L)
        test_score = fill_untrainable(out["test_score"], cols, L)
    threshold = tune_global_threshold(Y_val, val_score)
    native = test_score > 0 if method == "thresholding" else None
    return {
        "test_score": test_score.astype(np.float32),
        "test_pred": test_score >= threshold,
        "native_pred": native,
        # tf-idf + liblinear training (+ the worker's internal CV for thresholding)
        "fit_seconds": tfidf_s + meta["train_seconds"],
        "predict_seconds": meta["predict_seconds"],
        "info": {
            "method": method,
            "threshold": threshold,
            "libmultilabel": version,
            "worker": meta,
            "n_features": int(X_fit.shape[1]),
            "n_trained_labels": int(cols.size),
            "n_fit_docs": len(fit_texts),
            "n_val_docs": len(val_texts),
        },
    }
