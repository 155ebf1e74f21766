"""Saving and loading PlantClassifier models, and the checkpoint directory of a fit.

A saved model is a directory of plain files that load nothing executable:

- ``params.json``: the format version, the hyperparameters, the label names, the fitted
  scalars (epochs, history, times, the head's weight), the sizes the network is built from;
- ``weights.pt``: the network's state dict, read with ``torch.load(weights_only=True)``;
- ``tokenizer.json``: the fitted tokenizer;
- ``arrays.npz``: every fitted array (stage 1's statistics and factors, the validation
  carve, the head's margin thresholds, the decision rule), read with
  ``numpy.load(allow_pickle=False)``.

:func:`save_model` writes under a temporary name and renames it into place, and refuses,
before writing anything, a path whose existing content is not a saved model. A checkpoint
directory (:class:`CheckpointDirectory`) holds the same files for the state before
training (``prepared/``), the training state of the last epoch (``training.pt``) and a
fingerprint of the fit's parameters and data, so that a fit resumes only its own checkpoint.
"""

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from ._decision import DecisionRule
from ._ltr_pretrainer import LTRPretrainer
from ._mi_initializer import MIInitializer
from ._nn import NETWORK_PARAMS, build_plant_net
from ._pretrained import (
    BACKBONE_FILES, PretrainedEncoder, PretrainedTokenizer, backbone_fingerprint,
    check_model_directory,
)
from ._tokenize import TextTokenizer

__all__ = ["save_model", "load_model", "json_params", "CheckpointDirectory", "FORMAT_VERSION"]

#: 4: calibrated decision rule, stage 1 and the carve saved (arrays.npz); 3: the head's
#: per-label bias; 2: head over tf-idf values (idf saved).
FORMAT_VERSION = 4
_READABLE_VERSIONS = (2, 3, FORMAT_VERSION)
PARAMS_FILE = "params.json"
WEIGHTS_FILE = "weights.pt"
TOKENIZER_FILE = "tokenizer.json"
ARRAYS_FILE = "arrays.npz"
#: A copy of a pretrained encoder's model directory (``save(include_backbone=True)``).
BACKBONE_DIR = "backbone"
#: Every file a saved model directory may hold: save() replaces a directory only when it
#: holds nothing else, so that a user's own files are never deleted.
MODEL_FILES = frozenset({PARAMS_FILE, WEIGHTS_FILE, TOKENIZER_FILE, ARRAYS_FILE, BACKBONE_DIR})
_REQUIRED = {2: (PARAMS_FILE, WEIGHTS_FILE, TOKENIZER_FILE),
             3: (PARAMS_FILE, WEIGHTS_FILE, TOKENIZER_FILE),
             4: (PARAMS_FILE, WEIGHTS_FILE, TOKENIZER_FILE, ARRAYS_FILE)}
_STAGE_CLASSES = {"MIInitializer": MIInitializer, "LTRPretrainer": LTRPretrainer,
                  "PretrainedEncoder": PretrainedEncoder}
#: Parameters that change neither the fitted model nor its checkpoint's validity.
_NOT_FINGERPRINTED = ("verbose", "checkpoint_dir", "callbacks", "warm_start", "n_jobs")


def _version():
    from . import __version__

    return __version__


# ----------------------------------------------------------------------------
# Parameters as JSON
# ----------------------------------------------------------------------------


