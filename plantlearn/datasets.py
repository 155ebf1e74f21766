"""Loaders for multi-label text corpora and a synthetic corpus generator.

File format
-----------
A dataset split is a JSON Lines file (optionally gzip-compressed), one document per line::

    {"id": "42", "text": "Grain shipments rose ...", "labels": ["grain", "ship"]}

A dataset is a folder ``{data_home}/{name}/`` holding ``train``, ``dev`` (optional) and ``test``
splits as ``{split}.jsonl.gz`` or ``{split}.jsonl``.

Label matrices are scipy CSR matrices of dtype int32 holding 0/1. int32 rather than int8 so that
products such as ``X.T @ Y`` (co-occurrence counts) cannot overflow.
"""

import gzip
import json
import os
import warnings
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch, check_random_state

__all__ = ["load_jsonl", "load_dataset", "make_multilabel_text"]

SUBSETS = ("train", "dev", "test")
_REQUIRED_KEYS = ("id", "text", "labels")
_GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------------------------
# JSON Lines
# --------------------------------------------------------------------------------------------


def _open_lines(path):
    """Yield raw byte lines of a plain or gzip file; detection by magic number, not suffix."""
    with open(path, "rb") as fh:
        compressed = fh.read(2) == _GZIP_MAGIC
    if not compressed:
        with open(path, "rb") as fh:
            yield from fh
        return
    try:
        with gzip.open(path, "rb") as fh:
            yield from fh
    except (OSError, EOFError, zlib.error) as exc:
        # A truncated or corrupt archive is a data problem, reported like the others.
        raise ValueError(f"{path}: cannot read compressed data ({exc}).") from exc


def _parse_record(raw, path, lineno):
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}, line {lineno}: not valid UTF-8 ({exc.reason}).") from None
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}, line {lineno}: malformed JSON ({exc.msg} at column {exc.colno})."
        ) from None
    if not isinstance(record, dict):
        raise ValueError(
            f"{path}, line {lineno}: expected a JSON object with keys 'id', 'text', 'labels'; "
            f"got a JSON {type(record).__name__}."
        )
    missing = [key for key in _REQUIRED_KEYS if key not in record]
    if missing:
        raise ValueError(f"{path}, line {lineno}: missing key(s) {', '.join(map(repr, missing))}.")
    text, labels = record["text"], record["labels"]
    if not isinstance(text, str):
        raise ValueError(
            f"{path}, line {lineno}: 'text' must be a string, got {type(text).__name__}."
        )
    if not isinstance(labels, list):
        raise ValueError(
            f"{path}, line {lineno}: 'labels' must be a list, got {type(labels).__name__}."
        )
    clean = []
    for label in labels:
        # Integer codes are accepted and read as their decimal string; anything else (floats,
        # nested lists, null, booleans) is almost certainly a broken export.
        if isinstance(label, str):
            clean.append(label)
        elif isinstance(label, int) and not isinstance(label, bool):
            clean.append(str(label))
        else:
            raise ValueError(
                f"{path}, line {lineno}: labels must be strings (or integers); "
                f"got {label!r} of type {type(label).__name__}."
            )
    return record["id"], text, clean


def _check_label_names(label_names):
    if isinstance(label_names, str):
        raise TypeError("label_names must be a sequence of label strings, not a single str.")
    names = [str(x) for x in label_names]
    counts = Counter(names)
    dups = [name for name, c in counts.items() if c > 1]
    if dups:
        raise ValueError(f"label_names contains duplicates, e.g. {dups[:5]}.")
    return names


