"""Tests for plantlearn._tokenize.TextTokenizer."""

import json
import multiprocessing
import pickle
import random
import subprocess
import sys
import unicodedata
from collections import Counter

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from plantlearn import _tokenize
from plantlearn._tokenize import PAD_ID, UNK_ID, TextTokenizer

DOCS = [
    "The patient has acute kidney injury. Kidney function improved!",
    "Acute renal failure; the patient was discharged.",
    "Naïve café owner: Café crème, CAFÉ noir (ﬁne).",
    "",
    "   \n\t ",
    "Dose 3.5mg x2 daily -- covid-19 negative, IL_6 normal.",
    "kidney KIDNEY Kidney kidney",
]


def _ids(arrays):
    return [a.tolist() for a in arrays]


def _random_corpus(seed, n_docs=120, n_words=200, scripts=False):
    rng = random.Random(seed)
    words = ["w%d" % i for i in range(n_words)] + [
        "alpha", "Beta", "gamma", "délta", "Ñandú", "ﬁsh", "x_y", "42"
    ]
    if scripts:
        # Words that stay non-ASCII after normalisation.
        words += ["мир", "Привет", "Σοφία", "日本語", "ß"] * 10
    seps = [" ", " ", " ", ", ", ". ", "\n", " - "]
    return [
        "".join(rng.choice(words) + rng.choice(seps)
                for _ in range(rng.randint(0, 40)))
        for _ in range(n_docs)
    ]


def _reference_words(text, lowercase=True, strip_accents=True):
    """Words of a text computed independently of the tokenizer's code."""
    if strip_accents:
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    text = unicodedata.normalize("NFKC", text)
    if lowercase:
        text = text.lower()
    out, cur = [], []
    for c in text:
        if c.isalnum() or c == "_":
            cur.append(c)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


# ---------------------------------------------------------------- vocabulary


@pytest.mark.parametrize("corpus", ["ascii", "latin", "scripts"])
def test_vocabulary_order_rule(corpus):
    # The three counting paths: ASCII, ASCII once normalised, other scripts
    # (counted in Rust and merged with the rest).
    texts = _random_corpus(0, scripts=corpus == "scripts")
    if corpus == "ascii":
        texts = [t for t in texts if t.isascii()]
    elif corpus == "latin":
        assert not all(t.isascii() for t in texts)
    tok = TextTokenizer(min_frequency=2).fit(texts)
    counts = Counter(w for t in texts for w in _reference_words(t))
    expected = sorted((w for w, n in counts.items() if n >= 2),
                      key=lambda w: (-counts[w], w))
    vocab = tok.get_vocabulary()
    assert vocab["[PAD]"] == PAD_ID == 0 and vocab["[UNK]"] == UNK_ID == 1
    by_id = [w for w, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    assert by_id == ["[PAD]", "[UNK]"] + expected
    assert tok.vocab_size == len(expected) + 2
    # The reference must have had ties for the test to mean anything.
    assert len({counts[w] for w in expected}) < len(expected)


def test_fit_is_deterministic_in_process():
    texts = _random_corpus(1)
    for kind in ("word", "wordpiece", "bpe"):
        a = TextTokenizer(kind=kind, subword_vocab_size=300).fit(texts)
        b = TextTokenizer(kind=kind, subword_vocab_size=300).fit(list(texts))
        assert a.get_vocabulary() == b.get_vocabulary()
        assert a.to_json() == b.to_json()


def test_fit_is_deterministic_across_processes():
    # Rust hash maps are seeded per process, so only a second process can
    # reveal a dependence on hash order (the WordPiece trainer has one).
    # The child imports the tokenizer as a user would and gets the corpus on stdin.
    code = (
        "import json, sys\n"
        "from plantlearn._tokenize import TextTokenizer\n"
        "texts = json.load(sys.stdin)\n"
        "for kind in ('word', 'wordpiece', 'bpe'):\n"
        "    t = TextTokenizer(kind=kind, subword_vocab_size=300)\n"
        "    print(t.fit(texts).to_json())\n"
    )
    texts = _random_corpus(1)
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(texts), capture_output=True, text=True, timeout=120,
        check=True,
    )
    lines = result.stdout.splitlines()
    for kind, line in zip(("word", "wordpiece", "bpe"), lines, strict=True):
        local = TextTokenizer(kind=kind, subword_vocab_size=300).fit(texts)
        assert local.to_json() == line, kind


def test_refit_uses_only_new_texts():
    tok = TextTokenizer(min_frequency=1).fit(["alpha beta"])
    tok.fit(["gamma"])
    assert set(tok.get_vocabulary()) == {"[PAD]", "[UNK]", "gamma"}


