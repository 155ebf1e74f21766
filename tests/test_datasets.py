"""Tests of plantlearn.datasets: JSON Lines loading, dataset folders, the synthetic corpus."""

import gzip
import json
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from plantlearn.datasets import load_dataset, load_jsonl, make_multilabel_text

REUTERS = "reuters21578_modapte"


def write_lines(path, lines, compress=False):
    data = "\n".join(lines) + "\n"
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def record(i, text, labels):
    return json.dumps({"id": i, "text": text, "labels": labels})


# --------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_reuters_modapte_counts(data_home, require_dataset):
    require_dataset(REUTERS, "train", "test")
    train = load_dataset(REUTERS, "train", data_home=data_home)
    test = load_dataset(REUTERS, "test", data_home=data_home, label_names=train.target_names)
    assert len(train.data) == len(train.ids) == 7769
    assert len(test.data) == len(test.ids) == 3019
    assert train.target.shape == (7769, 90) and test.target.shape == (3019, 90)
    assert sp.isspmatrix_csr(train.target) and train.target.dtype == np.int32
    assert list(test.target_names) == list(train.target_names)
    assert list(train.target_names) == sorted(train.target_names)
    # Every document has a label; the most frequent label is "earn" with 2,877 documents.
    assert np.all(np.diff(train.target.indptr) > 0)
    counts = np.asarray(train.target.sum(axis=0)).ravel()
    assert train.target_names[counts.argmax()] == "earn" and counts.max() == 2877
    assert set(np.unique(train.target.data)) == {1}
    with pytest.raises(FileNotFoundError, match="available splits: train, test"):
        load_dataset(REUTERS, "dev", data_home=data_home)


def test_load_dataset_env_var_and_errors(tmp_path, monkeypatch):
    folder = tmp_path / "toy"
    folder.mkdir()
    write_lines(folder / "train.jsonl", [record(1, "a b", ["x"]), record(2, "c", ["y", "x"])])
    write_lines(folder / "test.jsonl.gz", [record(3, "d", ["y"])], compress=True)
    (tmp_path / "other").mkdir()

    monkeypatch.setenv("PLANTLEARN_DATA", str(tmp_path))
    train = load_dataset("toy")
    assert train.data == ["a b", "c"] and list(train.target_names) == ["x", "y"]
    test = load_dataset("toy", "test", label_names=train.target_names)
    assert test.target.toarray().tolist() == [[0, 1]]

    with pytest.raises(ValueError, match="'train', 'dev', 'test'"):
        load_dataset("toy", "validation")
    with pytest.raises(FileNotFoundError, match="No dataset 'nope'.*available: other, toy"):
        load_dataset("nope")
    with pytest.raises(FileNotFoundError, match="no 'dev' split.*available splits: train, test"):
        load_dataset("toy", "dev")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("toy", data_home=tmp_path / "missing")
    with pytest.raises(ValueError, match="path separators"):
        load_dataset("../toy")

    monkeypatch.delenv("PLANTLEARN_DATA")
    with pytest.raises(ValueError, match="PLANTLEARN_DATA"):
        load_dataset("toy")
    # An explicit data_home needs no environment variable.
    assert len(load_dataset("toy", data_home=str(tmp_path)).data) == 2


# --------------------------------------------------------------------------------------------
# load_jsonl
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_load_jsonl_roundtrip(tmp_path, compress):
    lines = [
        record("a", "first doc", ["b", "a", "b"]),  # repeated label counts once
        "",
        "   ",  # blank lines are skipped
        record(7, "second doc", []),
        record("c", "third", ["c", 12]),  # integer labels become strings
    ]
    # The file name says nothing about compression: detection is by content.
    path = write_lines(tmp_path / "split.data", lines, compress=compress)
    bunch = load_jsonl(path)
    assert bunch.data == ["first doc", "second doc", "third"]
    assert bunch.ids == ["a", 7, "c"]
    assert list(bunch.target_names) == ["12", "a", "b", "c"]
    assert isinstance(bunch.target_names, np.ndarray)
    assert sp.isspmatrix_csr(bunch.target) and bunch.target.dtype == np.int32
    assert bunch.target.toarray().tolist() == [[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 1]]