def load_jsonl(path, *, label_names=None):
    """Read a JSON Lines multi-label text file.

    Each non-blank line must be a JSON object with keys ``"id"``, ``"text"`` (a string) and
    ``"labels"`` (a list of strings; integers are read as their decimal string). Repeated labels
    within a document count once. Gzip files are recognised by content, whatever their name.

    Parameters
    ----------
    path : str or os.PathLike
        File to read, plain or gzip-compressed.
    label_names : sequence of str, default=None
        The label space, in column order. If None, the sorted set of labels seen in the file.
        Pass the training split's ``target_names`` when loading dev or test data so that columns
        line up; labels outside it are dropped with one warning that counts them.

    Returns
    -------
    data : sklearn.utils.Bunch
        With attributes

        - ``data``: list of str, the documents;
        - ``target``: scipy.sparse.csr_matrix of shape (n_docs, n_labels), int32 0/1;
        - ``target_names``: ndarray of str of shape (n_labels,);
        - ``ids``: list, the ``"id"`` values as stored.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        On a malformed line (invalid JSON, not an object, a missing key, a wrong type), naming
        the file and the line number.

    Warns
    -----
    UserWarning
        When ``label_names`` is given and the file has labels outside it.

    Examples
    --------
    >>> from plantlearn.datasets import load_jsonl
    >>> train = load_jsonl("train.jsonl.gz")  # doctest: +SKIP
    >>> test = load_jsonl("test.jsonl.gz", label_names=train.target_names)  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise FileNotFoundError(f"Not a file: '{path}'.")
        raise FileNotFoundError(f"No such file: '{path}'.")

    ids, texts, doc_labels = [], [], []
    for lineno, raw in enumerate(_open_lines(path), start=1):
        parsed = _parse_record(raw, path, lineno)
        if parsed is None:
            continue
        doc_id, text, labels = parsed
        ids.append(doc_id)
        texts.append(text)
        doc_labels.append(labels)

    if label_names is None:
        names = sorted({label for labels in doc_labels for label in labels})
    else:
        names = _check_label_names(label_names)
    column = {name: j for j, name in enumerate(names)}

    indptr = [0]
    indices = []
    unknown = Counter()
    for labels in doc_labels:
        cols = set()
        for label in dict.fromkeys(labels):  # de-duplicate, keep order for the counter
            j = column.get(label)
            if j is None:
                unknown[label] += 1
            else:
                cols.add(j)
        indices.extend(sorted(cols))
        indptr.append(len(indices))

    if unknown:
        examples = ", ".join(f"{label!r} ({n})" for label, n in unknown.most_common(5))
        warnings.warn(
            f"{path}: dropped {sum(unknown.values())} occurrence(s) of {len(unknown)} label(s) "
            f"not in label_names, e.g. {examples}.",
            UserWarning,
            stacklevel=2,
        )

    target = sp.csr_matrix(
        (
            np.ones(len(indices), dtype=np.int32),
            np.asarray(indices, dtype=np.int32),
            np.asarray(indptr, dtype=np.int64),
        ),
        shape=(len(texts), len(names)),
    )
    target_names = np.array(names, dtype=str) if names else np.array([], dtype=str)
    return Bunch(data=texts, target=target, target_names=target_names, ids=ids)


# --------------------------------------------------------------------------------------------
# Dataset folders
# --------------------------------------------------------------------------------------------


def _split_file(folder, subset):
    for suffix in (".jsonl.gz", ".jsonl"):
        candidate = folder / f"{subset}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def load_dataset(name, subset="train", *, data_home=None, label_names=None):
    """Load one split of a dataset stored as ``{data_home}/{name}/{subset}.jsonl[.gz]``.

    Parameters
    ----------
    name : str
        Dataset folder name, e.g. ``"reuters21578_modapte"``, ``"codiesp_d_en"``,
        ``"goemotions"``.
    subset : {"train", "dev", "test"}, default="train"
        Which split to read; ``.jsonl.gz`` is preferred over ``.jsonl``.
    data_home : str or os.PathLike, default=None
        Folder holding one sub-folder per dataset. Defaults to the environment variable
        ``PLANTLEARN_DATA``.
    label_names : sequence of str, default=None
        Fixed label space, usually ``load_dataset(name, "train").target_names`` when loading
        dev or test; see :func:`load_jsonl`.

    Returns
    -------
    data : sklearn.utils.Bunch
        As returned by :func:`load_jsonl`.

    Raises
    ------
    ValueError
        If ``subset`` is not one of the three splits, or no data folder is given.
    FileNotFoundError
        If the folder, the dataset or the split does not exist (the message lists what does).

    Examples
    --------
    >>> from plantlearn.datasets import load_dataset
    >>> train = load_dataset("reuters21578_modapte", "train")  # doctest: +SKIP
    >>> test = load_dataset("reuters21578_modapte", "test",
    ...                     label_names=train.target_names)  # doctest: +SKIP
    >>> train.target.shape, test.target.shape  # doctest: +SKIP
    ((7769, 90), (3019, 90))
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {', '.join(map(repr, SUBSETS))}; got {subset!r}.")
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (a dataset folder name); got {type(name).__name__}.")
    # A name is a folder name, never a path: "../x" must not escape data_home.
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ValueError(f"name must be a dataset folder name (no path separators); got {name!r}.")
    if data_home is None:
        data_home = os.environ.get("PLANTLEARN_DATA") or None
    if data_home is None:
        raise ValueError(
            "No data folder given: pass data_home=... or set the environment variable "
            "PLANTLEARN_DATA to the folder that holds one sub-folder per dataset "
            "(e.g. `export PLANTLEARN_DATA=/path/to/shared/data`)."
        )
    home = Path(data_home).expanduser()
    if not home.is_dir():
        raise FileNotFoundError(f"Data folder '{home}' does not exist.")
    folder = home / name
    if not folder.is_dir():
        available = sorted(p.name for p in home.iterdir() if p.is_dir())
        raise FileNotFoundError(
            f"No dataset {name!r} in '{home}'; available: {', '.join(available) or 'none'}."
        )
    path = _split_file(folder, subset)
    if path is None:
        splits = [s for s in SUBSETS if _split_file(folder, s) is not None]
        raise FileNotFoundError(
            f"Dataset {name!r} has no {subset!r} split ('{folder / subset}.jsonl[.gz]'); "
            f"available splits: {', '.join(splits) or 'none'}."
        )
    return load_jsonl(path, label_names=label_names)


