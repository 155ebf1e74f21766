"""PlantClassifier.explain / explain_html: evidence words, offsets, chunking and the HTML page."""

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from plantlearn import LTRPretrainer, PlantClassifier
from plantlearn import _nn as nn_module
from plantlearn._explain import _analyse
from plantlearn.datasets import make_multilabel_text

# Tiny settings; max_length=16 splits every document into several chunks.
TINY = dict(embed_dim=16, hidden_size=16, max_iter=1, max_length=16, max_chunks=4,
            random_state=0)
INJECTED = "<script>alert('x')</script> Caf\u00e9 & \u00dcber <b>bold</b> "


@pytest.fixture(scope="module")
def one_thread():
    # The test machine is shared: one torch thread is much faster than two
    # competing ones. Restored afterwards.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def corpus():
    X, Y = make_multilabel_text(n_samples=160, n_labels=5, length=(20, 60), vocab_size=300,
                                random_state=0)
    for i in range(3):  # three times, so that its words are in the vocabulary
        X[i] = INJECTED + X[i]
    return X, Y


@pytest.fixture(scope="module")
def planted(one_thread, corpus):
    X, Y = corpus
    return PlantClassifier(**TINY, ltr=LTRPretrainer(n_factors=8, max_iter=2)).fit(X, Y)


@pytest.fixture(scope="module")
def unplanted(one_thread, corpus):
    X, Y = corpus
    return PlantClassifier(**TINY, plant=False, static_scores=False).fit(X, Y)


def test_structure_labels_and_probabilities(planted, corpus):
    X, _ = corpus
    ex = planted.explain(X[:4], top_labels=3, top_tokens=5)
    proba = planted.predict_proba(X[:4])
    scores = planted.decision_function(X[:4])
    predicted = planted.predict(X[:4]).toarray().astype(bool)
    assert len(ex) == 4
    for doc, p, s, on in zip(ex, proba, scores, predicted):
        assert len(doc) == 3
        labels = [d["label"] for d in doc]
        # Ranked as decision_function ranks; probabilities and decisions as predict_proba
        # and predict give them.
        np.testing.assert_array_equal(labels, np.argsort(-s, kind="stable")[:3])
        np.testing.assert_allclose([d["probability"] for d in doc], p[labels], rtol=1e-4)
        assert [d["predicted"] for d in doc] == on[labels].tolist()
        for d in doc:
            assert set(d) == {"label", "probability", "predicted", "attention_share",
                              "head_share", "tokens", "head_tokens"}
            assert d["attention_share"] + d["head_share"] == pytest.approx(1.0)
            assert 0 < len(d["tokens"]) <= 5
            for t in d["tokens"]:
                assert set(t) == {"token", "weight", "start", "end", "prior"}
            for t in d["head_tokens"]:
                assert set(t) == {"token", "contribution"}


def test_tokens_map_back_to_text_and_weights_sorted(planted, corpus):
    X, _ = corpus
    tok = planted.tokenizer_
    att = planted.net_.attention
    u = att.static_token_factors.numpy()
    v = att.static_label_factors.numpy()
    b = att.static_token_bias.numpy()
    for text, doc in zip(X[:5], planted.explain(X[:5], top_labels=2, top_tokens=8)):
        ids, offsets = tok.encode_with_offsets(text)
        position = {tuple(o): i for i, o in enumerate(offsets)}
        for d in doc:
            weights = [t["weight"] for t in d["tokens"]]
            assert all(0.0 <= w <= 1.0 for w in weights)
            assert weights == sorted(weights, reverse=True)
            for t in d["tokens"]:
                assert text[t["start"]:t["end"]] == t["token"]
                # The prior is the planted static score of the word found at that offset.
                t_id = ids[position[(t["start"], t["end"])]]
                expected = u[t_id] @ v[d["label"]] + b[t_id]
                assert t["prior"] == pytest.approx(float(expected), rel=1e-4, abs=1e-5)


def test_offsets_into_original_unnormalised_text(planted, corpus):
    X, _ = corpus
    tokens = [t["token"] for d in planted.explain([X[0]], top_labels=5, top_tokens=500)[0]
              for t in d["tokens"]]
    # Accented words keep their original spelling (offsets into the raw text).
    assert "Caf\u00e9" in tokens and "\u00dcber" in tokens