def _json_value(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def json_params(est):
    """``est.get_params(deep=False)`` as JSON-ready values (stage-1 steps as class + params)."""
    params = est.get_params(deep=False)
    if isinstance(params["encoder"], torch.nn.Module):
        raise ValueError(
            "save() cannot store a custom encoder module as JSON; pickle the model "
            "(joblib.dump) instead.")
    for name in ("mi", "ltr"):
        step = params[name]
        params[name] = None if step is None else _step_spec(step)
    if isinstance(params["encoder"], PretrainedEncoder):
        params["encoder"] = _step_spec(params["encoder"])
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None
    params["callbacks"] = None  # code: never saved (pass them again to a loaded model)
    if params["classes"] is not None:
        params["classes"] = [_json_value(c) for c in np.asarray(params["classes"]).tolist()]
    return {k: _json_value(v) for k, v in params.items()}


def _step_spec(step):
    spec = {"class": type(step).__name__, "params": step.get_params(deep=False)}
    if spec["params"].get("mi") is not None:
        spec["params"]["mi"] = None  # a nested stage is carried by the outer one
    spec["params"] = {k: _json_value(v) for k, v in spec["params"].items()}
    return spec


def _step_from_spec(spec):
    if spec is None:
        return None
    return _STAGE_CLASSES[spec["class"]](**spec["params"])


def _upgrade_params(params, version):
    """Parameters of an older format, mapped onto this version's."""
    params = dict(params)
    if version < 4:
        head = params.get("evidence_head", True)
        params["evidence_head"] = bool(head)  # the trained head modes predict like the frozen
        if params.get("evidence_pairs") == "auto":
            params["evidence_pairs"] = ("mi+cooccurrence" if params.get("plant", True)
                                        else "cooccurrence")
        params.pop("evidence_learning_rate", None)
        if isinstance(params.get("threshold"), str):
            params["threshold"] = "auto"
    return params


# ----------------------------------------------------------------------------
# Fitted arrays
# ----------------------------------------------------------------------------


def _put_sparse(arrays, prefix, M):
    M = sp.csr_matrix(M)
    arrays[f"{prefix}.data"], arrays[f"{prefix}.indices"] = M.data, M.indices
    arrays[f"{prefix}.indptr"], arrays[f"{prefix}.shape"] = M.indptr, np.asarray(M.shape)


def _get_sparse(arrays, prefix):
    return sp.csr_matrix((arrays[f"{prefix}.data"], arrays[f"{prefix}.indices"],
                          arrays[f"{prefix}.indptr"]), shape=tuple(arrays[f"{prefix}.shape"]))


_MI_ARRAYS = ("token_document_frequency_", "label_document_frequency_", "empty_labels_")
_LTR_ARRAYS = ("token_factors_", "label_factors_", "token_bias_", "label_bias_")
_LTR_SCALARS = ("n_iter_", "loss_curve_", "validation_scores_", "best_validation_score_",
                "untrained_validation_score_", "random_seed_")


def _stage_one_state(mi, ltr, arrays):
    """Put the fitted stage-1 steps' arrays into ``arrays``; return their JSON part."""
    meta = {"mi": None, "ltr": None}
    if mi is not None:
        _put_sparse(arrays, "mi.mi", mi.mi_)
        _put_sparse(arrays, "mi.grades", mi.grades_)
        for name in _MI_ARRAYS:
            arrays[f"mi.{name}"] = np.asarray(getattr(mi, name))
        meta["mi"] = {**_step_spec(mi), "n_documents_": int(mi.n_documents_),
                      "tokenize_time_": float(getattr(mi, "tokenize_time_", 0.0)),
                      "mi_time_": float(getattr(mi, "mi_time_", 0.0))}
    if ltr is not None:
        for name in _LTR_ARRAYS:
            arrays[f"ltr.{name}"] = np.asarray(getattr(ltr, name))
        if ltr.validation_lists_ is not None:
            for i, part in enumerate(ltr.validation_lists_):
                arrays[f"ltr.validation_lists_.{i}"] = np.asarray(part)
        meta["ltr"] = {**_step_spec(ltr), **{
            name: _json_value(getattr(ltr, name)) for name in _LTR_SCALARS}}
        meta["ltr"]["loss_curve_"] = [float(v) for v in ltr.loss_curve_]
        meta["ltr"]["validation_scores_"] = [float(v) for v in ltr.validation_scores_]
    return meta


def _stage_one_from(meta, arrays, tokenizer, classes):
    mi = ltr = None
    if meta.get("mi") is not None:
        spec = meta["mi"]
        mi = _step_from_spec(spec)
        mi.tokenizer_ = tokenizer
        mi.vocabulary_ = tokenizer.get_vocabulary()
        mi.mi_ = _get_sparse(arrays, "mi.mi")
        mi.grades_ = _get_sparse(arrays, "mi.grades")
        for name in _MI_ARRAYS:
            setattr(mi, name, arrays[f"mi.{name}"])
        mi.classes_ = classes
        mi.n_documents_ = spec["n_documents_"]
        mi.tokenize_time_, mi.mi_time_ = spec["tokenize_time_"], spec["mi_time_"]
    if meta.get("ltr") is not None:
        spec = meta["ltr"]
        ltr = _step_from_spec(spec)
        for name in _LTR_ARRAYS:
            setattr(ltr, name, arrays[f"ltr.{name}"])
        for name in _LTR_SCALARS:
            setattr(ltr, name, spec[name])
        parts = [arrays.get(f"ltr.validation_lists_.{i}") for i in range(4)]
        ltr.validation_lists_ = None if parts[0] is None else tuple(parts)
        ltr.mi_ = mi
        ltr.classes_ = classes
    return mi, ltr


# ----------------------------------------------------------------------------
# Writing and reading a state directory
# ----------------------------------------------------------------------------


def _classes_json(classes):
    classes = np.asarray(classes)
    kind = "int" if classes.dtype.kind in "iu" else "str" if classes.dtype.kind == "U" else "object"
    return {"values": [_json_value(c) for c in classes.tolist()], "kind": kind}


def _classes_from(spec):
    if isinstance(spec, list):  # formats 2-3
        return np.asarray(spec)
    if spec["kind"] == "object":
        return np.array(spec["values"], dtype=object)
    return np.asarray(spec["values"], dtype=np.int64 if spec["kind"] == "int" else None)


def _write_state(directory, meta, net, tokenizer, arrays):
    directory = Path(directory)
    (directory / PARAMS_FILE).write_text(json.dumps(meta, indent=1))
    (directory / TOKENIZER_FILE).write_text(tokenizer.to_json())
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()},
               directory / WEIGHTS_FILE)
    with open(directory / ARRAYS_FILE, "wb") as fh:
        np.savez(fh, **arrays)