def test_min_frequency():
    texts = ["a a a b c", "b d"]
    tok = TextTokenizer(min_frequency=2).fit(texts)
    assert tok.get_vocabulary() == {"[PAD]": 0, "[UNK]": 1, "a": 2, "b": 3}
    tok = TextTokenizer(min_frequency=1).fit(texts)
    assert tok.get_vocabulary() == {
        "[PAD]": 0, "[UNK]": 1, "a": 2, "b": 3, "c": 4, "d": 5
    }
    assert _ids(tok.encode(["c d e"])) == [[4, 5, UNK_ID]]


def test_max_vocab_keeps_most_frequent_with_alphabetical_ties():
    texts = ["z z z y y x x w w v"]
    tok = TextTokenizer(min_frequency=1, max_vocab=3).fit(texts)
    # y, x, w tie at 2: the alphabetically first of them survive the cut.
    assert tok.get_vocabulary() == {"[PAD]": 0, "[UNK]": 1, "z": 2, "w": 3, "x": 4}
    assert tok.vocab_size == 5
    big = TextTokenizer(min_frequency=1, max_vocab=100).fit(texts)
    assert big.vocab_size == 7


def test_vocabulary_accessors():
    tok = TextTokenizer(min_frequency=1).fit(["beta alpha beta"])
    assert tok.id_to_token(0) == "[PAD]" and tok.id_to_token(1) == "[UNK]"
    assert tok.id_to_token(np.int64(2)) == "beta"
    assert tok.token_to_id("alpha") == 3
    assert tok.token_to_id("Alpha") is None  # lookups are not normalised
    assert tok.token_to_id("missing") is None
    for bad in (3 + 1, -1):
        with pytest.raises(IndexError):
            tok.id_to_token(bad)
    vocab = tok.get_vocabulary()
    vocab["new"] = 99  # a copy: the tokenizer must not change
    assert tok.token_to_id("new") is None


# ------------------------------------------------------------- normalisation


def test_lowercase_and_accent_stripping():
    texts = ["Café CAFÉ cafe naïve ﬁne Ｆｕｌｌ x²"]
    tok = TextTokenizer(min_frequency=1).fit(texts)
    assert tok.tokenize(texts[0]) == [
        "cafe", "cafe", "cafe", "naive", "fine", "full", "x2"
    ]
    assert tok.token_to_id("cafe") == 2  # three occurrences

    keep_case = TextTokenizer(min_frequency=1, lowercase=False).fit(texts)
    assert keep_case.tokenize(texts[0])[:3] == ["Cafe", "CAFE", "cafe"]

    keep_accents = TextTokenizer(min_frequency=1, strip_accents=False).fit(texts)
    assert keep_accents.tokenize(texts[0])[:4] == ["café", "café", "cafe", "naïve"]
    # NFKC compatibility folding is always applied.
    assert keep_accents.tokenize("ﬁne") == ["fine"]


def test_punctuation_is_dropped_numbers_kept():
    tok = TextTokenizer(min_frequency=1).fit(DOCS)
    assert tok.tokenize(DOCS[5]) == [
        "dose", "3", "5mg", "x2", "daily", "covid", "19", "negative",
        "il_6", "normal",
    ]
    vocab = tok.get_vocabulary()
    assert not any(set(w) & set(".,;:!?()-") for w in vocab if w[0] != "[")


def test_ascii_fast_path_matches_full_pipeline_exhaustively():
    # Every ASCII character, in every position, through the bytes.translate
    # fast path and through the full Hugging Face pipeline.
    chars = [chr(i) for i in range(128)]
    texts = ["Ab%sCd %s x%s%sZ9_" % (c, c, c, c) for c in chars]
    texts.append("".join(chars) * 2)
    for lowercase in (True, False):
        tok = TextTokenizer(min_frequency=1, lowercase=lowercase).fit(texts)
        hf = tok.tokenizer_
        full = [hf.encode(t, add_special_tokens=False).ids for t in texts]
        assert _ids(tok.encode(texts)) == full
        for t in texts:
            words = [w for w, _ in hf.pre_tokenizer.pre_tokenize_str(
                hf.normalizer.normalize_str(t))]
            table = _tokenize._ascii_table(lowercase)
            assert t.encode().translate(table).decode().split() == words


