"""scikit-learn conventions for MIInitializer, LTRPretrainer and PlantClassifier.

What sklearn's own checks can and cannot do here
------------------------------------------------
``sklearn.utils.estimator_checks.check_estimator`` (sklearn 1.9) looks at the input tags first
and, for an estimator tagged ``string=True, two_d_array=False`` (the CountVectorizer contract
these estimators follow), runs only ``check_estimator_cloneable`` and skips everything else
with a SkipTestWarning; ``test_check_estimator_runs_what_it_can`` pins that down.

So the checks that need no data are run directly on the real estimators
(``DATA_FREE_CHECKS``). ``check_param_validation`` is among them: it feeds numeric X, but the
estimators validate their parameters (``@_fit_context``) before they look at X, so the check
is meaningful; ``test_param_validation_on_text`` repeats it with real documents anyway.

Not run, because they fit on numeric X and a text estimator rightly rejects that with a
TypeError: check_dont_overwrite_parameters, check_estimators_overwrite_params,
check_fit_check_is_fitted, check_estimators_pickle, check_fit_idempotent,
check_n_features_in, check_estimators_dtypes, check_fit2d_*, check_classifiers_*,
check_transformer_*, check_methods_*_invariance and the like. Each has a text counterpart
below (named after it). check_get_feature_names_out_error does not apply: transform returns
a PlantInput (documents plus fitted steps), not feature columns, so there are no feature names.
"""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils import estimator_checks as ec
from sklearn.utils._param_validation import (
    InvalidParameterError,
    generate_invalid_param_val,
    make_constraint,
)
from sklearn.utils.validation import check_is_fitted

from plantlearn import LTRPretrainer, MIInitializer, PlantClassifier, PlantInput
from plantlearn.datasets import make_multilabel_text
from plantlearn.metrics import precision_at_k_scorer

N_DOCS, N_LABELS = 60, 4


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """These models are tiny: threads only add OpenMP spinning, which costs 100x on a busy box."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small_mi(**params):
    return MIInitializer(top_k=20, **params)


def small_ltr(**params):
    return LTRPretrainer(**{"n_factors": 8, "max_iter": 2, "random_state": 0, **params})


def small_clf(**params):
    base = {
        "max_iter": 1, "embed_dim": 16, "hidden_size": 16, "max_length": 32, "random_state": 0,
        "mi": MIInitializer(top_k=20), "ltr": LTRPretrainer(n_factors=8, max_iter=2),
    }
    return PlantClassifier(**{**base, **params})


SMALL = {"MIInitializer": small_mi, "LTRPretrainer": small_ltr, "PlantClassifier": small_clf}
ALL_NAMES = list(SMALL)


@pytest.fixture(scope="module")
def data():
    return make_multilabel_text(n_samples=N_DOCS, n_labels=N_LABELS, vocab_size=50,
                                length=(10, 30), random_state=0)


@pytest.fixture(scope="module")
def fitted(data):
    """One fitted instance of each estimator, shared by the read-only tests."""
    X, Y = data
    return {name: make().fit(X, Y) for name, make in SMALL.items()}


# ------------------------------------------------------------------ sklearn's own checks

DATA_FREE_CHECKS = [
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_repr",
    "check_estimator_cloneable",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_valid_tag_types",
    "check_estimator_tags_renamed",
    "check_param_validation",
]


@pytest.mark.parametrize("check", DATA_FREE_CHECKS)
@pytest.mark.parametrize(
    "estimator",
    [MIInitializer(), LTRPretrainer(), PlantClassifier(),
     PlantClassifier(mi=MIInitializer(top_k=3), ltr=LTRPretrainer(mi=MIInitializer()))],
    ids=["MIInitializer", "LTRPretrainer", "PlantClassifier", "PlantClassifier-nested"],
)
def test_sklearn_data_free_check(estimator, check):
    getattr(ec, check)(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", [PlantClassifier()], ids=["PlantClassifier"])
def test_sklearn_check_estimators_unfitted(estimator):
    # predict, predict_proba and decision_function on an unfitted model raise NotFittedError
    # before looking at X, so sklearn's numeric X does not matter here.
    ec.check_estimators_unfitted("PlantClassifier", estimator)


@pytest.mark.parametrize("estimator", [MIInitializer(), LTRPretrainer()], ids=str)
def test_sklearn_check_transformers_unfitted(estimator):
    ec.check_transformers_unfitted(type(estimator).__name__, estimator)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_check_estimator_runs_what_it_can(name):
    """check_estimator only clones a string-input estimator; it must pass that."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ec.SkipTestWarning)
        results = list(ec.check_estimator(SMALL[name](), on_fail=None, on_skip=None))
    by_check = {r["check_name"]: r["status"] for r in results}
    assert by_check.get("check_estimator_cloneable") == "passed", by_check
    assert all(status != "failed" for status in by_check.values()), by_check


