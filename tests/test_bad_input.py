"""Bad input, systematically (property-based, with hypothesis).

Every public entry point either works or raises a ValueError, TypeError or
FileNotFoundError whose message plantlearn wrote (or scikit-learn's parameter validation,
which names the parameter): never an error from deep inside torch, numpy or scipy. The
properties draw texts (unicode, empty, long, wrong types), targets (every format, bad
values, shapes), parameters (out of range) and model folders (missing, truncated, garbage).
"""

import json
import traceback
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantlearn import LTRPretrainer, MIInitializer, PlantClassifier
from plantlearn.datasets import load_jsonl, make_multilabel_text
from plantlearn.metrics import expected_calibration_error, micro_f1, precision_at_k

# Random inputs trip the documented warnings (empty documents, no validation split): expected.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

PLANTLEARN = str(Path(__file__).resolve().parents[1] / "plantlearn")
#: Frames whose errors count as "named by plantlearn": its own code, and scikit-learn's
#: parameter validation (InvalidParameterError names the parameter and what it accepts).
_OWN = (PLANTLEARN, "sklearn/utils/_param_validation.py")
ACCEPTED = (ValueError, TypeError, FileNotFoundError)

FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def tiny(**params):
    base = dict(max_iter=1, embed_dim=8, hidden_size=8, max_length=16, batch_size=8,
                random_state=0, mi=MIInitializer(top_k=10, min_frequency=1),
                ltr=LTRPretrainer(n_factors=4, max_iter=1))
    return PlantClassifier(**{**base, **params})


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def fitted():
    X, Y = make_multilabel_text(n_samples=60, n_labels=3, vocab_size=40, length=(5, 15),
                                random_state=0)
    return tiny().fit(X, Y), X, Y


def assert_clean_failure(call):
    """``call()`` works, or fails with a plantlearn-named ValueError/TypeError/FileNotFound."""
    try:
        return call()
    except ACCEPTED as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        origin = frames[-1].filename
        assert any(own in origin for own in _OWN), (
            f"{type(exc).__name__} raised outside plantlearn ({origin}:{frames[-1].lineno}): "
            f"{exc}")
        assert str(exc), "an error without a message"
        return exc
    except Exception as exc:  # noqa: BLE001 - the property is what is raised
        pytest.fail(f"raw {type(exc).__module__}.{type(exc).__name__}: {exc}")


# ------------------------------------------------------------------ strategies

texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
huge_text = st.builds(lambda w, n: " ".join([w] * n), st.sampled_from(["alpha", "é", "日本"]),
                      st.integers(1000, 5000))
documents = st.lists(st.one_of(texts, huge_text), min_size=0, max_size=12)

not_documents = st.one_of(
    st.none(), st.integers(), st.floats(), texts, st.binary(max_size=20),
    st.lists(st.one_of(st.none(), st.integers(), st.binary(max_size=5), st.floats()),
             min_size=1, max_size=5),
    st.lists(st.lists(texts, max_size=2), min_size=1, max_size=4),
    st.builds(lambda n: np.zeros((n, 2)), st.integers(1, 4)),
    st.builds(lambda n: sp.csr_matrix(np.ones((n, 3))), st.integers(1, 4)),
    st.dictionaries(texts, texts, max_size=3),
)


def bad_targets(n):
    return st.one_of(
        st.none(), st.integers(), texts,
        st.builds(lambda m: np.ones((m, 3)), st.integers(0, 2 * n + 1).filter(lambda m: m != n)),
        st.builds(lambda v: np.full((n, 3), v), st.sampled_from([2, -1, 0.5, np.nan, np.inf])),
        st.just(np.ones((n, 3, 2))), st.just(np.ones(n)), st.just(np.zeros((n, 0))),
        st.just(np.array([["a"] * 3] * n)),
        st.just(sp.csr_matrix(np.full((n, 3), 2.0))),
        st.lists(st.lists(st.one_of(st.integers(0, 3), texts), max_size=3),
                 min_size=0, max_size=2 * n + 2).filter(lambda rows: len(rows) != n),
        st.just([None] * n), st.just([{"a": 1}] * n),
    )


# ------------------------------------------------------------------ fit


@FAST
@given(X=not_documents)
def test_fit_with_what_is_not_documents(X):
    Y = [["a"], ["b"]]
    exc = assert_clean_failure(lambda: tiny().fit(X, Y))
    assert isinstance(exc, ACCEPTED)