def test_mixed_ascii_and_non_ascii_keep_order(monkeypatch):
    # Tiny encode slices force many slices with both paths in each.
    monkeypatch.setattr(_tokenize, "_ENCODE_CHUNK_CHARS", 50)
    texts = _random_corpus(2, n_docs=60)
    assert any(t.isascii() for t in texts) and not all(t.isascii() for t in texts)
    tok = TextTokenizer(min_frequency=1).fit(texts)
    expected = [tok.tokenizer_.encode(t, add_special_tokens=False).ids for t in texts]
    assert _ids(tok.encode(texts)) == expected
    assert _ids(tok.encode(iter(texts))) == expected
    assert _ids(tok.encode(np.array(texts, dtype=object))) == expected


# ------------------------------------------------------------------ encoding


def test_unknown_words_and_specials():
    tok = TextTokenizer(min_frequency=1).fit(["known words only"])
    ids = tok.encode(["Known UNSEEN words [PAD] [UNK] <pad>"])[0]
    assert ids.dtype == np.int32
    known, words = tok.token_to_id("known"), tok.token_to_id("words")
    assert ids.tolist() == [known, UNK_ID, words, UNK_ID, UNK_ID, UNK_ID]
    assert PAD_ID not in tok.encode(DOCS + ["[PAD]"])[-1]


def test_empty_documents():
    tok = TextTokenizer(min_frequency=1).fit(DOCS)
    empties = ["", "   \n\t ", "... !!! ---", "😀 ©"]
    for arr in tok.encode(empties, max_length=4):
        assert arr.shape == (0,) and arr.dtype == np.int32
    assert tok.encode_chunks(empties, max_length=4) == [[], [], [], []]
    assert tok.tokenize("") == []
    ids, offsets = tok.encode_with_offsets("  ")
    assert ids.shape == (0,) and offsets == []
    assert tok.encode([]) == [] and tok.encode_chunks([], max_length=2) == []


def test_truncation():
    tok = TextTokenizer(min_frequency=1).fit(DOCS)
    full = tok.encode(DOCS)
    for max_length in (1, 3, 7, 1000):
        cut = tok.encode(DOCS, max_length=max_length)
        for f, c in zip(full, cut, strict=True):
            assert c.tolist() == f[:max_length].tolist()


@pytest.mark.parametrize("max_length", [1, 2, 3, 5, 100])
def test_chunking(max_length):
    tok = TextTokenizer(min_frequency=1).fit(DOCS)
    full = tok.encode(DOCS)
    chunked = tok.encode_chunks(DOCS, max_length=max_length)
    for f, chunks in zip(full, chunked, strict=True):
        if len(f) == 0:
            assert chunks == []
            continue
        assert all(c.dtype == np.int32 for c in chunks)
        assert all(len(c) == max_length for c in chunks[:-1])
        assert 1 <= len(chunks[-1]) <= max_length
        assert np.concatenate(chunks).tolist() == f.tolist()
    for max_chunks in (1, 2):
        limited = tok.encode_chunks(DOCS, max_length=max_length, max_chunks=max_chunks)
        for chunks, ref in zip(limited, chunked, strict=True):
            assert len(chunks) == min(max_chunks, len(ref))
            assert [c.tolist() for c in chunks] == [c.tolist() for c in ref[:max_chunks]]


def test_offsets_map_back_to_original_text():
    tok = TextTokenizer(min_frequency=1).fit(DOCS)
    for text in DOCS + ["  Ünïcödé—ﬁne  x²,WORD"]:
        ids, offsets = tok.encode_with_offsets(text)
        assert ids.dtype == np.int32
        assert ids.tolist() == tok.encode([text])[0].tolist()
        assert len(offsets) == len(ids)
        tokens = tok.tokenize(text)
        for (start, end), token in zip(offsets, tokens, strict=True):
            assert 0 <= start < end <= len(text)
            # The original span normalises back to the token.
            assert _reference_words(text[start:end]) == [token]
    text = "Acute kidney, CAFÉ!"
    _, offsets = tok.encode_with_offsets(text)
    assert [text[s:e] for s, e in offsets] == ["Acute", "kidney", "CAFÉ"]


def test_tokenize_is_aligned_with_encode():
    tok = TextTokenizer(min_frequency=2).fit(DOCS)
    text = "The patient, Zorblax, has acute kidney injury."
    ids = tok.encode([text])[0]
    tokens = tok.tokenize(text)
    assert len(tokens) == len(ids)
    assert tokens == ["the", "patient", "zorblax", "has", "acute", "kidney", "injury"]
    for i, t in zip(ids, tokens):
        if i != UNK_ID:
            assert tok.id_to_token(i) == t