def _net_meta(net):
    return {"vocab_size": int(net.vocab_size),
            "n_labels": int(net.attention.queries.shape[0]),
            "key_dim": int(net.attention.key_dim)}


def _fitted_parts(est_state):
    """(meta, arrays) of the fitted state shared by models and checkpoints."""
    arrays = {}
    meta = {"stage_one": _stage_one_state(est_state["mi_"], est_state["ltr_"], arrays),
            "classes": _classes_json(est_state["classes_"]),
            "target_format": est_state["target_format_"],
            "network": _net_meta(est_state["net_"])}
    arrays["validation_indices"] = np.asarray(est_state["validation_indices_"], dtype=np.int64)
    if est_state.get("evidence_thresholds_") is not None:
        arrays["evidence_thresholds"] = np.asarray(est_state["evidence_thresholds_"])
    return meta, arrays


def check_save_target(path):
    """Refuse, before writing anything, a save that would destroy something not a model."""
    if path.is_symlink():
        raise ValueError(f"cannot save a model to {path}: it is a symbolic link.")
    for parent in path.resolve().parents:
        if _is_model_directory(parent):
            raise ValueError(
                f"cannot save a model to {path}: it lies inside the saved model {parent}, "
                f"which would be broken; choose a path outside it.")
    if not path.exists():
        return
    if not path.is_dir():
        raise ValueError(
            f"cannot save a model to {path}: a file of that name exists, and save() writes "
            f"a directory; it never replaces other files. Choose another path.")
    entries = sorted(entry.name for entry in path.iterdir())
    if not entries:
        return
    if not _is_model_directory(path) or not set(entries) <= MODEL_FILES:
        other = [name for name in entries if name not in MODEL_FILES] or entries
        raise ValueError(
            f"cannot save a model to {path}: the directory exists and is not a plantlearn "
            f"model (it holds {', '.join(other[:5])}{', ...' if len(other) > 5 else ''}); "
            f"save() only replaces a saved model or an empty directory.")


