"""Internal text tokenizer shared by all plantlearn estimators.

:class:`TextTokenizer` wraps a Hugging Face ``tokenizers.Tokenizer`` and
gives the rest of plantlearn one small, deterministic, serialisable object
to turn raw documents into integer id sequences. Two consumers rely on it:

* the mutual-information statistics, which count *words*; hence the
  default ``kind="word"`` (a WordLevel model over readable words), and
* the classifier, whose embedding matrix is indexed by these ids.

Design decisions
----------------
Normalisation
    Always Unicode NFKC (compatibility folding: ligatures, full-width
    forms, superscripts become their plain equivalents, so "ﬁne" and
    "fine" are one word). With ``strip_accents=True`` the text is instead
    NFKD-decomposed, combining marks are removed and the result is
    recomposed with NFKC (recomposition keeps e.g. Hangul syllables whole).
    Accent stripping removes *all* combining marks, which also damages
    scripts that write vowels as marks (Devanagari, Thai, ...): use
    ``strip_accents=False`` for such corpora. ``Lowercase`` runs last.
Word splitting
    A word is a maximal run of Unicode word characters (``\\w``: letters,
    marks, digits, underscore). Everything else (whitespace, punctuation,
    symbols, emoji) only separates words and is dropped, for every
    ``kind``. Dropping punctuation keeps the MI statistics over words and
    keeps "[PAD]"/"[UNK]" (which contain brackets) from ever being a word.
    Numbers are kept ("3.5" gives the two words "3" and "5"; "covid-19"
    gives "covid" and "19").
Vocabulary order
    For ``kind="word"`` ids are: ``[PAD]`` = 0, ``[UNK]`` = 1, then the
    words by descending count in the fit texts, ties broken by code-point
    order of the word (the order of Python's ``sorted``). The ids are
    assigned in Python from exact counts, so they never depend on hash
    order. For the subword kinds the ids are: the two special tokens, then
    the trainer's own order, made deterministic (see ``_fit_subword``).
Speed
    The Hugging Face normalisers track character alignments and cost about
    as much as all the rest of the pipeline. For pure-ASCII documents they
    do nothing except lowercasing, so such documents take an exact fast
    path: one ``bytes.translate`` (lowercase, non-word byte -> space), then
    a whitespace split. Encoding runs it through a Rust ``WhitespaceSplit``
    tokenizer sharing the fitted model (parallel batch encoder); word
    counting in ``fit`` uses ``str.split`` and ``Counter`` (C code, about a
    third of the CPU time of the Rust WordLevel trainer). Non-ASCII
    documents go through the full pipeline. The paths are tested to agree
    (exhaustively over all ASCII characters).
Parallelism and fork
    Encoding uses the Rust batch encoder, which runs on all cores. The
    ``TOKENIZERS_PARALLELISM`` environment variable is never changed in
    this process: doing so would silently change every other Hugging Face
    tokenizer of the user. tokenizers >= 0.23.3 rebuilds its thread pool in
    a forked child, so forking after use neither deadlocks nor prints the
    old "process just got forked" warning (a test checks this). Older
    releases disable parallelism in the child themselves but warn once per
    child (e.g. per DataLoader worker); for them only, the first fit/encode
    installs a fork hook that sets the variable to "false" just across
    ``os.fork()`` when the user has not set it, so the child inherits an
    explicit setting (no warning, same serial behaviour) and the parent's
    environment is restored immediately.
"""

import json
import numbers
import os
import re
import sys
from collections import Counter

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from tokenizers import Regex, Tokenizer
from tokenizers import __version__ as _TOKENIZERS_VERSION
from tokenizers import models, normalizers, pre_tokenizers, trainers

__all__ = ["PAD_ID", "UNK_ID", "PAD_TOKEN", "UNK_TOKEN", "TextTokenizer"]

PAD_ID = 0
UNK_ID = 1
PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"

_KINDS = ("word", "wordpiece", "bpe")
_FORMAT = "plantlearn.TextTokenizer"
_FORMAT_VERSION = 1
# Prefix WordPiece puts on word-internal pieces (the BERT convention).
_CONTINUATION = "##"
# Pattern of the separators between words: everything that is not a word
# character. It is matched by the Rust regex engine, so "\w" is Unicode.
_SEPARATOR_PATTERN = r"[^\w]+"
# Encode in slices of about this many characters: a tokenizers Encoding
# keeps strings and offsets for every token, ~100 bytes each, so encoding a
# whole large corpus at once would hold gigabytes of temporaries.
_ENCODE_CHUNK_CHARS = 1 << 22
# Texts per batch when counting the words of non-ASCII texts.
_COUNT_BATCH = 256