# -------------------------------------------------------------- subword kinds


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_subword_kinds(kind):
    texts = _random_corpus(3) + DOCS
    tok = TextTokenizer(kind=kind, subword_vocab_size=120).fit(texts)
    vocab = tok.get_vocabulary()
    assert vocab["[PAD]"] == 0 and vocab["[UNK]"] == 1
    assert tok.vocab_size == len(vocab) <= 120
    # An unseen word still encodes to known pieces.
    ids = tok.encode(["alphagamma w17w18"])[0]
    assert len(ids) > 2 and UNK_ID not in ids and PAD_ID not in ids
    pieces = tok.tokenize("alphagamma")
    glue = "".join(p.removeprefix("##") for p in pieces)
    assert glue == "alphagamma"
    if kind == "wordpiece":
        assert all(p.startswith("##") for p in pieces[1:])
    # A character never seen in training is unknown.
    assert UNK_ID in tok.encode(["Ωmega"])[0]
    for text in texts[:20]:
        ids, offsets = tok.encode_with_offsets(text)
        assert ids.tolist() == tok.encode([text])[0].tolist()
        assert len(offsets) == len(ids)
    # Fast path and full pipeline agree.
    expected = [tok.tokenizer_.encode(t, add_special_tokens=False).ids for t in texts]
    assert _ids(tok.encode(texts)) == expected
    again = TextTokenizer.from_json(tok.to_json())
    assert _ids(again.encode(texts)) == expected


def test_wordpiece_ignores_literal_continuation_markers():
    # The "##c" helpers used during training must not leak into encoding.
    a = TextTokenizer(kind="wordpiece", min_frequency=1).fit(["café ##ab x##ab", "ab"])
    b = TextTokenizer(kind="wordpiece", min_frequency=1).fit(["café ab x ab", "ab"])
    assert a.get_vocabulary() == b.get_vocabulary()
    assert a.tokenize("x##ab ##a") == ["x", "ab", "a"]
    assert "##a" not in {str(t) for t in a.tokenizer_.get_added_tokens_decoder().values()}


def test_max_vocab_is_ignored_by_subword_kinds():
    texts = _random_corpus(4)
    a = TextTokenizer(kind="bpe", subword_vocab_size=100).fit(texts)
    b = TextTokenizer(kind="bpe", subword_vocab_size=100, max_vocab=5).fit(texts)
    assert a.get_vocabulary() == b.get_vocabulary()


# ------------------------------------------------------------- serialisation


@pytest.mark.parametrize("kind", ["word", "wordpiece", "bpe"])
def test_json_and_pickle_round_trip(kind):
    texts = _random_corpus(5) + DOCS
    tok = TextTokenizer(kind=kind, min_frequency=1, lowercase=False,
                        subword_vocab_size=150).fit(texts)
    expected = _ids(tok.encode(texts))
    for clone_ in (TextTokenizer.from_json(tok.to_json()),
                   pickle.loads(pickle.dumps(tok))):
        assert clone_.get_params() == tok.get_params()
        assert clone_.get_vocabulary() == tok.get_vocabulary()
        assert _ids(clone_.encode(texts)) == expected
        assert clone_.tokenize(texts[0]) == tok.tokenize(texts[0])
        assert clone_.to_json() == tok.to_json()


def test_round_trip_of_unfitted_and_fitted_settings():
    tok = TextTokenizer(kind="bpe", max_vocab=10)
    again = TextTokenizer.from_json(tok.to_json())
    assert again.get_params() == tok.get_params()
    with pytest.raises(NotFittedError):
        again.encode(["x"])
    again = pickle.loads(pickle.dumps(tok))
    assert again.get_params() == tok.get_params()
    # set_params after fit must not make the fast path disagree with the
    # fitted normaliser, before or after a round trip.
    fitted = TextTokenizer(min_frequency=1).fit(["Alpha beta"])
    fitted.set_params(lowercase=False)
    for t in (fitted, TextTokenizer.from_json(fitted.to_json())):
        assert _ids(t.encode(["ALPHA"])) == [[t.token_to_id("alpha")]]


def test_numpy_parameters_serialise():
    tok = TextTokenizer(min_frequency=np.int64(1), max_vocab=np.int32(5),
                        lowercase=np.bool_(True)).fit(["b a b"])
    again = TextTokenizer.from_json(tok.to_json())
    assert again.get_params()["max_vocab"] == 5
    assert _ids(again.encode(["a b"])) == _ids(tok.encode(["a b"]))


def test_from_json_rejects_foreign_input():
    for bad in ("not json", "[]", '{"format": "other"}', 3):
        with pytest.raises(ValueError):
            TextTokenizer.from_json(bad)


