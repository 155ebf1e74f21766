"""Worker run by LibMultiLabel's own Python: train a linear model, score validation and test.

Never imported by plantlearn or its venv; :mod:`comparators.libmultilabel_linear` starts it as

    LML_PYTHON lml_worker.py IN.npz OUT.npz METHOD SEED OPTIONS

``IN.npz`` holds the tf-idf matrices ``x_fit``, ``x_val``, ``x_test`` and the label matrix
``y_fit`` (each CSR as ``{name}_data``, ``{name}_indices``, ``{name}_indptr``, ``{name}_shape``).
``OUT.npz`` receives ``val_score`` and ``test_score`` (decision values of
``linear.predict_values``; for ``thresholding`` the per-label thresholds are already added, so
a score above 0 is LibMultiLabel's own prediction) and a JSON string ``meta`` (seconds, peak
memory, versions, the workaround used).

scipy >= 1.17 quirk: ``linear.train_thresholding`` orders labels with ``np.sum(y, 2)`` on a
sparse matrix, which scipy rejects (``axis out of range``). The intent is the per-label count of
positive documents (labels are processed from most to least frequent). When the call fails with
that error it is repeated on a CSC matrix whose ``sum(axis=2)`` is ``sum(axis=0)``; nothing else
changes.
"""

import json
import resource
import sys
import time

import numpy as np
import scipy
import scipy.sparse as sp


def _csr(z, name):
    return sp.csr_matrix(
        (z[f"{name}_data"], z[f"{name}_indices"], z[f"{name}_indptr"]),
        shape=tuple(z[f"{name}_shape"]),
    )


class _CountAxisCSC(sp.csc_matrix):
    """CSC matrix on which ``sum(axis=2)`` means the column sums (see the module docstring)."""

    def tocsc(self, copy=False):
        return self.copy() if copy else self

    def sum(self, axis=None, dtype=None, out=None):
        return super().sum(axis=0 if axis == 2 else axis, dtype=dtype, out=out)


def main(argv):
    in_path, out_path, method, seed, options = argv[1], argv[2], argv[3], int(argv[4]), argv[5]
    import libmultilabel
    from libmultilabel import linear

    z = np.load(in_path)
    x_fit, x_val, x_test = _csr(z, "x_fit"), _csr(z, "x_val"), _csr(z, "x_test")
    y_fit = _csr(z, "y_fit")
    # train_thresholding draws its cross-validation folds from numpy's global generator.
    np.random.seed(seed)
    workaround = None
    t0 = time.perf_counter()
    if method == "thresholding":
        try:
            model = linear.train_thresholding(y_fit, x_fit, options=options, verbose=False)
        except ValueError as exc:
            if "axis" not in str(exc):
                raise
            workaround = f"np.sum(y, 2) on sparse y failed ({exc}); used a CSC whose sum(axis=2) is sum(axis=0)"
            np.random.seed(seed)
            model = linear.train_thresholding(
                _CountAxisCSC(y_fit.tocsc()), x_fit, options=options, verbose=False
            )
    elif method == "1vsrest":
        model = linear.train_1vsrest(y_fit, x_fit, options=options, verbose=False)
    else:
        raise ValueError(f"unknown method {method!r}")
    train_s = time.perf_counter() - t0
    val_score = np.asarray(linear.predict_values(model, x_val), dtype=np.float64)
    t0 = time.perf_counter()
    test_score = np.asarray(linear.predict_values(model, x_test), dtype=np.float64)
    predict_s = time.perf_counter() - t0
    meta = {
        "train_seconds": train_s,
        "predict_seconds": predict_s,
        "peak_rss_mb": _peak_rss_mb(),
        "libmultilabel_version": getattr(libmultilabel, "__version__", None) or _dist_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "options": options,
        "workaround": workaround,
    }
    np.savez(out_path, val_score=val_score, test_score=test_score, meta=json.dumps(meta))


def _peak_rss_mb():
    # VmHWM: ru_maxrss would include the parent's resident set inherited across fork + exec.
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _dist_version():
    try:
        from importlib.metadata import version

        return version("libmultilabel")
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    main(sys.argv)