# --------------------------------------------------------------------------------------------
# Synthetic corpus
# --------------------------------------------------------------------------------------------

# Pseudo-words are consonant-vowel syllables: pronounceable, alphabetic, and never English by
# design, so the corpus carries no accidental real-world signal.
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = np.array([c + v for c in _CONSONANTS for v in _VOWELS])


def _pseudo_words(rng, n_words, min_syllables, max_syllables, exclude=frozenset()):
    """``n_words`` distinct pseudo-words of ``min..max`` syllables, not in ``exclude``."""
    capacity = sum(len(_SYLLABLES) ** s for s in range(min_syllables, max_syllables + 1))
    if n_words > capacity // 2:
        raise ValueError(
            f"Cannot draw {n_words} distinct pseudo-words of {min_syllables}-{max_syllables} "
            f"syllables (at most about {capacity // 2}); lower vocab_size or n_evidence_words."
        )
    words, seen = [], set(exclude)
    while len(words) < n_words:
        # Draw in batches; rejection of duplicates stays cheap while under half the capacity.
        batch = max(64, 2 * (n_words - len(words)))
        n_syl = rng.integers(min_syllables, max_syllables + 1, size=batch)
        parts = rng.integers(0, len(_SYLLABLES), size=(batch, max_syllables))
        for length, row in zip(n_syl, parts, strict=True):
            word = "".join(_SYLLABLES[row[:length]])
            if word not in seen:
                seen.add(word)
                words.append(word)
                if len(words) == n_words:
                    break
    return words


def _zipf_probabilities(n, exponent):
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return weights / weights.sum()