def test_chunks_aggregate_to_one_softmax(planted, corpus):
    """Chunk c position i is token c * max_length + i: compare with a plain softmax."""
    X, _ = corpus
    net = planted.net_.eval()
    # The network may exclude unknown words from attention (they carry no planted
    # evidence); the reference softmax follows whichever rule it uses.
    skip_unk = getattr(nn_module, "_UNK_ID", None)
    m = planted.max_length
    docs = _analyse(planted, X[:3], top_labels=2)
    for doc in docs:
        ids = torch.as_tensor(doc["ids"])
        assert ids.numel() > m  # several chunks
        with torch.no_grad():
            logits = []
            for s in range(0, ids.numel(), m):
                chunk = ids[None, s:s + m]
                h, mask = net.encode(chunk)
                if skip_unk is not None:
                    mask = mask & (chunk != skip_unk)
                logits.append(net.attention.logits(chunk, h, mask)[0])
            full = torch.cat(logits, dim=-1)  # (L, T) over the whole document
            ref = torch.softmax(full, dim=-1)[torch.as_tensor(doc["labels"])].numpy()
        np.testing.assert_allclose(doc["weights"], ref, atol=1e-5)
        np.testing.assert_allclose(doc["weights"].sum(axis=1), 1.0, atol=1e-4)


def test_no_prior_without_stage_one_factors(unplanted, corpus):
    X, _ = corpus
    for d in unplanted.explain(X[:2], top_labels=2)[0]:
        assert all(t["prior"] is None for t in d["tokens"])
    page = unplanted.explain_html(X[:1])
    assert "random start" in page and "no stage-1 factors" in page


def test_input_validation(planted, corpus):
    X, _ = corpus
    with pytest.raises(TypeError, match="wrap it in a list"):
        planted.explain(X[0])
    with pytest.raises(NotFittedError):
        PlantClassifier().explain(X[:1])
    with pytest.raises(ValueError, match="top_tokens"):
        planted.explain(X[:1], top_tokens=0)
    with pytest.raises(ValueError, match="top_labels"):
        planted.explain(X[:1], top_labels=0)
    # More labels than exist: all of them.
    assert len(planted.explain(X[:1], top_labels=99)[0]) == planted.classes_.size
    assert planted.explain([]) == []
    # A document without words still gets its labels (the priors), and no tokens.
    doc = planted.explain(["!!! ???"], top_labels=2)[0]
    assert len(doc) == 2 and all(d["tokens"] == [] for d in doc)


class _TagBalance(HTMLParser):
    VOID = {"meta", "input", "br", "img", "hr", "link"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass  # <meta ... />: opens and closes itself

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_html_well_formed_self_contained_escaped(planted, corpus, tmp_path):
    X, _ = corpus
    with pytest.raises(FileNotFoundError, match="folder"):
        planted.explain_html(X[:1], path=tmp_path / "sub" / "report.html")
    assert not (tmp_path / "sub").exists()
    path = tmp_path / "report.html"
    page = planted.explain_html(X[:3], path=path, top_labels=3, ids=["a<1>", "b", "c"],
                                labels=[["x&y"], [], [1]])
    assert path.read_text(encoding="utf-8") == page
    # Balanced tags (html.parser) and well-formed XML once the doctype is dropped.
    checker = _TagBalance()
    checker.feed(page)
    assert checker.errors == [] and checker.stack == []
    root = ET.fromstring(page.replace("<!DOCTYPE html>", "", 1))
    assert root.tag == "html"
    # Self-contained: no external resources, no scripts at all.
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<link" not in page.lower()
    assert "<script" not in page.lower()
    assert "url(" not in page and "@import" not in page
    # The injected markup is shown as text.
    # (words inside it may be highlighted, so check the parsed text below).
    assert "<b>bold" not in page and "&lt;" in page
    assert "a&lt;1&gt;" in page and "x&amp;y" in page
    # One tab per top label, the first one selected, a panel for each.
    assert len(root.findall(".//input[@type='radio']")) == 9
    assert len(root.findall(".//div[@class='panel']")) == 9
    assert page.count('checked="checked"') == 3
    text = "".join(root.itertext())
    assert "<script>alert('x')</script>" in text  # round-trips as visible text


def test_html_argument_checks(planted, corpus):
    X, _ = corpus
    with pytest.raises(ValueError, match="ids"):
        planted.explain_html(X[:2], ids=["only one"])
    with pytest.raises(TypeError):
        planted.explain_html(X[0])


def test_explain_after_save_load(planted, corpus, tmp_path):
    X, _ = corpus
    planted.save(tmp_path / "m")
    loaded = PlantClassifier.load(tmp_path / "m")
    a = planted.explain(X[:2], top_labels=2)
    b = loaded.explain(X[:2], top_labels=2)
    for da, db in zip(a, b):
        for la, lb in zip(da, db):
            assert la["label"] == lb["label"]
            assert [t["start"] for t in la["tokens"]] == [t["start"] for t in lb["tokens"]]
            np.testing.assert_allclose([t["prior"] for t in la["tokens"]],
                                       [t["prior"] for t in lb["tokens"]], rtol=1e-5)