# First release verified to keep its Rust thread pool usable after fork.
_FORK_SAFE_VERSION = (0, 23, 3)
_PARALLELISM_ENV = "TOKENIZERS_PARALLELISM"
_fork_guard_installed = False
_fork_guard_set_env = False


def _version_tuple(version):
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def _fork_guard_before():
    global _fork_guard_set_env
    if _PARALLELISM_ENV not in os.environ:
        os.environ[_PARALLELISM_ENV] = "false"
        _fork_guard_set_env = True


def _fork_guard_after_in_parent():
    global _fork_guard_set_env
    if _fork_guard_set_env:
        os.environ.pop(_PARALLELISM_ENV, None)
        _fork_guard_set_env = False


def _install_fork_guard(version=_TOKENIZERS_VERSION):
    """Silence old tokenizers' fork warning; see "Parallelism and fork".

    Installed on first use rather than at import, and only for releases
    older than ``_FORK_SAFE_VERSION``.
    """
    global _fork_guard_installed
    if _fork_guard_installed or not hasattr(os, "register_at_fork"):
        return
    _fork_guard_installed = True
    if _version_tuple(version) < _FORK_SAFE_VERSION:
        os.register_at_fork(
            before=_fork_guard_before,
            after_in_parent=_fork_guard_after_in_parent,
        )


def _ascii_table(lowercase):
    """Return the ``bytes.translate`` table of the ASCII fast path.

    Word bytes (``[A-Za-z0-9_]``, exactly what ``\\w`` matches in ASCII) are
    kept, upper case is folded when ``lowercase``, every other byte becomes
    a space so that a whitespace split yields the same words as the full
    pipeline. NFKC/NFKD and accent stripping are the identity on ASCII.
    """
    table = bytearray(b" " * 256)
    for b in b"abcdefghijklmnopqrstuvwxyz0123456789_":
        table[b] = b
    for b in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        table[b] = b + 32 if lowercase else b
    return bytes(table)


def _translate(text, table):
    """Apply the ASCII fast-path table to an ASCII-only str."""
    return text.encode("ascii").translate(table).decode("ascii")


def _no_words_message(n_texts):
    return (
        f"the {n_texts} training text(s) contain no words: after "
        "normalisation every text is empty or only whitespace, punctuation "
        "or symbols"
    )


def _count_words(texts, normalizer, table):
    """Count the words of ``texts`` exactly as the full pipeline splits them.

    Texts that are ASCII, or become ASCII once normalised (most accented
    Latin text), are counted with ``str.split`` and ``Counter``, which run
    in C and cost about a third of the Rust WordLevel trainer per word. The
    remaining texts (other scripts) are counted in Rust: a WordLevel
    trainer finds their words, a batch encode with that vocabulary and a
    ``bincount`` counts them.
    """
    counts = Counter()
    residual = []
    for i, text in enumerate(texts):
        if not text.isascii():
            text = normalizer.normalize_str(text)
            if not text.isascii():
                residual.append(i)
                continue
        counts.update(_translate(text, table).split())
    if residual:
        tok = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
        tok.normalizer = normalizer
        tok.pre_tokenizer = _make_pre_tokenizer()
        trainer = trainers.WordLevelTrainer(
            vocab_size=sys.maxsize, min_frequency=1,
            special_tokens=[PAD_TOKEN, UNK_TOKEN], show_progress=False,
        )
        # Raw texts again (normalised by Rust, in parallel) rather than
        # keeping a normalised copy of a possibly large corpus in memory.
        tok.train_from_iterator(
            (texts[i] for i in residual), trainer, length=len(residual)
        )
        # Encode with a fresh tokenizer: the trainer made [PAD]/[UNK] added
        # tokens of `tok`, which would turn a literal "[PAD]" into a special
        # token instead of the word "pad".
        counter_tok = Tokenizer(tok.model)
        counter_tok.normalizer = normalizer
        counter_tok.pre_tokenizer = _make_pre_tokenizer()
        n_ids = counter_tok.get_vocab_size()
        id_counts = np.zeros(n_ids, dtype=np.int64)
        encode = _batch_encoder(counter_tok)
        for start in range(0, len(residual), _COUNT_BATCH):
            batch = [texts[i] for i in residual[start:start + _COUNT_BATCH]]
            encs = encode(batch, add_special_tokens=False)
            ids = np.concatenate(
                [np.asarray(e.ids, dtype=np.int64) for e in encs]
                + [np.zeros(0, dtype=np.int64)]
            )
            id_counts += np.bincount(ids, minlength=n_ids)
        for word, i in counter_tok.get_vocab().items():
            if i > UNK_ID and id_counts[i]:
                counts[word] += int(id_counts[i])
    return counts


