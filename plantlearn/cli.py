"""The ``plantlearn`` command line: fit, predict, evaluate, explain and a demo.

Run ``plantlearn --help`` (or ``python -m plantlearn --help``). Every
subcommand reads JSON lines (``.jsonl``/``.jsonl.gz``, one
``{"id", "text", "labels"}`` object per line) or CSV files (a text column and a
label column holding labels joined by a separator).

User errors (a missing or malformed file, an unknown or invalid parameter)
print one message on stderr and exit with status 2, never a traceback.
"""

import argparse
import ast
import csv
import gzip
import io
import json
import os
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser"]

_PROG = "plantlearn"
# Documents per prediction batch: bounds the dense (batch, n_labels) matrix.
_PREDICT_BATCH = 256


class UserError(Exception):
    """An error caused by the command's input, reported without a traceback."""


# ----------------------------------------------------------------------------
# Reading documents
# ----------------------------------------------------------------------------


def _is_csv(path):
    name = path.name.lower()
    return name.endswith(".csv") or name.endswith(".csv.gz")


def _open_text(path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _split_labels(value, sep):
    return [part.strip() for part in value.split(sep) if part.strip()] if value else []


def _read_csv(path, text_column, label_column, label_sep, need_labels, id_column):
    # Clinical notes and the like are longer than csv's default 128 KiB field limit.
    csv.field_size_limit(2**31 - 1)
    ids, texts, labels = [], [], []
    try:
        with _open_text(path) as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            if text_column not in columns:
                raise ValueError(
                    f"{path}: no column {text_column!r} (columns: {', '.join(columns) or 'none'}); "
                    f"choose the text column with --text-column."
                )
            has_labels = label_column in columns
            if need_labels and not has_labels:
                raise ValueError(
                    f"{path}: no column {label_column!r} (columns: {', '.join(columns)}); "
                    f"choose the label column with --label-column."
                )
            for row_number, row in enumerate(reader, start=1):
                text = row.get(text_column)
                if text is None:
                    raise ValueError(f"{path}, row {row_number}: the {text_column!r} cell is missing.")
                ids.append(row.get(id_column) or str(row_number))
                texts.append(text)
                if has_labels:
                    labels.append(_split_labels(row.get(label_column), label_sep))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not valid UTF-8 ({exc.reason}).") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: malformed CSV ({exc}).") from None
    return ids, texts, (labels if has_labels else None)


def _read_jsonl(path, text_column, label_column, need_labels, id_column):
    """JSON lines with configurable keys; labels optional unless needed."""
    from .datasets import _open_lines

    ids, texts, labels = [], [], []
    any_labels = False
    for lineno, raw in enumerate(_open_lines(path), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}, line {lineno}: not valid UTF-8 ({exc.reason}).") from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}, line {lineno}: malformed JSON ({exc.msg}).") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}, line {lineno}: expected a JSON object.")
        text = record.get(text_column)
        if not isinstance(text, str):
            raise ValueError(
                f"{path}, line {lineno}: {text_column!r} must be a string "
                f"({'missing' if text is None else type(text).__name__})."
            )
        doc_labels = record.get(label_column)
        if doc_labels is None:
            if need_labels:
                raise ValueError(f"{path}, line {lineno}: missing key {label_column!r}.")
            doc_labels = []
        else:
            any_labels = True
            if not isinstance(doc_labels, list):
                raise ValueError(f"{path}, line {lineno}: {label_column!r} must be a list.")
            doc_labels = [str(lab) for lab in doc_labels]
        ids.append(record.get(id_column, lineno))
        texts.append(text)
        labels.append(doc_labels)
    return ids, texts, (labels if any_labels or need_labels else None)