def make_multilabel_text(
    n_samples=1000,
    n_labels=20,
    *,
    vocab_size=2000,
    n_evidence_words=3,
    length=(40, 160),
    avg_labels=2.0,
    label_skew=1.0,
    evidence_rate=0.8,
    distractor_rate=0.2,
    return_evidence=False,
    random_state=None,
):
    """Generate a synthetic multi-label text corpus with hidden per-label evidence words.

    In the spirit of :func:`sklearn.datasets.make_multilabel_classification`, but producing
    text. Each document is filler text drawn from a Zipf-distributed vocabulary of pronounceable
    pseudo-words; each of its labels is signalled by a few label-specific evidence words (never
    used as filler) hidden at random positions. Noise keeps it from being trivial: a label's
    evidence is sometimes missing, and evidence words of labels a document does not have
    sometimes appear.

    Generative process, per document:

    1. Length ``T`` uniform on ``length[0] .. length[1]`` (inclusive) words.
    2. Number of labels ``1 + Poisson(avg_labels - 1)`` (at most ``n_labels``), labels drawn
       without replacement with Zipf probabilities ``∝ 1 / rank ** label_skew`` over a random
       permutation of the label indices (so frequency is unrelated to column order). Labels left
       without any document are then each added to one random document.
    3. For each label, with probability ``evidence_rate`` insert between 1 and
       ``n_evidence_words`` distinct evidence words of that label; otherwise none.
    4. Insert ``Poisson(distractor_rate)`` distractor evidence words, each from a label the
       document does not have (drawn with the label frequencies).
    5. Fill the remaining positions with filler words, Zipf(1) over ``vocab_size`` words, the
       shortest words being the most frequent as in natural language.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of documents.
    n_labels : int, default=20
        Number of labels (columns of ``Y``).
    vocab_size : int, default=2000
        Number of distinct filler words.
    n_evidence_words : int, default=3
        Evidence words per label (disjoint from the filler and from other labels' evidence).
    length : (int, int), default=(40, 160)
        Inclusive range of document lengths in words. A document with more evidence words than
        its drawn length is lengthened to hold them.
    avg_labels : float, default=2.0
        Mean number of labels per document (before the pass that makes every label occur); at
        least 1.
    label_skew : float, default=1.0
        Zipf exponent of the label frequencies; 0 gives uniform labels, larger values a longer
        tail.
    evidence_rate : float, default=0.8
        Probability that a document shows evidence for each of its labels.
    distractor_rate : float, default=0.2
        Mean number of evidence words per document that belong to labels it does not have.
    return_evidence : bool, default=False
        Also return the evidence words of each label.
    random_state : int, numpy.random.RandomState, numpy.random.Generator or None, default=None
        Seed; the output is deterministic for a fixed int.

    Returns
    -------
    X : list of str
        The documents, lowercase words separated by single spaces.
    Y : scipy.sparse.csr_matrix of shape (n_samples, n_labels)
        int32 0/1 label indicator matrix; every label has at least one document.
    evidence : list of list of str
        Only with ``return_evidence=True``: ``evidence[l]`` are label ``l``'s evidence words.

    Examples
    --------
    >>> from plantlearn.datasets import make_multilabel_text
    >>> X, Y = make_multilabel_text(n_samples=200, n_labels=10, random_state=0)
    >>> len(X), Y.shape
    (200, (200, 10))
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_labels = _check_int(n_labels, "n_labels", 1)
    vocab_size = _check_int(vocab_size, "vocab_size", 1)
    n_evidence_words = _check_int(n_evidence_words, "n_evidence_words", 1)
    try:
        lo, hi = (int(v) for v in length)
    except (TypeError, ValueError):
        raise TypeError(f"length must be a pair of ints (min, max); got {length!r}.") from None
    if lo < 1 or hi < lo:
        raise ValueError(f"length must satisfy 1 <= min <= max; got {length!r}.")
    if not avg_labels >= 1:
        raise ValueError(f"avg_labels must be >= 1; got {avg_labels!r}.")
    if not label_skew >= 0:
        raise ValueError(f"label_skew must be >= 0; got {label_skew!r}.")
    if not 0 <= evidence_rate <= 1:
        raise ValueError(f"evidence_rate must lie in [0, 1]; got {evidence_rate!r}.")
    if not distractor_rate >= 0:
        raise ValueError(f"distractor_rate must be >= 0; got {distractor_rate!r}.")

    if isinstance(random_state, np.random.Generator):
        rng = random_state
    else:
        # Accept sklearn-style seeds; derive a Generator for its better API.
        seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
        rng = np.random.default_rng(seed)

    # Vocabularies: filler words of 1-3 syllables, evidence words of 3-4 so that they are never
    # confused with the most frequent (short) filler words.
    filler = _pseudo_words(rng, vocab_size, 1, 3)
    filler.sort(key=len)  # stable: shortest words get the highest Zipf ranks
    filler = np.array(filler)
    evidence_flat = _pseudo_words(rng, n_labels * n_evidence_words, 3, 4, exclude=set(filler))
    evidence = [
        evidence_flat[i * n_evidence_words : (i + 1) * n_evidence_words] for i in range(n_labels)
    ]

    # Label frequencies: Zipf over a random permutation of the columns.
    label_p = np.empty(n_labels)
    label_p[rng.permutation(n_labels)] = _zipf_probabilities(n_labels, label_skew)
    n_per_doc = np.minimum(1 + rng.poisson(avg_labels - 1.0, size=n_samples), n_labels)
    doc_labels = _weighted_subsets(rng, label_p, n_per_doc)
    # Every label gets at least one document, as the docstring promises.
    counts = np.zeros(n_labels, dtype=np.int64)
    for labels in doc_labels:
        counts[list(labels)] += 1
    for label in np.flatnonzero(counts == 0):
        doc_labels[rng.integers(n_samples)].add(int(label))

    # Inverse-CDF sampling: O(T log V) per document instead of rebuilding a CDF per call.
    filler_cdf = np.cumsum(_zipf_probabilities(vocab_size, 1.0))
    filler_cdf[-1] = 1.0
    lengths = rng.integers(lo, hi + 1, size=n_samples)
    texts = []
    for labels, T in zip(doc_labels, lengths, strict=True):
        planted = []
        for label in sorted(labels):
            if rng.random() < evidence_rate:
                m = rng.integers(1, n_evidence_words + 1)
                picks = rng.choice(n_evidence_words, size=m, replace=False)
                planted.extend(evidence[label][i] for i in picks)
        n_distract = rng.poisson(distractor_rate)
        if n_distract and len(labels) < n_labels:
            is_absent = np.ones(n_labels, dtype=bool)
            is_absent[list(labels)] = False
            absent = np.flatnonzero(is_absent)
            p = label_p[absent] / label_p[absent].sum()
            for label in rng.choice(absent, size=n_distract, p=p):
                planted.append(evidence[label][rng.integers(n_evidence_words)])
        T = max(int(T), len(planted))
        draws = np.searchsorted(filler_cdf, rng.random(T), side="right")
        tokens = filler[np.minimum(draws, vocab_size - 1)].astype(object)
        if planted:
            tokens[rng.choice(T, size=len(planted), replace=False)] = planted
        texts.append(" ".join(tokens))

    indptr = np.zeros(n_samples + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(labels) for labels in doc_labels])
    indices = np.concatenate([sorted(labels) for labels in doc_labels]).astype(np.int32)
    Y = sp.csr_matrix(
        (np.ones(indices.size, dtype=np.int32), indices, indptr), shape=(n_samples, n_labels)
    )
    if return_evidence:
        return texts, Y, evidence
    return texts, Y


def _weighted_subsets(rng, p, sizes):
    """One subset per entry of ``sizes``, drawn without replacement with probabilities ``p``.

    Gumbel top-k: the ``m`` largest of ``log p + Gumbel noise`` are distributed exactly like
    ``m`` successive weighted draws without replacement, and vectorise over documents.
    """
    n_items = p.size
    log_p = np.log(p)
    m_max = int(sizes.max())
    chunk = max(1, (1 << 22) // n_items)
    subsets = []
    for start in range(0, sizes.size, chunk):
        m = sizes[start : start + chunk]
        keys = log_p + rng.gumbel(size=(m.size, n_items))
        if m_max < n_items:
            top = np.argpartition(-keys, m_max - 1, axis=1)[:, :m_max]
        else:
            top = np.broadcast_to(np.arange(n_items), keys.shape)
        order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        subsets.extend(set(row[:k].tolist()) for row, k in zip(top, m, strict=True))
    return subsets


def _check_int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}.")
    return int(value)
