"""Comparators for the evidence benchmarks (never dependencies of plantlearn).

Every comparator module exposes ``fit_predict(fit_texts, Y_fit, val_texts, Y_val, test_texts,
*, seed, **options)`` returning a dict with ``test_score`` (n_test x L), ``test_pred`` (CSR,
one global threshold tuned for micro-F1 on the validation data), ``fit_seconds``,
``predict_seconds`` and ``info``. Labels without a positive (or without a negative) fitting
document cannot be trained; they are scored below every other label and never predicted.

- ``linear_svc``: tf-idf + one-vs-rest ``LinearSVC`` (scikit-learn).
- ``libmultilabel_linear``: LibMultiLabel's linear one-vs-rest techniques, run by a worker in
  its own virtual environment (``--lml-python``).
- ``libmultilabel_nn``: LibMultiLabel's BiGRU-LWAN (label-wise attention, random init), run by
  a worker in a venv with ``libmultilabel[nn]`` (``--lml-nn-python``).
- ``prior``: every document gets the same ranking, by training frequency (the floor).
"""

#: model name in the benchmarks -> (target for run_measured, fixed options)
COMPARATORS = {
    "linear_svc": ("comparators.linear_svc:fit_predict", {}),
    "lml_thresholding": ("comparators.libmultilabel_linear:fit_predict",
                         {"method": "thresholding"}),
    "lml_1vsrest": ("comparators.libmultilabel_linear:fit_predict", {"method": "1vsrest"}),
    "lml_bigru_lwan": ("comparators.libmultilabel_nn:fit_predict", {}),
    "prior": ("comparators.prior:fit_predict", {}),
}

#: comparators whose training depends on the seed (a network's initialisation and batch
#: order): they run once per seed, as the neural models do; the others are deterministic and
#: run once.
SEEDED_COMPARATORS = {"lml_bigru_lwan"}