@pytest.mark.parametrize("name", ALL_NAMES)
def test_text_input_tags(name):
    tags = SMALL[name]().__sklearn_tags__()
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    assert tags.target_tags.required
    # two_d_labels marks label transformers (X *is* y, like MultiLabelBinarizer); these
    # estimators take documents as X, so sklearn's checks must call fit(X, y).
    assert not tags.target_tags.two_d_labels and not tags.target_tags.one_d_labels


# ---------------------------------------------------------- parameter validation on text


@pytest.mark.parametrize("name", ALL_NAMES)
def test_param_validation_on_text(name, data):
    """Every `_parameter_constraints` entry rejects a bad value with InvalidParameterError at fit.

    The text counterpart of sklearn's check_param_validation: the documents are real, so a
    rejection cannot come from the input check instead of the parameter check.
    """
    X, Y = data
    est = SMALL[name]()
    params = est.get_params(deep=False)
    assert set(est._parameter_constraints) == set(params)
    bad_type = type("BadType", (), {})()
    n_checked = 0
    for param, constraints in est._parameter_constraints.items():
        match = rf"The '{param}' parameter of {name} must be .* Got .* instead"
        with pytest.raises(InvalidParameterError, match=match):
            clone(est).set_params(**{param: bad_type}).fit(X, Y)
        for constraint in constraints:
            try:
                bad = generate_invalid_param_val(make_constraint(constraint))
            except NotImplementedError:
                continue
            with pytest.raises(InvalidParameterError, match=match):
                clone(est).set_params(**{param: bad}).fit(X, Y)
            n_checked += 1
    assert n_checked > 0