def _make_normalizer(lowercase, strip_accents):
    steps = (
        [normalizers.NFKD(), normalizers.StripAccents(), normalizers.NFKC()]
        if strip_accents
        else [normalizers.NFKC()]
    )
    if lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


def _make_pre_tokenizer():
    return pre_tokenizers.Split(Regex(_SEPARATOR_PATTERN), behavior="removed")


def _check_texts(texts, *, min_count=0):
    """Validate a corpus and return it as a list of str."""
    if isinstance(texts, (str, bytes)):
        # A lone string is iterable (over its characters): almost surely a
        # forgotten list, so refuse it rather than tokenize characters.
        raise TypeError(
            "texts must be a sequence of str, got a single "
            f"{type(texts).__name__}; wrap it in a list"
        )
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(
            f"texts must be an iterable of str, got {type(texts).__name__}"
        ) from None
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                f"texts must contain only str, but element {i} is of type "
                f"{type(text).__name__}"
            )
    if len(texts) < min_count:
        raise ValueError(
            "TextTokenizer.fit needs at least one text, got an empty corpus"
        )
    return texts


def _check_text(text):
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text


def _check_positive_int(value, name, *, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be a positive int"
            + (" or None" if allow_none else "")
            + f", got {value!r}"
        )
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _json_scalar(value):
    # set_params may have stored numpy scalars, which json cannot write.
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    return value


def _batch_encoder(tokenizer):
    # encode_batch_fast skips the offset bookkeeping that encode() does not
    # need; it only exists in recent tokenizers, encode_batch is the
    # equivalent fallback.
    fast = getattr(tokenizer, "encode_batch_fast", None)
    return fast if fast is not None else tokenizer.encode_batch