def test_sklearn_conventions():
    tok = TextTokenizer(kind="wordpiece", min_frequency=3)
    assert clone(tok).get_params() == tok.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(tok)
    tok.fit(DOCS)
    check_is_fitted(tok)
    assert "wordpiece" in repr(tok)


# -------------------------------------------------------------------- errors


def test_errors():
    with pytest.raises(ValueError, match="empty corpus"):
        TextTokenizer().fit([])
    with pytest.raises(ValueError, match="contain no words"):
        TextTokenizer().fit(["", "  ...  ", "!?"])
    with pytest.raises(ValueError, match="contain no words"):
        TextTokenizer(kind="wordpiece").fit(["", "—"])
    with pytest.raises(ValueError, match="min_frequency=5"):
        TextTokenizer(min_frequency=5).fit(["a b c", "a"])
    with pytest.raises(TypeError, match="element 2"):
        TextTokenizer().fit(["a b", "c", None, 4])
    with pytest.raises(TypeError, match="single str"):
        TextTokenizer().fit("a b c")
    with pytest.raises(TypeError, match="iterable"):
        TextTokenizer().fit(5)

    unfitted = TextTokenizer()
    for call in (
        lambda: unfitted.encode(["a"]),
        lambda: unfitted.encode_chunks(["a"], max_length=2),
        lambda: unfitted.tokenize("a"),
        lambda: unfitted.encode_with_offsets("a"),
        lambda: unfitted.vocab_size,
        lambda: unfitted.get_vocabulary(),
        lambda: unfitted.id_to_token(0),
        lambda: unfitted.token_to_id("a"),
    ):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()

    for params, exc in [
        ({"kind": "char"}, ValueError),
        ({"min_frequency": 0}, ValueError),
        ({"min_frequency": 1.5}, TypeError),
        ({"max_vocab": 0}, ValueError),
        ({"max_vocab": True}, TypeError),
        ({"subword_vocab_size": 2}, ValueError),
        ({"lowercase": "yes"}, TypeError),
    ]:
        with pytest.raises(exc):
            TextTokenizer(**params).fit(["a a b b"])

    tok = TextTokenizer(min_frequency=1).fit(["a b"])
    with pytest.raises(TypeError, match="element 1"):
        tok.encode(["a", b"b"])
    with pytest.raises(TypeError, match="single str"):
        tok.encode("a b")
    with pytest.raises(TypeError):
        tok.tokenize(None)
    with pytest.raises(TypeError):
        tok.encode_with_offsets(["a"])
    with pytest.raises(ValueError):
        tok.encode(["a"], max_length=0)
    with pytest.raises(ValueError):
        tok.encode_chunks(["a"], max_length=2, max_chunks=0)
    with pytest.raises(TypeError):
        tok.encode_chunks(["a"], max_length=None)


# ---------------------------------------------------------------------- fork


def _encode_in_child(payload):
    tok, texts = payload
    return _ids(tok.encode(texts))


def test_fork_after_parallel_use_is_safe_and_silent(capfd):
    texts = _random_corpus(6, n_docs=400)
    tok = TextTokenizer().fit(texts)
    expected = _ids(tok.encode(texts))  # the Rust thread pool has been used
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        # The child inherits the used pool; old tokenizers deadlocked or
        # warned here. (tok is pickled via JSON for the trip into the child.)
        got = pool.apply_async(_encode_in_child, ((tok, texts),)).get(timeout=60)
    assert got == expected
    assert "forked" not in capfd.readouterr().err


def test_fork_guard_for_old_tokenizers(monkeypatch):
    # Only releases older than the verified fork-safe one get the hook, and
    # the hook touches the variable only across a fork, only when unset.
    registered = []
    monkeypatch.setattr(_tokenize, "_fork_guard_installed", False)
    monkeypatch.setattr(_tokenize.os, "register_at_fork",
                        lambda **hooks: registered.append(hooks))
    _tokenize._install_fork_guard("0.23.3")
    _tokenize._install_fork_guard("0.15.0")  # already decided: no-op
    assert registered == []
    monkeypatch.setattr(_tokenize, "_fork_guard_installed", False)
    _tokenize._install_fork_guard("0.21.1")
    assert len(registered) == 1

    before = registered[0]["before"]
    after = registered[0]["after_in_parent"]
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    before()
    assert _tokenize.os.environ["TOKENIZERS_PARALLELISM"] == "false"
    after()
    assert "TOKENIZERS_PARALLELISM" not in _tokenize.os.environ
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")
    before()
    after()
    assert _tokenize.os.environ["TOKENIZERS_PARALLELISM"] == "true"