@FAST
@given(data=st.data())
def test_fit_with_bad_targets(data):
    n = 6
    X = [f"doc {i} word{i % 3} other" for i in range(n)]
    Y = data.draw(bad_targets(n))
    exc = assert_clean_failure(lambda: tiny().fit(X, Y))
    assert isinstance(exc, ACCEPTED)


@FAST
@given(params=st.fixed_dictionaries({}, optional={
    "embed_dim": st.one_of(st.integers(-3, 0), st.floats(), texts),
    "max_iter": st.one_of(st.integers(-5, 0), st.just(1.5), st.none()),
    "dropout": st.floats(allow_nan=True).filter(lambda v: not 0 <= v < 1),
    "validation_fraction": st.floats(allow_nan=True).filter(lambda v: not 0 <= v < 1),
    "threshold": st.one_of(st.floats(allow_nan=True).filter(lambda v: not 0 < v < 1),
                           st.sampled_from(["global", "per_label", "AUTO", ""])),
    "evidence_pairs": texts.filter(lambda v: v not in ("mi", "cooccurrence",
                                                       "mi+cooccurrence")),
    "encoder": st.one_of(texts.filter(lambda v: v not in ("gru", "cnn", "transformer")),
                         st.integers()),
    "batch_size": st.integers(-3, 0),
    "classes": st.one_of(st.just(["x"]), st.just(["a", "a", "b"]), st.just([[1, 2], [3]])),
}).filter(bool))
def test_fit_with_out_of_range_parameters(params):
    X = ["a b c", "b c d", "c d e", "a d e"]
    Y = [["p"], ["q"], ["p", "q"], ["r"]]
    exc = assert_clean_failure(lambda: tiny(**params).fit(X, Y))
    assert isinstance(exc, ACCEPTED), params


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(X=st.lists(st.one_of(texts, huge_text), min_size=1, max_size=10), data=st.data())
def test_fit_on_any_unicode_text_works_or_says_why(X, data):
    Y = data.draw(st.lists(st.lists(st.sampled_from(["a", "b", "c"]), max_size=2),
                           min_size=len(X), max_size=len(X)))
    result = assert_clean_failure(lambda: tiny().fit(X, Y))
    if isinstance(result, PlantClassifier):
        proba = result.predict_proba(X)
        assert proba.shape == (len(X), result.classes_.size)
        assert np.all((proba >= 0) & (proba <= 1))


# ------------------------------------------------------------------ prediction


@FAST
@given(X=documents)
def test_prediction_on_any_documents(fitted, X):
    clf, _, _ = fitted
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.all(np.isfinite(proba))
    pred = clf.predict(X)
    np.testing.assert_array_equal(pred.toarray().astype(bool), proba >= clf.threshold_)
    idx, top = clf.predict_topk(X, k=2)
    assert idx.shape == top.shape == (len(X), 2)
    assert len(clf.explain(X[:3], top_labels=2)) == min(3, len(X))


@FAST
@given(X=not_documents)
def test_prediction_on_what_is_not_documents(fitted, X):
    clf, _, _ = fitted
    for method in (clf.predict, clf.predict_proba, clf.decision_function, clf.explain,
                   clf.explain_html, lambda x: clf.predict_topk(x, k=1)):
        exc = assert_clean_failure(lambda: method(X))
        if not isinstance(exc, ACCEPTED):
            # Only an empty iterable of documents is valid input here.
            assert len(X) == 0, (method, X)


@FAST
@given(k=st.one_of(st.integers(-3, 0), st.integers(4, 10), st.floats(), texts, st.none(),
                   st.booleans()),
       top=st.one_of(st.integers(-3, 0), st.floats(), texts))
def test_counts_out_of_range(fitted, k, top):
    clf, X, Y = fitted
    assert isinstance(assert_clean_failure(lambda: clf.predict_topk(X[:2], k=k)), ACCEPTED)
    assert isinstance(assert_clean_failure(lambda: clf.explain(X[:2], top_labels=top)), ACCEPTED)
    assert isinstance(assert_clean_failure(lambda: clf.explain(X[:2], top_tokens=top)), ACCEPTED)


@FAST
@given(data=st.data())
def test_score_and_calibrate_with_bad_targets(fitted, data):
    clf, X, _ = fitted
    Y = data.draw(bad_targets(len(X)))
    for method in (clf.score, clf.calibrate):
        exc = assert_clean_failure(lambda: method(X, Y))
        assert isinstance(exc, ACCEPTED)