def test_load_jsonl_label_names_fix_columns_and_warn(tmp_path):
    path = write_lines(
        tmp_path / "dev.jsonl",
        [
            record(1, "t", ["b", "zz"]),
            record(2, "t", ["zz", "yy"]),
            record(3, "t", ["a", "zz"]),
        ],
    )
    with pytest.warns(UserWarning) as caught:
        bunch = load_jsonl(path, label_names=["b", "a", "unused"])
    assert len(caught) == 1  # one warning for the whole file
    message = str(caught[0].message)
    assert re.search(r"dropped 4 occurrence\(s\) of 2 label\(s\)", message)
    assert "'zz' (3)" in message and "'yy' (1)" in message and "dev.jsonl" in message
    assert list(bunch.target_names) == ["b", "a", "unused"]
    assert bunch.target.toarray().tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 0]]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known labels only: no warning
        load_jsonl(path, label_names=["a", "b", "yy", "zz"])
    with pytest.raises(ValueError, match="duplicates"):
        load_jsonl(path, label_names=["a", "a"])
    with pytest.raises(TypeError, match="single str"):
        load_jsonl(path, label_names="ab")


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"id": 1, "text": "x", "labels": [', "malformed JSON"),
        ("[1, 2, 3]", "expected a JSON object.*got a JSON list"),
        ('{"id": 1, "labels": []}', "missing key\\(s\\) 'text'"),
        ('{"text": "x"}', "missing key\\(s\\) 'id', 'labels'"),
        ('{"id": 1, "text": 5, "labels": []}', "'text' must be a string, got int"),
        ('{"id": 1, "text": "x", "labels": "a"}', "'labels' must be a list, got str"),
        ('{"id": 1, "text": "x", "labels": [null]}', "labels must be strings"),
        ('{"id": 1, "text": "x", "labels": [true]}', "labels must be strings"),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_load_jsonl_malformed_lines_name_file_and_line(tmp_path, bad_line, message, compress):
    name = "bad.jsonl.gz" if compress else "bad.jsonl"
    path = write_lines(tmp_path / name, [record(0, "ok", ["a"]), "", bad_line], compress=compress)
    with pytest.raises(ValueError, match=message) as info:
        load_jsonl(path)
    assert f"{path}, line 3" in str(info.value)


def test_load_jsonl_missing_file_and_bad_bytes(tmp_path):
    missing = tmp_path / "nothing.jsonl"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_jsonl(missing)
    with pytest.raises(FileNotFoundError, match="Not a file"):
        load_jsonl(tmp_path)
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id": 1, "text": "ok", "labels": []}\n{"id": 2, "text": "caf\xe9"}\n')
    with pytest.raises(ValueError, match="line 2: not valid UTF-8"):
        load_jsonl(path)
    truncated = tmp_path / "cut.jsonl.gz"
    write_lines(truncated, [record(i, "text " * 50, ["a"]) for i in range(200)], compress=True)
    truncated.write_bytes(truncated.read_bytes()[:-40])
    with pytest.raises(ValueError, match="cannot read compressed data"):
        load_jsonl(truncated)


def test_load_jsonl_empty_file(tmp_path):
    bunch = load_jsonl(write_lines(tmp_path / "empty.jsonl", [""]))
    assert bunch.data == [] and bunch.target.shape == (0, 0) and bunch.target_names.size == 0


# --------------------------------------------------------------------------------------------
# make_multilabel_text
# --------------------------------------------------------------------------------------------


def test_make_multilabel_text_shapes_and_determinism():
    X, Y = make_multilabel_text(n_samples=300, n_labels=12, length=(20, 60), random_state=3)
    assert isinstance(X, list) and len(X) == 300 and all(isinstance(x, str) for x in X)
    assert sp.isspmatrix_csr(Y) and Y.shape == (300, 12) and Y.dtype == np.int32
    assert set(np.unique(Y.data)) == {1}
    assert np.all(np.diff(Y.indptr) >= 1)  # every document has a label
    lengths = np.array([len(x.split()) for x in X])
    assert lengths.min() >= 20 and lengths.max() <= 60
    assert all(re.fullmatch(r"[a-z]+( [a-z]+)*", x) for x in X)

    X2, Y2 = make_multilabel_text(n_samples=300, n_labels=12, length=(20, 60), random_state=3)
    assert X2 == X and (Y2 != Y).nnz == 0
    X3, _ = make_multilabel_text(n_samples=300, n_labels=12, length=(20, 60), random_state=4)
    assert X3 != X
    rng = np.random.default_rng(0)
    X4, _ = make_multilabel_text(n_samples=10, n_labels=3, random_state=rng)
    assert len(X4) == 10


def test_make_multilabel_text_long_tail_and_label_count():
    X, Y = make_multilabel_text(
        n_samples=2000, n_labels=40, avg_labels=2.0, label_skew=1.2, random_state=0
    )
    counts = np.sort(np.asarray(Y.sum(axis=0)).ravel())[::-1]
    assert counts.min() >= 1  # every label occurs
    assert counts[0] > 20 * counts[-1]  # a long tail
    assert counts[:4].sum() > counts[20:].sum()  # head labels dominate
    assert 1.7 < np.diff(Y.indptr).mean() < 2.3
    # Rare labels are forced to exist even with few documents.
    _, Y_small = make_multilabel_text(n_samples=30, n_labels=60, random_state=1)
    assert np.asarray(Y_small.sum(axis=0)).min() >= 1
    _, Y_flat = make_multilabel_text(n_samples=2000, n_labels=10, label_skew=0.0, random_state=0)
    flat = np.asarray(Y_flat.sum(axis=0)).ravel()
    assert flat.max() < 1.5 * flat.min()


def test_make_multilabel_text_evidence_words():
    X, Y, evidence = make_multilabel_text(
        n_samples=1500, n_labels=15, n_evidence_words=3, return_evidence=True, random_state=2
    )
    assert len(evidence) == 15 and all(len(words) == 3 for words in evidence)
    flat = [w for words in evidence for w in words]
    assert len(set(flat)) == len(flat)  # evidence words are label-specific
    docs = [set(x.split()) for x in X]
    Yd = Y.toarray().astype(bool)
    vocab = set().union(*docs)
    assert len(vocab - set(flat)) <= 2000  # the filler vocabulary
    for label, words in enumerate(evidence):
        has = np.array([bool(d.intersection(words)) for d in docs])
        # Evidence appears in most of the label's documents (evidence_rate=0.8) ...
        recall = has[Yd[:, label]].mean()
        assert 0.65 < recall < 0.95
        # ... and rarely elsewhere (distractors), so it is strong but imperfect signal.
        assert has[~Yd[:, label]].mean() < 0.1
        for word in words:
            # Each evidence word on its own is a precise (if not perfect) cue for its label.
            with_w = np.array([word in d for d in docs])
            assert Yd[with_w, label].mean() > 0.7
    # Noise exists: some labelled documents lack their evidence, some carry foreign evidence.
    foreign = sum(
        bool(d.intersection(w)) and not Yd[i, label]
        for i, d in enumerate(docs)
        for label, w in enumerate(evidence)
    )
    assert foreign > 0


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_samples": 0}, ValueError, "n_samples must be >= 1"),
        ({"n_labels": 2.5}, TypeError, "n_labels must be an int"),
        ({"length": (10, 5)}, ValueError, "length must satisfy"),
        ({"length": 7}, TypeError, "length must be a pair"),
        ({"avg_labels": 0.5}, ValueError, "avg_labels must be >= 1"),
        ({"evidence_rate": 1.5}, ValueError, "evidence_rate"),
        ({"distractor_rate": -1}, ValueError, "distractor_rate"),
        ({"vocab_size": 10**7}, ValueError, "pseudo-words"),
    ],
)
def test_make_multilabel_text_validation(kwargs, error, message):
    with pytest.raises(error, match=message):
        make_multilabel_text(**kwargs)