def _is_model_directory(path):
    """True when ``path`` is a directory written by ``PlantClassifier.save``."""
    try:
        meta = json.loads((path / PARAMS_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "format_version" in meta and "plantlearn_version" in meta


def _replace_atomically(tmp, path):
    """Move the complete directory ``tmp`` to ``path``, putting back what was there on error."""
    if not path.exists():
        os.replace(tmp, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
    os.replace(path, old / "model")
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old / "model", path)  # put the previous model back
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _backbone_meta(encoder):
    """Where a pretrained encoder's model lives, and its fingerprint (checked on load)."""
    directory = check_model_directory(encoder.path)
    return {"path": os.fspath(directory), "fingerprint": backbone_fingerprint(directory)}


def _copy_backbone(source, target):
    """Copy the files plantlearn reads from a model directory (configuration, tokenizer,
    safetensors weights; never code) to ``target``."""
    target.mkdir()
    source = Path(source)
    for file in [*(source / name for name in BACKBONE_FILES),
                 *sorted(source.glob("*.safetensors"))]:
        shutil.copyfile(file, target / file.name)


def save_model(est, path, *, include_backbone=False):
    """Write a fitted PlantClassifier to the directory ``path`` (see the module docstring)."""
    path = Path(path)
    state = est.__dict__
    encoder = est.get_params(deep=False)["encoder"]
    if include_backbone and not isinstance(encoder, PretrainedEncoder):
        raise ValueError("include_backbone=True needs a model with a PretrainedEncoder.")
    meta, arrays = _fitted_parts(state)
    for key, value in state["decision_rule_"].to_arrays().items():
        arrays[f"decision.{key}"] = value
    meta.update({
        "format_version": FORMAT_VERSION,
        "plantlearn_version": _version(),
        "params": json_params(est),
        "evidence_scale": float(state["evidence_scale_"]),
        "shortlist_size": int(state.get("shortlist_size_", 0)),
        "n_iter": int(state["n_iter_"]),
        "best_iteration": state.get("best_iteration_"),
        "history": state.get("history_", []),
        "fit_time": state.get("fit_time_", {}),
    })
    if isinstance(encoder, PretrainedEncoder):
        source = Path(encoder.path).resolve()
        if source.name == BACKBONE_DIR and _is_model_directory(source.parent):
            # Loaded with its own copy of the backbone: saved with it again, since replacing
            # that model (or deleting it later) would delete the backbone it refers to.
            include_backbone = True
        meta["backbone"] = {**_backbone_meta(encoder), "included": bool(include_backbone)}
    check_save_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        _write_state(tmp, meta, state["net_"], state["tokenizer_"], arrays)
        if include_backbone:
            _copy_backbone(meta["backbone"]["path"], tmp / BACKBONE_DIR)
        _replace_atomically(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# ----------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------


def _read_meta(path):
    if not path.is_dir():
        raise FileNotFoundError(f"no saved PlantClassifier at {path} (expected a directory).")
    if not (path / PARAMS_FILE).is_file():
        raise ValueError(f"{path} is not a complete PlantClassifier model: {PARAMS_FILE} is "
                         f"missing.")
    try:
        meta = json.loads((path / PARAMS_FILE).read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path / PARAMS_FILE} is corrupt: {exc}") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version not in _READABLE_VERSIONS:
        raise ValueError(
            f"{path} has model format version {version!r}; this plantlearn reads versions "
            f"{', '.join(map(str, _READABLE_VERSIONS))}.")
    for name in _REQUIRED[version]:
        if not (path / name).is_file():
            raise ValueError(f"{path} is not a complete PlantClassifier model: {name} is "
                             f"missing.")
    return meta, version


def _read_tokenizer(path):
    try:
        text = (path / TOKENIZER_FILE).read_bytes().decode("utf-8")
        if PretrainedTokenizer.is_json(text):
            return PretrainedTokenizer.from_json(text)
        return TextTokenizer.from_json(text)
    except Exception as exc:
        raise ValueError(f"{path / TOKENIZER_FILE} is not a valid tokenizer file "
                         f"({type(exc).__name__}: {str(exc)[:200]}).") from None


def _read_weights(path):
    try:
        return torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch's own message advises weights_only=False, which would run code from an
        # untrusted file: say what is wrong instead.
        kind = "truncated or corrupt" if isinstance(exc, (RuntimeError, EOFError,
                                                          zipfile.BadZipFile)) else "unreadable"
        raise ValueError(f"{path / WEIGHTS_FILE} is not a plantlearn weights file ({kind}; "
                         f"it was not loaded). Save the model again.") from None


def _read_arrays(path):
    file = path / ARRAYS_FILE
    if not file.is_file():
        return {}
    try:
        with np.load(file, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as exc:
        raise ValueError(f"{file} is not a valid plantlearn arrays file ({type(exc).__name__}; "
                         f"truncated or corrupt).") from None


def _build_network(est, meta_net, state):
    params = est.get_params(deep=False)
    net = build_plant_net(meta_net["vocab_size"], meta_net["n_labels"], meta_net["key_dim"],
                          **{name: params[name] for name in NETWORK_PARAMS})
    att = net.attention
    # Static-score buffers are empty until planted: size them from the file.
    for buf in ("static_token_factors", "static_token_bias", "static_label_factors"):
        key = f"attention.{buf}"
        if key in state:
            setattr(att, buf, torch.zeros_like(state[key]))
    state.setdefault("evidence.bias", torch.zeros(meta_net["n_labels"]))  # format 2
    if state.get("evidence.weight") is not None and state["evidence.weight"].numel():
        net.evidence.set_pairs(state["evidence.pair_label"], state["evidence.token_ptr"],
                               state["evidence.idf"])
    net.load_state_dict(state)
    return net


def _pretrained_encoder(path, meta, spec):
    """The PretrainedEncoder of a saved model: its copy of the backbone when it holds one,
    else the directory it was fitted with, which must still hold the same model."""
    encoder = _step_from_spec(spec)
    info = meta.get("backbone")
    if (path / BACKBONE_DIR).is_dir():
        encoder.set_params(path=os.fspath((path / BACKBONE_DIR).resolve()))
    elif info is None:  # a checkpoint's prepared state: the estimator's own directory
        return encoder
    directory = Path(encoder.path)
    if not directory.is_dir():
        raise ValueError(
            f"the model in {path} reads the pretrained encoder in {directory}, which does not "
            f"exist any more; put it back, or save the model with include_backbone=True.")
    if info is not None and backbone_fingerprint(check_model_directory(directory)) \
            != info["fingerprint"]:
        raise ValueError(
            f"the pretrained encoder in {directory} is not the one the model in {path} was "
            f"fitted with (its configuration or weights changed); the model would predict "
            f"differently. Restore it, or save models with include_backbone=True.")
    return encoder


def _read_state(path, cls, *, device="auto"):
    """(estimator with parameters, meta, version, fitted-attribute dict) of a state directory."""
    path = Path(path)
    meta, version = _read_meta(path)
    tokenizer = _read_tokenizer(path)
    weights = _read_weights(path)
    arrays = _read_arrays(path)
    try:
        params = _upgrade_params(meta["params"], version)
        for name in ("mi", "ltr"):
            params[name] = _step_from_spec(params.get(name))
        if isinstance(params.get("encoder"), dict):
            params["encoder"] = _pretrained_encoder(path, meta, params["encoder"])
        params["device"] = device
        est = cls(**params)
        classes = _classes_from(meta["classes"])
        if version < 4:
            net_meta = {k: meta[k] for k in ("vocab_size", "n_labels", "key_dim")}
            mi = ltr = None
            target_format = meta["target_kind"]
        else:
            net_meta = meta["network"]
            mi, ltr = _stage_one_from(meta["stage_one"], arrays, tokenizer, classes)
            target_format = meta["target_format"]
        net = _build_network(est, net_meta, weights)
        state = {
            "classes_": classes, "target_format_": target_format, "tokenizer_": tokenizer,
            "mi_": mi, "ltr_": ltr, "net_": net,
            "validation_indices_": arrays.get("validation_indices", np.zeros(0, np.int64)),
            "evidence_thresholds_": arrays.get("evidence_thresholds"),
        }
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"could not load the model in {path}: {type(exc).__name__}: "
                         f"{str(exc)[:300]}") from None
    return est, meta, version, arrays, state


def load_model(cls, path, *, device="auto"):
    """Read a model directory written by :func:`save_model` (formats 2 to 4)."""
    est, meta, version, arrays, state = _read_state(path, cls, device=device)
    try:
        if version < 4:
            rule = DecisionRule.legacy(meta["threshold"], state["classes_"].size)
            history = []
        else:
            rule = DecisionRule.from_arrays(
                {k[len("decision."):]: v for k, v in arrays.items() if k.startswith("decision.")})
            history = meta.get("history", [])
    except Exception as exc:
        raise ValueError(f"could not load the decision rule of {path}: {type(exc).__name__}: "
                         f"{str(exc)[:300]}") from None
    net = state["net_"]
    net.shortlist_size = int(meta.get("shortlist_size", 0))
    state.update({
        "shortlist_size_": net.shortlist_size,
        "evidence_scale_": float(net.evidence.scale) if net.evidence.n_pairs else 0.0,
        "decision_rule_": rule,
        "n_iter_": int(meta.get("n_iter", 0)),
        "best_iteration_": meta.get("best_iteration"),
        "history_": history,
        "fit_time_": meta.get("fit_time", {}),
    })
    est.__dict__.update(state)
    return est


# ----------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------


def fit_fingerprint(params, texts, Y, classes):
    """A digest of what determines a fit: its parameters, documents, labels and names."""
    h = hashlib.sha256()
    kept = {k: v for k, v in params.items() if k not in _NOT_FINGERPRINTED}
    h.update(json.dumps(kept, sort_keys=True, default=str).encode())
    for text in texts:
        h.update(text.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    Y = sp.csr_matrix(Y)
    h.update(np.asarray(Y.shape, np.int64).tobytes())
    h.update(Y.indptr.astype(np.int64).tobytes())
    h.update(Y.indices.astype(np.int64).tobytes())
    h.update(json.dumps(_classes_json(classes)["values"], default=str).encode())
    return h.hexdigest()


class CheckpointDirectory:
    """The checkpoint directory of one fit (``PlantClassifier(checkpoint_dir=...)``).

    Holds ``fingerprint.json`` (what fit it belongs to), ``prepared/`` (stage 1, the planted
    network with its fitted head, and the carve: written once, before training) and
    ``training.pt`` (the training state after the last completed epoch, written by the
    ``Checkpoint`` callback).
    """

    FINGERPRINT_FILE = "fingerprint.json"

    def __init__(self, path, fingerprint, estimator):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.estimator = estimator

    @property
    def training_file(self):
        return self.path / "training.pt"

    @property
    def prepared_dir(self):
        return self.path / "prepared"

    @classmethod
    def open(cls, path, *, params, texts, Y, classes, estimator):
        """The checkpoint directory for this fit: created when missing or empty, reused
        when it belongs to the same fit, an error when it belongs to another."""
        path = Path(path)
        fingerprint = fit_fingerprint(params, texts, Y, classes)
        if path.exists() and not path.is_dir():
            raise ValueError(f"checkpoint_dir {path} is a file, not a directory.")
        marker = path / cls.FINGERPRINT_FILE
        if path.is_dir() and any(path.iterdir()):
            try:
                stored = json.loads(marker.read_text())["fingerprint"]
            except (OSError, ValueError, KeyError, TypeError):
                raise ValueError(
                    f"checkpoint_dir {path} is not empty and holds no plantlearn checkpoint; "
                    f"choose an empty or new directory.") from None
            if stored != fingerprint:
                raise ValueError(
                    f"checkpoint_dir {path} holds the checkpoint of another fit (other "
                    f"parameters or data); delete it or choose another directory to start "
                    f"this fit afresh.")
        else:
            path.mkdir(parents=True, exist_ok=True)
            tmp = path / f".{cls.FINGERPRINT_FILE}.tmp"
            tmp.write_text(json.dumps({"fingerprint": fingerprint,
                                       "plantlearn_version": _version()}))
            os.replace(tmp, marker)
        return cls(path, fingerprint, estimator)

    def save_prepared(self, prepared):
        state = {"mi_": prepared.mi, "ltr_": prepared.ltr, "net_": prepared.net,
                 "classes_": prepared.mi.classes_, "target_format_": "sparse",
                 "validation_indices_": prepared.val_rows,
                 "evidence_thresholds_": prepared.evidence_thresholds}
        meta, arrays = _fitted_parts(state)
        arrays["train_indices"] = prepared.train_rows
        meta.update({"format_version": FORMAT_VERSION, "plantlearn_version": _version(),
                     "params": json_params(self.estimator)})
        tmp = Path(tempfile.mkdtemp(prefix=".prepared.", dir=self.path))
        try:
            _write_state(tmp, meta, prepared.net, prepared.tokenizer, arrays)
            if self.prepared_dir.exists():
                shutil.rmtree(self.prepared_dir)
            os.replace(tmp, self.prepared_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def load_prepared(self):
        """The prepared state saved by an earlier run of this fit, or None."""
        if not (self.prepared_dir / PARAMS_FILE).is_file():
            return None
        from ._classifier import _Prepared

        try:
            _, _, _, arrays, state = _read_state(self.prepared_dir, type(self.estimator))
        except (ValueError, FileNotFoundError) as exc:
            raise ValueError(f"the checkpoint in {self.path} is damaged ({exc}); delete the "
                             f"directory to start the fit afresh.") from None
        net = state["net_"]
        # The estimator's own parameters (device, encoder module) build the network.
        return _Prepared(state["mi_"], state["ltr_"], state["tokenizer_"], net,
                         arrays["train_indices"],
                         state["validation_indices_"], state["evidence_thresholds_"])