def test_targets_without_a_positive_label_cannot_be_learnt(fitted):
    clf, X, _ = fitted
    with pytest.raises(ValueError, match="no positive label"):
        tiny().fit(X, np.zeros((len(X), 3)))
    with pytest.raises(ValueError, match="no positive label"):
        clf.calibrate(X, np.zeros((len(X), 3)))
    assert clf.score(X, np.zeros((len(X), 3))) >= 0  # scoring them is fine


def test_prediction_before_fit_is_a_not_fitted_error():
    from sklearn.exceptions import NotFittedError

    for method in ("predict", "predict_proba", "decision_function", "explain", "calibrate"):
        with pytest.raises(NotFittedError):
            args = (["a"], [["x"]]) if method == "calibrate" else (["a"],)
            getattr(PlantClassifier(), method)(*args)


# ------------------------------------------------------------------ model folders


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    clf, _, _ = fitted
    return clf.save(tmp_path_factory.mktemp("models") / "model")


FILES = ["params.json", "weights.pt", "tokenizer.json", "arrays.npz"]


@FAST
@given(name=st.sampled_from(FILES),
       damage=st.one_of(st.binary(max_size=200), st.sampled_from(["truncate", "delete",
                                                                   "directory", "empty"])))
def test_load_from_damaged_folders(saved, tmp_path_factory, name, damage):
    import shutil

    folder = tmp_path_factory.mktemp("damaged") / "m"
    shutil.copytree(saved, folder)
    target = folder / name
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 3])
    elif damage == "delete":
        target.unlink()
    elif damage == "directory":
        target.unlink()
        target.mkdir()
    elif damage == "empty":
        target.write_bytes(b"")
    else:
        target.write_bytes(damage)
    exc = assert_clean_failure(lambda: PlantClassifier.load(folder))
    if isinstance(exc, PlantClassifier):
        # Only bytes that happen to be a valid file of that kind load (e.g. the same JSON).
        pytest.fail(f"a damaged {name} ({damage!r}) loaded")
    assert name in str(exc) or "format version" in str(exc) or "corrupt" in str(exc)


@FAST
@given(meta=st.one_of(st.none(), st.integers(), texts, st.lists(st.integers(), max_size=3),
                      st.fixed_dictionaries({"format_version": st.one_of(
                          st.integers(), texts, st.none())})))
def test_load_with_garbage_params(saved, tmp_path_factory, meta):
    import shutil

    folder = tmp_path_factory.mktemp("params") / "m"
    shutil.copytree(saved, folder)
    (folder / "params.json").write_text(json.dumps(meta))
    assert isinstance(assert_clean_failure(lambda: PlantClassifier.load(folder)), ACCEPTED)


@FAST
@given(path=st.one_of(texts.filter(lambda t: "\x00" not in t), st.just("/nonexistent/dir")))
def test_load_from_missing_paths(tmp_path_factory, path):
    base = tmp_path_factory.mktemp("missing")
    exc = assert_clean_failure(lambda: PlantClassifier.load(base / (path or "x") / "model"))
    assert isinstance(exc, ACCEPTED)


# ------------------------------------------------------------------ files and metrics


@FAST
@given(content=st.one_of(st.binary(max_size=300), texts.map(str.encode),
                         st.lists(st.one_of(st.dictionaries(texts, texts, max_size=3),
                                            st.integers(), st.none()), max_size=4)
                         .map(lambda rows: "\n".join(json.dumps(r) for r in rows).encode())))
def test_jsonl_readers_on_garbage(tmp_path_factory, content):
    from plantlearn.cli import read_documents

    path = tmp_path_factory.mktemp("files") / "data.jsonl"
    path.write_bytes(content)
    for call in (lambda: load_jsonl(path), lambda: read_documents(path, need_labels=True)):
        assert_clean_failure(call)


@FAST
@given(y_true=st.one_of(st.none(), texts, st.lists(st.lists(texts, max_size=2), max_size=3),
                        st.just(np.full((2, 3), 2)), st.just(np.ones((2, 2, 2)))),
       y_score=st.one_of(st.none(), texts, st.just(np.full((2, 3), np.nan)),
                         st.just(np.ones((3, 3))), st.just(np.zeros((2, 3)))))
def test_metrics_on_garbage(y_true, y_score):
    for metric in (lambda: precision_at_k(y_true, y_score, k=1),
                   lambda: micro_f1(y_true, y_score),
                   lambda: expected_calibration_error(y_true, y_score)):
        assert_clean_failure(metric)