def read_documents(path, *, text_column="text", label_column="labels", label_sep=";",
                   id_column="id", need_labels=False):
    """Read ``(ids, texts, labels)`` from a JSON lines or CSV file.

    ``labels`` is a list of label lists, or None when the file has none and
    ``need_labels`` is False. A document without an id gets its line (JSON)
    or row (CSV) number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: '{path}'." if not path.exists() else f"not a file: '{path}'.")
    if _is_csv(path):
        ids, texts, labels = _read_csv(path, text_column, label_column, label_sep, need_labels,
                                       id_column)
    elif (text_column, label_column, id_column) == ("text", "labels", "id") and need_labels:
        from .datasets import load_jsonl

        data = load_jsonl(path)
        names = data.target_names
        Y = data.target
        labels = [names[Y.indices[Y.indptr[i]:Y.indptr[i + 1]]].tolist() for i in range(Y.shape[0])]
        ids, texts = data.ids, data.data
    else:
        ids, texts, labels = _read_jsonl(path, text_column, label_column, need_labels, id_column)
    if not texts:
        raise ValueError(f"{path} holds no documents.")
    return ids, texts, labels


# ----------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------

_WORDS = {"true": True, "false": False, "none": None, "null": None}


def parse_value(text):
    """A ``--set`` value: a Python literal where possible, else the string itself."""
    lowered = text.strip().lower()
    if lowered in _WORDS:
        return _WORDS[lowered]
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_assignments(items):
    params = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--set expects name=value, got {item!r}.")
        params[name] = parse_value(value)
    return params


_ENCODER_NAMES = ("gru", "cnn", "transformer")


def configure(clf, params):
    """``clf.set_params(**params)`` with the ``--set`` values; nested stage-1 parameters
    (``mi__top_k``) work on a default classifier. The benchmarks use it too.

    ``encoder=DIR`` with a model directory plants the attention on that pretrained model
    (a :class:`PretrainedEncoder`, frozen; ``encoder__mode=finetune`` trains it too).
    """
    encoder = params.get("encoder")
    if isinstance(encoder, str) and encoder not in _ENCODER_NAMES:
        from . import PretrainedEncoder

        if not os.path.isdir(encoder):
            raise UserError(f"--set encoder={encoder}: not one of {', '.join(_ENCODER_NAMES)} "
                            f"nor a pretrained model directory.")
        params = {**params, "encoder": PretrainedEncoder(encoder)}
    try:
        clf.set_params(**params)
    except ValueError as exc:
        raise UserError(f"{exc} (set by --set)") from None
    return clf


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------


def _read(args, path, need_labels=False):
    """read_documents with the subcommand's column options."""
    return read_documents(path, text_column=args.text_column, label_column=args.label_column,
                          label_sep=args.label_sep, id_column=args.id_column,
                          need_labels=need_labels)


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _json_value(value):
    return value.item() if isinstance(value, np.generic) else value


def _load_model(path):
    from . import PlantClassifier

    return PlantClassifier.load(path)


def _batches(n, size):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _rank_and_proba(clf, texts):
    """decision_function (ranking scores) and predict_proba of all documents, from one
    forward pass per batch; ``predict`` is exactly ``proba >= clf.threshold_``."""
    scores = np.zeros((len(texts), clf.classes_.size), dtype=np.float32)
    for sl in _batches(len(texts), _PREDICT_BATCH):
        scores[sl] = clf.decision_function(texts[sl])
    return scores, clf.decision_rule_.probabilities(scores)



def _label_matrix(labels, classes):
    """CSR indicator of label lists in the model's label space (unknown labels dropped)."""
    import scipy.sparse as sp

    index = {str(c): j for j, c in enumerate(classes.tolist())}
    rows, cols, unknown = [], [], set()
    for i, labs in enumerate(labels):
        for lab in set(labs):
            j = index.get(str(lab))
            if j is None:
                unknown.add(lab)
            else:
                rows.append(i)
                cols.append(j)
    Y = sp.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)),
                      shape=(len(labels), classes.size))
    return Y, unknown


def _parse_ks(text):
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--k expects comma-separated integers such as 1,3,5; got {text!r}.") from None
    if not ks or min(ks) < 1:
        raise ValueError(f"--k values must be positive integers; got {text!r}.")
    return ks


# ----------------------------------------------------------------------------
# Subcommands
# ----------------------------------------------------------------------------