@pytest.mark.parametrize("name", ["LTRPretrainer", "PlantClassifier"])
def test_invalid_device_string_is_a_clear_error(name, data):
    X, Y = data
    with pytest.raises(ValueError, match="device='gpu0' is not a valid torch device"):
        SMALL[name](device="gpu0").fit(X, Y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("name", ["LTRPretrainer", "PlantClassifier"])
def test_cuda_on_a_cpu_machine_is_a_clear_error(name, data):
    X, Y = data
    with pytest.raises(ValueError, match="CUDA is not available"):
        SMALL[name](device="cuda").fit(X, Y)


# -------------------------------------------------- text counterparts of data checks


@pytest.mark.parametrize("name", ALL_NAMES)
def test_fit_returns_self_and_leaves_parameters_alone(name, data):
    """check_estimators_fit_returns_self, check_dont_overwrite_parameters and
    check_estimators_overwrite_params, on text."""
    X, Y = data
    est = SMALL[name]()
    before = joblib.hash(est.get_params(deep=True))
    public_before = {k for k in vars(est) if not k.startswith("_")}
    assert est.fit(X, Y) is est
    assert joblib.hash(est.get_params(deep=True)) == before
    added = {k for k in vars(est) if not k.startswith("_")} - public_before
    assert added and all(k.endswith("_") for k in added), added
    # Nested stage parameters stay unfitted templates.
    for nested in ("mi", "ltr"):
        template = est.get_params(deep=False).get(nested)
        if template is not None:
            assert not any(k.endswith("_") and not k.startswith("_") for k in vars(template))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_check_is_fitted_before_and_after(name, fitted):
    """check_fit_check_is_fitted, on text; and no n_features_in_ for text input."""
    with pytest.raises(NotFittedError):
        check_is_fitted(SMALL[name]())
    check_is_fitted(fitted[name])
    assert not hasattr(fitted[name], "n_features_in_")
    assert not hasattr(fitted[name], "feature_names_in_")


@pytest.mark.parametrize(
    "name, methods",
    [
        ("MIInitializer", ["transform", "top_tokens"]),
        ("LTRPretrainer", ["transform", "top_tokens", "scores", "holdout_ndcg"]),
        ("PlantClassifier", ["predict", "predict_proba", "decision_function", "predict_topk",
                             "save"]),
    ],
)
def test_not_fitted_error_before_fit(name, methods, tmp_path):
    est = SMALL[name]()
    args = {"transform": (["a b"],), "top_tokens": (0,), "scores": (0,), "holdout_ndcg": (),
            "predict": (["a b"],), "predict_proba": (["a b"],),
            "decision_function": (["a b"],), "predict_topk": (["a b"],),
            "save": (tmp_path / "m",)}
    for method in methods:
        with pytest.raises(NotFittedError):
            getattr(est, method)(*args[method])
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------ input errors


@pytest.mark.parametrize("name", ALL_NAMES)
def test_bare_string_is_a_type_error(name, data, fitted):
    _, Y = data
    with pytest.raises(TypeError, match="single str.*wrap it in a list"):
        SMALL[name]().fit("one document", Y[:1])
    method = "predict" if name == "PlantClassifier" else "transform"
    with pytest.raises(TypeError, match="single str"):
        getattr(fitted[name], method)("one document")


@pytest.mark.parametrize("name", ALL_NAMES)
def test_non_string_document_is_a_type_error(name, data, fitted):
    X, Y = data
    bad = list(X[:-1]) + [42]
    with pytest.raises(TypeError, match=rf"X\[{N_DOCS - 1}\] is int, expected str"):
        SMALL[name]().fit(bad, Y)
    method = "predict_proba" if name == "PlantClassifier" else "transform"
    with pytest.raises(TypeError, match=r"X\[1\] is NoneType"):
        getattr(fitted[name], method)(["fine", None])
    with pytest.raises(TypeError, match="raw text"):
        SMALL[name]().fit(np.zeros((N_DOCS, 3)), Y)


def _bad_targets(Y):
    dense = Y.toarray()
    return [
        ("length mismatch", Y[:-1], rf"X has {N_DOCS} documents but Y has {N_DOCS - 1} rows"),
        ("not 0/1", dense * 2, r"0/1 label indicator matrix; found values \[2\]"),
        ("sparse not 0/1", sp.csr_matrix(dense * 3), r"0/1 label indicator matrix"),
        ("no positive", np.zeros_like(dense), "no positive label"),
        ("1-D", dense[:, 0], r"2-D label indicator matrix.*shape \(60,\)"),
        ("strings", dense.astype(str), "must hold 0/1 numbers"),
        ("missing", None, "Y is required"),
        ("no columns", np.zeros((N_DOCS, 0)), "no label columns"),
    ]


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("case", range(8))
def test_invalid_targets_are_clear_value_errors(name, case, data):
    X, Y = data
    _, bad, match = _bad_targets(Y)[case]
    with pytest.raises(ValueError, match=match):
        SMALL[name]().fit(X, bad)


def test_empty_corpus_is_a_value_error():
    for name in ALL_NAMES:
        with pytest.raises(ValueError, match="empty"):
            SMALL[name]().fit([], np.zeros((0, 3)))


# ------------------------------------------------------ clone and nested parameters


def test_clone_gives_unfitted_copy_with_same_params(fitted):
    clf = fitted["PlantClassifier"]
    c = clone(clf)
    assert not hasattr(c, "net_")
    assert c.get_params(deep=False).keys() == clf.get_params(deep=False).keys()
    assert c.ltr is not clf.ltr and c.mi is not clf.mi
    assert joblib.hash(c.get_params()) == joblib.hash(clf.get_params())


def test_nested_parameters_of_stage_estimators():
    clf = PlantClassifier(ltr=LTRPretrainer(), mi=MIInitializer())
    params = clf.get_params(deep=True)
    assert params["ltr__n_factors"] == 64 and params["mi__top_k"] == 100
    clf.set_params(ltr__n_factors=8, mi__top_k=5, embed_dim=16)
    assert clf.ltr.n_factors == 8 and clf.mi.top_k == 5 and clf.embed_dim == 16
    with pytest.raises(ValueError, match="Invalid parameter"):
        clf.set_params(ltr__no_such_thing=1)
    # Cloning keeps the nested values.
    assert clone(clf).get_params()["ltr__n_factors"] == 8


def test_nested_ltr_parameter_is_used_in_fit(data):
    X, Y = data
    clf = small_clf()
    clf.set_params(ltr__n_factors=6, mi__top_k=4)
    clf.fit(X, Y)
    assert clf.ltr_.token_factors_.shape[1] == 6
    assert clf.net_.attention.key_dim == 6
    assert np.diff(clf.mi_.mi_.indptr).max() <= 4
    # The templates themselves are not fitted.
    assert clf.ltr_ is not clf.ltr and not hasattr(clf.ltr, "token_factors_")


# ------------------------------------------------------------------ pickle and joblib


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_classifier_pickle_round_trip_is_identical(dump, fitted, data, tmp_path):
    X, _ = data
    clf = fitted["PlantClassifier"]
    if dump == "pickle":
        clf2 = pickle.loads(pickle.dumps(clf))
    else:
        joblib.dump(clf, tmp_path / "clf.joblib")
        clf2 = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(clf2.predict_proba(X), clf.predict_proba(X))
    assert (clf2.predict(X) != clf.predict(X)).nnz == 0
    np.testing.assert_array_equal(clf2.predict_topk(X, 2)[0], clf.predict_topk(X, 2)[0])
    assert clf2.get_params().keys() == clf.get_params().keys()


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_stage_pickle_round_trip_is_identical(dump, fitted, data, tmp_path):
    X, _ = data
    for name in ("MIInitializer", "LTRPretrainer"):
        est = fitted[name]
        if dump == "pickle":
            est2 = pickle.loads(pickle.dumps(est))
        else:
            joblib.dump(est, tmp_path / "est.joblib")
            est2 = joblib.load(tmp_path / "est.joblib")
        assert est2.vocabulary_ == est.vocabulary_ if name == "MIInitializer" else True
        for label in range(N_LABELS):
            assert est2.top_tokens(label) == est.top_tokens(label)
        out = est2.transform(X[:3])
        assert isinstance(out, PlantInput) and list(out) == X[:3]
    ltr, ltr2 = fitted["LTRPretrainer"], pickle.loads(pickle.dumps(fitted["LTRPretrainer"]))
    np.testing.assert_array_equal(ltr2.token_factors_, ltr.token_factors_)
    assert ltr2.holdout_ndcg(5) == ltr.holdout_ndcg(5)


# ------------------------------------------------ reproducibility and global RNG state


def test_ltr_refit_with_fixed_seed_is_identical(data):
    X, Y = data
    a = small_ltr(random_state=7).fit(X, Y)
    b = small_ltr(random_state=7).fit(X, Y)
    np.testing.assert_array_equal(a.token_factors_, b.token_factors_)
    np.testing.assert_array_equal(a.label_factors_, b.label_factors_)
    np.testing.assert_array_equal(a.token_bias_, b.token_bias_)
    assert a.loss_curve_ == b.loss_curve_
    torch.manual_seed(99)
    np.testing.assert_array_equal(small_ltr(random_state=7).fit(X, Y).token_factors_,
                                  a.token_factors_)
    # Refitting the same object gives the same result too.
    first = a.token_factors_.copy()
    np.testing.assert_array_equal(a.fit(X, Y).token_factors_, first)
    # ... and another seed gives another model (the seed is actually used).
    c = small_ltr(random_state=8).fit(X, Y)
    assert not np.array_equal(c.token_factors_, a.token_factors_)


def test_classifier_refit_with_fixed_seed_is_identical(data, fitted):
    X, Y = data
    ref = fitted["PlantClassifier"].predict_proba(X)
    clf = small_clf()
    np.testing.assert_array_equal(clf.fit(X, Y).predict_proba(X), ref)
    np.testing.assert_array_equal(clf.fit(X, Y).predict_proba(X), ref)
    other = small_clf(random_state=1).fit(X, Y).predict_proba(X)
    assert not np.array_equal(other, ref)
    # random_state alone decides: the global seeds do not matter.
    for seed in (1, 2):
        torch.manual_seed(seed)
        np.random.seed(seed)
        np.testing.assert_array_equal(small_clf().fit(X, Y).predict_proba(X), ref)


@pytest.mark.parametrize("name", ["LTRPretrainer", "PlantClassifier"])
def test_fit_and_predict_leave_global_rng_state_alone(name, data):
    X, Y = data
    torch.manual_seed(123)
    np.random.seed(123)
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()
    est = SMALL[name]().fit(X, Y)
    if name == "PlantClassifier":
        est.predict_proba(X)
    else:
        est.holdout_ndcg(5, untrained=True)
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])
    assert after[2:] == np_state[2:]