class TextTokenizer(BaseEstimator):
    """Deterministic word or subword tokenizer built on Hugging Face tokenizers.

    Parameters
    ----------
    kind : {"word", "wordpiece", "bpe"}, default="word"
        ``"word"``: one id per word (WordLevel model), so that statistics
        over ids are statistics over readable words. ``"wordpiece"`` or
        ``"bpe"``: a subword model with ``subword_vocab_size`` ids, which
        leaves (almost) no word unknown.
    lowercase : bool, default=True
        Lowercase the text (after Unicode normalisation).
    strip_accents : bool, default=True
        Remove combining marks (accents) after NFKD decomposition. Also
        removes the vowel marks of scripts such as Devanagari; disable it
        for such corpora.
    min_frequency : int, default=2
        ``kind="word"``: minimum number of occurrences in the fit texts
        for a word to get its own id; rarer words encode to ``UNK_ID``.
        Subword kinds: minimum count of a pair for the trainer to merge it.
    max_vocab : int or None, default=None
        ``kind="word"`` only: keep at most this many words (the most
        frequent, ties broken by code-point order), so ``vocab_size <=
        max_vocab + 2``. None keeps every word passing ``min_frequency``.
        Ignored by the subword kinds, whose size is ``subword_vocab_size``.
    subword_vocab_size : int, default=30000
        Subword kinds only: target number of ids, special tokens included.

    Attributes
    ----------
    tokenizer_ : tokenizers.Tokenizer
        The fitted Hugging Face tokenizer (full pipeline: normaliser,
        word splitter, model). Read-only: it has no added/special tokens,
        padding or truncation; ``[PAD]``/``[UNK]`` are ordinary vocabulary
        entries 0 and 1 that no text can produce except through ``UNK``.

    Notes
    -----
    Words are maximal runs of Unicode word characters after normalisation;
    punctuation, symbols and whitespace are dropped (for every ``kind``).
    ``encode`` never produces ``PAD_ID``. Fitting is deterministic: the same
    texts give the same vocabulary and ids, in any process.

    Instances pickle through :meth:`to_json`, because Hugging Face
    ``Tokenizer`` objects should not be relied on to pickle across versions.

    Examples
    --------
    >>> tok = TextTokenizer(min_frequency=1).fit(["The cat sat.", "The dog!"])
    >>> sorted(tok.get_vocabulary().items(), key=lambda kv: kv[1])
    [('[PAD]', 0), ('[UNK]', 1), ('the', 2), ('cat', 3), ('dog', 4), ('sat', 5)]
    >>> tok.encode(["the Bird sat"])[0].tolist()
    [2, 1, 5]
    """

    def __init__(
        self,
        *,
        kind="word",
        lowercase=True,
        strip_accents=True,
        min_frequency=2,
        max_vocab=None,
        subword_vocab_size=30000,
    ):
        self.kind = kind
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.min_frequency = min_frequency
        self.max_vocab = max_vocab
        self.subword_vocab_size = subword_vocab_size

    # ------------------------------------------------------------------ fit

    def _validate_params(self):
        if self.kind not in _KINDS:
            raise ValueError(
                f"kind must be one of {', '.join(map(repr, _KINDS))}, "
                f"got {self.kind!r}"
            )
        for name in ("lowercase", "strip_accents"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(
                    f"{name} must be a bool, got {getattr(self, name)!r}"
                )
        _check_positive_int(self.min_frequency, "min_frequency")
        _check_positive_int(self.max_vocab, "max_vocab", allow_none=True)
        _check_positive_int(self.subword_vocab_size, "subword_vocab_size")
        if self.subword_vocab_size < 3:
            raise ValueError(
                "subword_vocab_size must be >= 3 (two special tokens and at "
                f"least one piece), got {self.subword_vocab_size}"
            )

    def fit(self, texts, y=None):
        """Learn the vocabulary from ``texts`` (and only from them).

        Parameters
        ----------
        texts : iterable of str
            Training documents.
        y : None
            Ignored; accepted for scikit-learn API compatibility.

        Returns
        -------
        self : TextTokenizer
            The fitted tokenizer.

        Raises
        ------
        TypeError
            If ``texts`` is a single string or contains a non-str element
            (the message names the index of the first one).
        ValueError
            If ``texts`` is empty, contains no word at all, or (word kind)
            no word reaches ``min_frequency``.
        """
        self._validate_params()
        texts = _check_texts(texts, min_count=1)
        _install_fork_guard()
        lowercase = bool(self.lowercase)
        normalizer = _make_normalizer(lowercase, bool(self.strip_accents))
        table = _ascii_table(lowercase)

        if self.kind == "word":
            model = models.WordLevel(
                vocab=self._word_vocabulary(texts, normalizer, table),
                unk_token=UNK_TOKEN,
            )
        else:
            model = self._fit_subword(texts, normalizer, table)

        # A fresh Tokenizer around the model: the subword trainers register
        # [PAD]/[UNK] (and the WordPiece "##c" helpers) as *added* tokens on
        # their training tokenizer, which would make a literal "[PAD]" in a
        # text encode to 0. The fresh one has no added tokens.
        hf = Tokenizer(model)
        vocab = hf.get_vocab()
        if len(vocab) <= 2:
            # Subword kinds only (the word kind raises while counting): the
            # alphabet alone would give more ids, so there were no words.
            raise ValueError(_no_words_message(len(texts)))
        if vocab.get(PAD_TOKEN) != PAD_ID or vocab.get(UNK_TOKEN) != UNK_ID:
            # Cannot happen with the word splitter above (brackets are never
            # part of a word); guards the id contract against future changes.
            raise RuntimeError(
                "internal error: special tokens did not get ids 0 and 1"
            )
        hf.normalizer = normalizer
        hf.pre_tokenizer = _make_pre_tokenizer()
        # Padding/truncation are never enabled: truncation is done on the
        # id arrays, padding by the consumers.
        self._set_fitted(hf, lowercase)
        return self

    def _word_vocabulary(self, texts, normalizer, table):
        """Count the words of ``texts`` and return the WordLevel vocabulary."""
        counts = _count_words(texts, normalizer, table)
        if not counts:
            raise ValueError(_no_words_message(len(texts)))
        words = [w for w, n in counts.items() if n >= self.min_frequency]
        if not words:
            raise ValueError(
                f"no word occurs at least min_frequency={self.min_frequency} "
                f"times in the {len(texts)} training text(s) (the most "
                f"frequent occurs {max(counts.values())} times); lower "
                "min_frequency"
            )
        # The documented id order, independent of any hash order: sort by
        # code point, then stably by descending count (ties stay sorted).
        words.sort()
        words.sort(key=counts.__getitem__, reverse=True)
        if self.max_vocab is not None:
            del words[self.max_vocab:]
        vocab = {PAD_TOKEN: PAD_ID, UNK_TOKEN: UNK_ID}
        vocab.update(zip(words, range(2, len(words) + 2)))
        return vocab

    def _fit_subword(self, texts, normalizer, table):
        if all(text.isascii() for text in texts):
            # Translated ASCII text only has word bytes and spaces, so the
            # cheap whitespace split is exact.
            pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        else:
            pre_tokenizer = _make_pre_tokenizer()

        def normalized_texts():
            # Everything the trainer sees is already normalised (by exactly
            # the normaliser encode() uses), so the training tokenizer needs
            # no normaliser and ASCII texts skip the slow one.
            for text in texts:
                if text.isascii():
                    yield _translate(text, table)
                else:
                    yield normalizer.normalize_str(text)

        model = (
            models.BPE(unk_token=UNK_TOKEN)
            if self.kind == "bpe"
            else models.WordPiece(
                unk_token=UNK_TOKEN, continuing_subword_prefix=_CONTINUATION
            )
        )
        train_tok = Tokenizer(model)
        train_tok.pre_tokenizer = pre_tokenizer
        special = [PAD_TOKEN, UNK_TOKEN]
        if self.kind == "bpe":
            # Plain BPE is deterministic: its alphabet is sorted and merge
            # ties are broken by the (hence deterministic) pair ids.
            trainer = trainers.BpeTrainer(
                vocab_size=self.subword_vocab_size,
                min_frequency=self.min_frequency,
                special_tokens=special,
                show_progress=False,
            )
        else:
            # The WordPiece trainer runs BPE with a "##" prefix and gives the
            # "##c" pieces ids in hash-map order, which also breaks merge
            # ties, so vocabularies differ between processes. Declaring every
            # "##c" up front as a special token fixes their ids (sorted);
            # fit() drops the added tokens afterwards.
            alphabet = self._word_alphabet(normalized_texts(), pre_tokenizer)
            special += [_CONTINUATION + c for c in alphabet]
            trainer = trainers.WordPieceTrainer(
                vocab_size=self.subword_vocab_size,
                min_frequency=self.min_frequency,
                special_tokens=special,
                continuing_subword_prefix=_CONTINUATION,
                show_progress=False,
            )
        train_tok.train_from_iterator(normalized_texts(), trainer, length=len(texts))
        return train_tok.model

    @staticmethod
    def _word_alphabet(text_iter, pre_tokenizer):
        """Sorted characters that occur inside words of normalised texts."""
        chars = set()
        for text in text_iter:
            chars.update(text)  # set.update over a str runs in C
        # Keep only word characters: exactly those the splitter keeps.
        return sorted(c for c in chars if pre_tokenizer.pre_tokenize_str(c))

    def _set_fitted(self, hf, lowercase):
        self.tokenizer_ = hf
        # Settings the fitted state was built with, kept apart from the
        # public parameters so that a later set_params() cannot make the
        # fast path disagree with the fitted normaliser.
        self._fitted_lowercase = lowercase
        self._ascii_table = _ascii_table(lowercase)
        # Same model object (shared, not copied), no normaliser and a plain
        # whitespace split: for translated ASCII text this is the identical
        # pipeline, about twice as fast.
        lean = Tokenizer(hf.model)
        lean.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        self._lean = lean

    def __sklearn_is_fitted__(self):
        return getattr(self, "tokenizer_", None) is not None

    def _check_fitted(self):
        if getattr(self, "tokenizer_", None) is None:
            raise NotFittedError(
                "This TextTokenizer is not fitted yet. Call 'fit' with the "
                "training texts before using it."
            )

    # ----------------------------------------------------------- vocabulary

    @property
    def vocab_size(self):
        """int : Number of ids, ``[PAD]`` and ``[UNK]`` included."""
        self._check_fitted()
        return self.tokenizer_.get_vocab_size(with_added_tokens=True)

    def get_vocabulary(self):
        """Return the vocabulary.

        Returns
        -------
        vocabulary : dict of str to int
            A new dict mapping every token to its id; includes
            ``"[PAD]": 0`` and ``"[UNK]": 1``. Subword kinds contain
            ``"##"``-prefixed word-internal pieces (wordpiece).
        """
        self._check_fitted()
        return dict(self.tokenizer_.get_vocab(with_added_tokens=True))

    def id_to_token(self, i):
        """Return the token string of id ``i``.

        Parameters
        ----------
        i : int
            An id in ``[0, vocab_size)``.

        Returns
        -------
        token : str

        Raises
        ------
        IndexError
            If ``i`` is out of range.
        """
        self._check_fitted()
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError(f"id must be an int, got {type(i).__name__}")
        if not 0 <= i < self.vocab_size:
            raise IndexError(
                f"id {i} is out of range for a vocabulary of {self.vocab_size}"
            )
        return self.tokenizer_.id_to_token(int(i))

    def token_to_id(self, token):
        """Return the id of an exact vocabulary token, or None.

        Parameters
        ----------
        token : str
            A token as it appears in :meth:`get_vocabulary` (already
            normalised: ``token_to_id("Cat")`` is None when lowercasing).

        Returns
        -------
        id : int or None
        """
        self._check_fitted()
        return self.tokenizer_.token_to_id(_check_text(token))

    # ------------------------------------------------------------- encoding

    def _encode_lists(self, texts):
        """Yield ``(index, ids)`` for every text, ids as a Python list.

        Texts are processed in slices of about ``_ENCODE_CHUNK_CHARS``
        characters; inside a slice ASCII texts take the fast path and the
        others the full pipeline, each as one parallel Rust batch.
        """
        _install_fork_guard()
        table = self._ascii_table
        encode_lean = _batch_encoder(self._lean)
        encode_full = _batch_encoder(self.tokenizer_)
        start, n = 0, len(texts)
        while start < n:
            stop, size = start, 0
            while stop < n and (stop == start or size < _ENCODE_CHUNK_CHARS):
                size += len(texts[stop])
                stop += 1
            ascii_idx, ascii_txt, other_idx, other_txt = [], [], [], []
            for i in range(start, stop):
                text = texts[i]
                if text.isascii():
                    ascii_idx.append(i)
                    ascii_txt.append(_translate(text, table))
                else:
                    other_idx.append(i)
                    other_txt.append(text)
            if ascii_txt:
                encs = encode_lean(ascii_txt, add_special_tokens=False)
                for i, enc in zip(ascii_idx, encs):
                    yield i, enc.ids
            if other_txt:
                encs = encode_full(other_txt, add_special_tokens=False)
                for i, enc in zip(other_idx, encs):
                    yield i, enc.ids
            start = stop

    def encode(self, texts, *, max_length=None):
        """Encode texts to id arrays.

        Parameters
        ----------
        texts : iterable of str
            Documents to encode.
        max_length : int or None, default=None
            Keep only the first ``max_length`` ids of each text.

        Returns
        -------
        ids : list of numpy.ndarray
            One int32 array per text, in order. Unknown words are
            ``UNK_ID``; ``PAD_ID`` never occurs; a text without words gives
            an empty array.
        """
        self._check_fitted()
        max_length = _check_positive_int(max_length, "max_length", allow_none=True)
        texts = _check_texts(texts)
        out = [None] * len(texts)
        for i, ids in self._encode_lists(texts):
            if max_length is not None:
                # Slice the list before converting, so the dropped tail is
                # never copied into (or kept alive by) the array.
                ids = ids[:max_length]
            out[i] = np.asarray(ids, dtype=np.int32)
        return out

    def encode_chunks(self, texts, *, max_length, max_chunks=None):
        """Encode texts and cut each id sequence into consecutive chunks.

        Parameters
        ----------
        texts : iterable of str
            Documents to encode.
        max_length : int
            Maximum number of ids per chunk; every chunk but the last of a
            text has exactly ``max_length`` ids.
        max_chunks : int or None, default=None
            Keep at most this many chunks per text (the first ones); the
            rest of the text is dropped. None keeps the whole text.

        Returns
        -------
        chunks : list of list of numpy.ndarray
            For each text, its chunks in order (int32 arrays, views into one
            array per text); concatenating them gives the encoding of the
            text, truncated to ``max_length * max_chunks`` ids. A text
            without words gives ``[]``.
        """
        self._check_fitted()
        max_length = _check_positive_int(max_length, "max_length")
        max_chunks = _check_positive_int(max_chunks, "max_chunks", allow_none=True)
        texts = _check_texts(texts)
        limit = None if max_chunks is None else max_length * max_chunks
        out = [None] * len(texts)
        for i, ids in self._encode_lists(texts):
            if limit is not None:
                ids = ids[:limit]
            arr = np.asarray(ids, dtype=np.int32)
            out[i] = [arr[s:s + max_length] for s in range(0, len(arr), max_length)]
        return out

    def tokenize(self, text):
        """Return the normalised tokens of one text, aligned with its ids.

        Parameters
        ----------
        text : str

        Returns
        -------
        tokens : list of str
            One string per id of ``encode([text])[0]``, same order. Known
            ids give their vocabulary token (lowercased, accents stripped,
            "##" pieces for wordpiece); unknown ones give the normalised
            text they stand for instead of "[UNK]", so explanations stay
            readable.
        """
        self._check_fitted()
        text = _check_text(text)
        enc = self.tokenizer_.encode(text, add_special_tokens=False)
        normalizer = self.tokenizer_.normalizer
        return [
            normalizer.normalize_str(text[s:e]) if i == UNK_ID else tok
            for tok, i, (s, e) in zip(enc.tokens, enc.ids, enc.offsets)
        ]

    def encode_with_offsets(self, text):
        """Encode one text and locate every id in the original text.

        Parameters
        ----------
        text : str

        Returns
        -------
        ids : numpy.ndarray
            int32, identical to ``encode([text])[0]``.
        offsets : list of tuple of (int, int)
            For each id, ``(start, end)`` character offsets into ``text``
            (the original, unnormalised string): ``text[start:end]`` is the
            source of the token, e.g. for highlighting evidence.
        """
        self._check_fitted()
        text = _check_text(text)
        enc = self.tokenizer_.encode(text, add_special_tokens=False)
        return np.asarray(enc.ids, dtype=np.int32), list(enc.offsets)

    # -------------------------------------------------------- serialisation

    def to_json(self):
        """Serialise the parameters and fitted state to a JSON string.

        Returns
        -------
        s : str
            Loadable with :meth:`from_json`; the loaded tokenizer encodes
            identically. Unfitted tokenizers serialise their parameters only.
        """
        fitted = None
        if getattr(self, "tokenizer_", None) is not None:
            fitted = {
                "lowercase": self._fitted_lowercase,
                "hf_tokenizer": json.loads(self.tokenizer_.to_str()),
            }
        params = {k: _json_scalar(v) for k, v in self.get_params().items()}
        return json.dumps(
            {
                "format": _FORMAT,
                "format_version": _FORMAT_VERSION,
                "tokenizers_version": _TOKENIZERS_VERSION,
                "params": params,
                "fitted": fitted,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, s):
        """Rebuild a tokenizer from :meth:`to_json` output.

        Parameters
        ----------
        s : str
            JSON produced by :meth:`to_json`.

        Returns
        -------
        tokenizer : TextTokenizer
        """
        try:
            data = json.loads(s)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a TextTokenizer JSON string: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError("not a TextTokenizer JSON string (wrong format tag)")
        if data.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"unsupported TextTokenizer format version "
                f"{data.get('format_version')!r} (expected {_FORMAT_VERSION})"
            )
        obj = cls(**data["params"])
        fitted = data.get("fitted")
        if fitted is not None:
            hf = Tokenizer.from_str(json.dumps(fitted["hf_tokenizer"]))
            obj._set_fitted(hf, bool(fitted["lowercase"]))
        return obj

    def __getstate__(self):
        return {"json": self.to_json()}

    def __setstate__(self, state):
        restored = type(self).from_json(state["json"])
        self.__dict__.update(restored.__dict__)