def cmd_fit(args):
    from . import LTRPretrainer, PlantClassifier

    params = parse_assignments(args.set)
    clf = PlantClassifier(verbose=0 if args.quiet else 1)
    if not args.quiet:
        # Progress of the L2R stage too (a parameter set by --set still wins).
        clf.set_params(ltr=LTRPretrainer(verbose=1))
    configure(clf, params)
    _check_model_path(args.model)
    ids, texts, labels = _read(args, args.train, need_labels=True)
    dev = None
    if args.validation_file is not None:
        dev = _read(args, args.validation_file, need_labels=True)
    n_labels = len({lab for labs in labels for lab in labs})
    _log(f"training on {len(texts)} documents, {n_labels} labels from {args.train}")
    t0 = time.perf_counter()
    clf.fit(texts, labels)
    _log(f"trained in {time.perf_counter() - t0:.1f}s ({clf.n_iter_} epochs)")
    if dev is not None:
        _fit_report_dev(clf, dev)
    clf.save(args.model)
    _log(f"model saved to {args.model}")
    return 0


def _check_model_path(path):
    """Refuse a model path that save() would refuse, before hours of training."""
    from ._persist import check_save_target

    check_save_target(Path(path))


def _fit_report_dev(clf, dev):
    """Recalibrate on the validation file (never the test file) and score it."""
    _, texts, labels = dev
    Y, unknown = _label_matrix(labels, clf.classes_)
    if unknown:
        _log(f"validation file: ignoring {len(unknown)} label(s) the training data lack")
    if Y.nnz:
        known = [[lab for lab in labs if str(lab) in _class_names(clf)] for labs in labels]
        clf.calibrate(texts, _as_fit_target(clf, known, Y))
        _log("calibration and decision rule fitted again on the validation file")
    rows = _scores(Y, *_rank_and_proba(clf, texts), clf, ks=(1, 5))
    _log("validation file:\n" + _format_scores(rows))


def _class_names(clf):
    return {str(c) for c in clf.classes_.tolist()}


def _as_fit_target(clf, labels, Y):
    """Labels in the format the model was fitted on (the CLI fits on label lists)."""
    if clf.target_format_ != "labels":
        return Y
    by_name = {str(c): c for c in clf.classes_.tolist()}
    return [[by_name[str(lab)] for lab in labs] for labs in labels]


def _scores(Y, scores, proba, clf, ks):
    from scipy import sparse

    from .metrics import macro_f1, micro_f1, ndcg_at_k, precision_at_k

    pred = sparse.csr_matrix(proba >= clf.threshold_)  # what predict() returns
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined metrics (no positives) print as 0
        for k in ks:
            rows.append((f"P@{k}", precision_at_k(Y, scores, k=k)))
        for k in ks:
            rows.append((f"nDCG@{k}", ndcg_at_k(Y, scores, k=k)))
        rows.append(("micro-F1", micro_f1(Y, pred)))
        rows.append(("macro-F1", macro_f1(Y, pred, labels="present")))
    return rows


def _format_scores(rows):
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name.ljust(width)}  {value:.4f}" for name, value in rows)