# ------------------------------------------------------------------ pipelines


def test_three_step_pipeline_fits_and_predicts(data):
    X, Y = data
    pipe = make_pipeline(
        MIInitializer(top_k=20), LTRPretrainer(n_factors=8, max_iter=2, random_state=0),
        PlantClassifier(max_iter=1, embed_dim=16, hidden_size=16, max_length=32,
                        random_state=0),
    )
    pipe.fit(X, Y)
    mi, ltr, clf = pipe.named_steps.values()
    # The classifier reused the upstream fitted steps instead of refitting them.
    assert clf.mi_ is mi and clf.ltr_ is ltr and ltr.mi_ is mi
    proba = pipe.predict_proba(X[:5])
    assert proba.shape == (5, N_LABELS)
    np.testing.assert_array_equal(proba, clf.predict_proba(X[:5]))
    pred = pipe.predict(X[:5])
    assert sp.issparse(pred) and pred.shape == (5, N_LABELS)


def test_grid_search_over_upstream_and_classifier_parameters(data):
    X, Y = data
    pipe = make_pipeline(
        MIInitializer(top_k=20), LTRPretrainer(max_iter=1, random_state=0),
        PlantClassifier(max_iter=1, embed_dim=16, hidden_size=16, max_length=32,
                        encoder="cnn", random_state=0),
    )
    grid = {"ltrpretrainer__n_factors": [4, 8], "plantclassifier__inattention_k": [None, 3]}
    search = GridSearchCV(pipe, grid, cv=2, scoring=precision_at_k_scorer(k=3),
                          error_score="raise")
    search.fit(X, Y)
    scores = search.cv_results_["mean_test_score"]
    assert scores.shape == (4,) and np.all((scores >= 0) & (scores <= 1))
    assert search.best_params_ in search.cv_results_["params"]
    best = search.best_estimator_
    assert best.named_steps["ltrpretrainer"].token_factors_.shape[1] == (
        search.best_params_["ltrpretrainer__n_factors"])
    assert best.named_steps["plantclassifier"].net_.attention.inattention_k == (
        search.best_params_["plantclassifier__inattention_k"])
    assert best.predict_proba(X[:3]).shape == (3, N_LABELS)
    # The scorer saw a multi-label problem: P@3 computed by hand on the refit model matches.
    from plantlearn.metrics import precision_at_k

    assert search.score(X, Y) == pytest.approx(precision_at_k(Y, best.decision_function(X), k=3))


