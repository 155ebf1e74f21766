"""LibMultiLabel's BiGRU-LWAN (random attention init), the published neural peer.

Runs :mod:`comparators.lml_nn_worker` with a Python that has ``libmultilabel[nn]``:
``--lml-nn-python`` (default: the environment variable ``LML_NN_PYTHON``). Without one the
model is reported as "not installed". Set it up with (torch first, CPU build)::

    python3 -m venv /work/lml-nn-venv
    /work/lml-nn-venv/bin/pip install torch==2.13.0
    /work/lml-nn-venv/bin/pip install 'libmultilabel[nn]'
    /work/lml-nn-venv/bin/pip install 'setuptools<81'   # pkg_resources for its torchmetrics

Texts travel to the worker as a gzipped JSON file, scores come back as ``.npz``. The network is
trained on the comparators' fitting documents with early stopping on their validation
documents (P@1), capped at ``minutes`` of wall-clock training (default 18, as in
``shared/docs/baselines.md``); then one global threshold is tuned for micro-F1 on the validation
documents like every comparator's. Word vectors: LSA of the fitting documents (no pretrained
vectors offline; see the worker's docstring).
"""

import gzip
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from _common import NotInstalled, fill_untrainable, trainable_labels, tune_global_threshold

WORKER = Path(__file__).resolve().parent / "lml_nn_worker.py"

DEFAULT_CONFIG = {
    "epochs": 50,
    "patience": 5,
    "batch_size": 16,
    "max_seq_length": 500,
    "learning_rate": 1e-3,
    "rnn_dim": 512,
    "embed_dim": 100,
    "minutes": 18.0,
}


def check_python(python):
    if not python:
        raise NotInstalled("no LibMultiLabel nn interpreter: pass --lml-nn-python or set "
                           "LML_NN_PYTHON")
    if not Path(python).is_file():
        raise NotInstalled(f"--lml-nn-python {python} does not exist")
    proc = subprocess.run(
        [python, "-c", "import importlib.metadata as m, libmultilabel.nn.nn_utils; "
                       "print(m.version('libmultilabel'))"],
        capture_output=True, text=True, timeout=600,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise NotInstalled(f"{python} cannot import libmultilabel.nn ({last})")
    return proc.stdout.strip()


def _label_lists(Y):
    Y = sp.csr_matrix(Y)
    return [Y.indices[Y.indptr[i]:Y.indptr[i + 1]].tolist() for i in range(Y.shape[0])]


def fit_predict(fit_texts, Y_fit, val_texts, Y_val, test_texts, *, seed=0, lml_nn_python=None,
                threads=1, nn_config=None, **_):
    python = lml_nn_python or os.environ.get("LML_NN_PYTHON")
    version = check_python(python)
    cfg = {**DEFAULT_CONFIG, **(nn_config or {}), "seed": int(seed), "threads": int(threads or 1)}
    L = Y_fit.shape[1]
    cols = trainable_labels(Y_fit)
    remap = {int(c): i for i, c in enumerate(cols)}
    fit_labels = [[remap[j] for j in row if j in remap] for row in _label_lists(Y_fit)]
    val_labels = [[remap[j] for j in row if j in remap] for row in _label_lists(Y_val)]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="plantbench-lmlnn.") as tmp:
        in_path, out_path = Path(tmp) / "in.json.gz", Path(tmp) / "out.npz"
        with gzip.open(in_path, "wt", encoding="utf-8") as fh:
            json.dump({"fit": list(fit_texts), "val": list(val_texts), "test": list(test_texts),
                       "fit_labels": fit_labels, "val_labels": val_labels,
                       "n_labels": int(cols.size), "config": cfg}, fh)
        proc = subprocess.run([python, str(WORKER), str(in_path), str(out_path)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"LibMultiLabel nn worker failed:\n{proc.stderr[-3000:]}")
        out = np.load(out_path)
        meta = json.loads(str(out["meta"]))
        val_score = fill_untrainable(out["val_score"], cols, L)
        test_score = fill_untrainable(out["test_score"], cols, L)
    wall = time.perf_counter() - t0
    threshold = tune_global_threshold(Y_val, val_score)
    return {
        "test_score": test_score.astype(np.float32),
        "test_pred": test_score >= threshold,
        # The worker's training time (vocabulary, LSA vectors, network); its start-up and the
        # file transfer are in info.wall_seconds.
        "fit_seconds": meta["train_seconds"],
        "predict_seconds": meta["predict_seconds"],
        "info": {"model": "BiGRULWAN", "threshold": threshold, "libmultilabel": version,
                 "worker": meta, "wall_seconds": wall, "n_trained_labels": int(cols.size),
                 "n_fit_docs": len(fit_texts), "n_val_docs": len(val_texts)},
    }