def cmd_predict(args):
    clf = _load_model(args.model)
    ids, texts, _ = _read(args, args.input)
    if args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}.")
    k = min(args.top_k, clf.classes_.size)
    classes = [_json_value(c) for c in clf.classes_]
    out = sys.stdout if args.output is None else open(args.output, "w", encoding="utf-8")
    try:
        for sl in _batches(len(texts), _PREDICT_BATCH):
            scores = clf.decision_function(texts[sl])
            proba = clf.decision_rule_.probabilities(scores)  # = predict_proba, same pass
            predicted = proba >= clf.threshold_  # what predict() returns
            # The ranking of predict_topk.
            top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            for row, doc_id in enumerate(ids[sl]):
                p = proba[row]
                record = {
                    "id": doc_id,
                    "labels": [classes[j] for j in top[row]],
                    "probabilities": [round(float(p[j]), 6) for j in top[row]],
                    "predicted": [classes[j] for j in np.flatnonzero(predicted[row])],
                    # predict() is exactly probability >= threshold, label by label.
                    "threshold": (round(float(clf.threshold_), 6) if np.ndim(clf.threshold_) == 0
                                  else [round(float(clf.threshold_[j]), 6) for j in top[row]]),
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.output is not None:
        _log(f"wrote predictions for {len(texts)} documents to {args.output}")
    return 0


def cmd_evaluate(args):
    from .metrics import format_report, frequency_bucket_report

    ks = _parse_ks(args.k)
    clf = _load_model(args.model)
    _, texts, labels = _read(args, args.test, need_labels=True)
    Y, unknown = _label_matrix(labels, clf.classes_)
    if unknown:
        _log(f"note: ignoring {len(unknown)} test label(s) the model was not trained on, "
             f"e.g. {sorted(map(str, unknown))[:5]}")
    scores, proba = _rank_and_proba(clf, texts)
    ks = [min(k, clf.classes_.size) for k in ks]
    print(f"{len(texts)} documents, {clf.classes_.size} labels")
    print(_format_scores(_scores(Y, scores, proba, clf, ks)))
    if args.train is not None:
        _, _, train_labels = _read(args, args.train, need_labels=True)
        Y_train, _ = _label_matrix(train_labels, clf.classes_)
        from scipy import sparse

        pred = sparse.csr_matrix(proba >= clf.threshold_)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = frequency_bucket_report(Y, scores, Y_train, y_pred=pred, k=max(ks))
        print(f"\nby label frequency in {args.train}:")
        print(format_report(rows))
    return 0


def cmd_explain(args):
    from ._explain import write_html

    out = Path(args.html)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"cannot write {out}: the folder {out.parent} does not exist.")
    clf = _load_model(args.model)
    ids, texts, labels = _read(args, args.input)
    if args.limit is not None:
        if args.limit < 1:
            raise ValueError(f"--limit must be at least 1, got {args.limit}.")
        ids, texts = ids[:args.limit], texts[:args.limit]
        labels = None if labels is None else labels[:args.limit]
    page = clf.explain_html(texts, top_labels=args.top_labels, top_tokens=args.top_tokens,
                            ids=ids, labels=labels)
    write_html(page, args.html)
    _log(f"wrote explanations of {len(texts)} documents to {args.html}")
    return 0


# The demo corpus: a long label tail and few documents per label, where the
# paper expects planting to matter most.
_DEMO_FULL = dict(n_samples=1200, n_test=500, n_labels=40, vocab_size=3000, length=(30, 100),
                  model=dict(embed_dim=48, hidden_size=48, max_iter=5, max_length=128),
                  ltr=dict(n_factors=32, max_iter=15))
_DEMO_QUICK = dict(n_samples=240, n_test=120, n_labels=10, vocab_size=600, length=(20, 50),
                   model=dict(embed_dim=16, hidden_size=16, max_iter=1, max_length=64),
                   ltr=dict(n_factors=8, max_iter=2))


def cmd_demo(args):
    from . import LTRPretrainer, PlantClassifier
    from .datasets import make_multilabel_text
    from .metrics import macro_f1, precision_at_k

    cfg = _DEMO_QUICK if args.quick else _DEMO_FULL
    X, Y = make_multilabel_text(
        n_samples=cfg["n_samples"] + cfg["n_test"], n_labels=cfg["n_labels"],
        vocab_size=cfg["vocab_size"], length=cfg["length"], label_skew=1.2, random_state=0,
    )
    n = cfg["n_samples"]
    X_train, Y_train, X_test, Y_test = X[:n], Y[:n], X[n:], Y[n:]
    print(f"synthetic corpus: {n} training / {len(X_test)} test documents, "
          f"{cfg['n_labels']} labels (long tail), random_state=0")
    results = []
    for name, plant in (("PLANT", True), ("no planting", False)):
        clf = PlantClassifier(
            plant=plant, random_state=0, verbose=0 if args.quiet else 1,
            ltr=LTRPretrainer(**cfg["ltr"], random_state=0), **cfg["model"],
        )
        print(f"training {name} ...", flush=True)
        t0 = time.perf_counter()
        clf.fit(X_train, Y_train)
        seconds = time.perf_counter() - t0
        proba = clf.predict_proba(X_test)
        pred = clf.predict(X_test)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results.append({
                "model": name,
                "P@1": precision_at_k(Y_test, proba, k=1),
                "P@5": precision_at_k(Y_test, proba, k=5),
                "macro-F1": macro_f1(Y_test, pred, labels="present"),
                "seconds": seconds,
            })
    from .metrics import format_report

    print()
    print(format_report(results, digits=3))
    return 0