class CountingMI(MIInitializer):
    """An MIInitializer that counts its fits (class-level, so clones share the count)."""

    fits = 0

    def fit(self, X, Y):
        type(self).fits += 1
        return super().fit(X, Y)


class CountingLTR(LTRPretrainer):
    fits = 0

    def fit(self, X, Y):
        type(self).fits += 1
        return super().fit(X, Y)


def test_pipeline_memory_caches_stage_one(data, tmp_path):
    X, Y = data
    CountingMI.fits = CountingLTR.fits = 0
    pipe = Pipeline(
        [("mi", CountingMI(top_k=20)),
         ("ltr", CountingLTR(n_factors=8, max_iter=2, random_state=0)),
         ("clf", PlantClassifier(max_iter=1, embed_dim=16, hidden_size=16, max_length=32,
                                 encoder="cnn", random_state=0))],
        memory=str(tmp_path / "cache"),
    )
    pipe.fit(X, Y)
    assert (CountingMI.fits, CountingLTR.fits) == (1, 1)
    first = pipe.predict_proba(X)

    # A classifier parameter changed: both stage-1 steps come from the cache.
    pipe.set_params(clf__inattention_k=3)
    pipe.fit(X, Y)
    assert (CountingMI.fits, CountingLTR.fits) == (1, 1)
    assert not np.array_equal(pipe.predict_proba(X), first)
    cached_ltr = pipe.named_steps["ltr"]
    np.testing.assert_array_equal(cached_ltr.token_factors_,
                                  pipe.named_steps["clf"].ltr_.token_factors_)

    # An L2R parameter changed: MI still cached, L2R refit.
    pipe.set_params(ltr__n_factors=4)
    pipe.fit(X, Y)
    assert (CountingMI.fits, CountingLTR.fits) == (1, 2)
    assert pipe.named_steps["clf"].net_.attention.key_dim == 4