# ----------------------------------------------------------------------------
# Parser and entry point
# ----------------------------------------------------------------------------


def _add_columns(p):
    p.add_argument("--text-column", default="text", help="text key/column (default: text)")
    p.add_argument("--label-column", default="labels",
                   help="label key/column (default: labels)")
    p.add_argument("--label-sep", default=";",
                   help="separator of the labels in a CSV label column (default: ';')")
    p.add_argument("--id-column", default="id", help="document id key/column (default: id)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Extreme multi-label text classification with planted attention (PLANT).",
        epilog="Input files: JSON lines (.jsonl, .jsonl.gz) with one {\"id\", \"text\", "
               "\"labels\"} object per line, or CSV (.csv) with a text and a label column.",
    )
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's own choice)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("fit", help="train a model and save it to a directory",
                       description="Train a PlantClassifier and save it (PlantClassifier.save).")
    p.add_argument("train", metavar="TRAIN", help="training file (.jsonl[.gz] or .csv)")
    p.add_argument("--model", required=True, metavar="DIR", help="directory to save the model to")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a PlantClassifier parameter, e.g. --set max_iter=5 --set "
                        "ltr__n_factors=32 (repeatable; values are Python literals)")
    p.add_argument("--validation-file", metavar="DEV",
                   help="labelled file (never the test file) on which the calibration "
                        "and decision rule are fitted again after training, then scored")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    _add_columns(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("predict", help="predict labels as JSON lines",
                       description="Write one JSON object per document: id, the top-k labels "
                                   "and probabilities, and the thresholded labels (predicted).")
    p.add_argument("--model", required=True, metavar="DIR")
    p.add_argument("input", metavar="INPUT", help="documents (.jsonl[.gz] or .csv)")
    p.add_argument("--output", metavar="FILE", help="output file (default: stdout)")
    p.add_argument("--top-k", type=int, default=5, help="labels per document (default: 5)")
    _add_columns(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="P@k, nDCG@k, F1 and a label-frequency table",
                       description="Score a model on a labelled file.")
    p.add_argument("--model", required=True, metavar="DIR")
    p.add_argument("test", metavar="TEST", help="labelled test file")
    p.add_argument("--train", metavar="TRAIN",
                   help="training file: adds the table by label frequency in it")
    p.add_argument("--k", default="1,3,5", help="rank cut-offs (default: 1,3,5)")
    _add_columns(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("explain", help="an HTML page of evidence words per predicted label",
                       description="Write a self-contained HTML page showing, per document "
                                   "and top label, the words the attention used and those "
                                   "the planted L2R prior ranks highest.")
    p.add_argument("--model", required=True, metavar="DIR")
    p.add_argument("input", metavar="INPUT")
    p.add_argument("--html", required=True, metavar="OUT.html")
    p.add_argument("--limit", type=int, default=20, help="documents to explain (default: 20)")
    p.add_argument("--top-labels", type=int, default=5)
    p.add_argument("--top-tokens", type=int, default=10)
    _add_columns(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("demo", help="PLANT vs no planting on a synthetic corpus (~1 minute)",
                       description="Train PLANT and the no-planting control on the same "
                                   "synthetic corpus and compare them on held-out documents.")
    p.add_argument("--quick", action="store_true", help="a few seconds, tiny settings")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    p.set_defaults(func=cmd_demo)
    return parser


@contextmanager
def _cli_warnings():
    """Warnings as one plain line each; torch's internal noise filtered."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{_PROG}: warning: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
        yield


def main(argv=None):
    """Run the command line; return the exit status (0 ok, 2 user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    old_threads = None
    try:
        with _cli_warnings():
            if args.threads is not None:
                import torch

                if args.threads < 1:
                    raise ValueError(f"--threads must be at least 1, got {args.threads}.")
                old_threads = torch.get_num_threads()
                torch.set_num_threads(args.threads)
            return args.func(args)
    except (UserError, ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
            PermissionError) as exc:
        print(f"{_PROG} {args.command}: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`plantlearn predict ... | head`): stop quietly, and point
        # stdout at /dev/null so that the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        if old_threads is not None:
            import torch

            torch.set_num_threads(old_threads)
