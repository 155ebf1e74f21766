"""Pretrained Hugging Face encoders: planted attention on a transformer backbone (issue 25).

Three pieces, each usable on its own:

- :class:`PretrainedTokenizer`: the backbone's own subword tokenizer (its ``tokenizer.json``,
  read by the ``tokenizers`` package), with plantlearn's id contract (0 padding, 1 unknown),
  so that stage 1 ranks the backbone's vocabulary and planting maps one-to-one onto the
  positions the backbone encodes;
- :class:`BackboneEncoder`: the torch module that runs the backbone over one chunk of ids at a
  time, frozen (hidden states computed once and cached) or trained;
- :class:`PretrainedEncoder`: what a user passes as ``PlantClassifier(encoder=...)``: the model
  directory and the training mode, a plain parameter object that clones, compares and saves
  as JSON.

Loading is local and inert: ``transformers`` reads the directory given and nothing else
(``local_files_only``), never runs code shipped with a model (``trust_remote_code=False``),
and reads weights from safetensors files only (pickled ``.bin`` weights can execute code).
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from sklearn.base import BaseEstimator

__all__ = ["PretrainedEncoder", "PretrainedTokenizer", "BackboneEncoder", "check_model_directory",
           "backbone_fingerprint", "BACKBONE_FILES"]

_PAD_ID, _UNK_ID = 0, 1
#: plantlearn id = backbone id + _OFFSET (ids 0 and 1 are plantlearn's padding and unknown).
_OFFSET = 2
_FORMAT = "plantlearn.PretrainedTokenizer"
_FORMAT_VERSION = 1
#: The files of a model directory that plantlearn reads (and copies when a model is saved with
#: its backbone): configuration, tokenizer, safetensors weights. Nothing executable.
BACKBONE_FILES = ("config.json", "tokenizer.json")
MODES = ("frozen", "finetune", "lora")
#: Largest share of memory the frozen backbone's cache of hidden states may take (bytes);
#: beyond it new states are computed each time instead of kept.
CACHE_LIMIT_BYTES = 8 * 1024**3
_DEFAULT_LEARNING_RATE = {"frozen": None, "finetune": 2e-5, "lora": 5e-4}


def _require_transformers():
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise ImportError(
            "a pretrained encoder needs the `transformers` package: "
            "pip install 'plantlearn[hf]'") from None
    return transformers


def _weight_files(path):
    return sorted(p for p in path.iterdir() if p.suffix == ".safetensors")


def check_model_directory(path):
    """The resolved ``Path`` of a usable local model directory, or a clear error.

    A usable directory holds ``config.json``, ``tokenizer.json`` and safetensors weights, and
    its configuration does not ask for code shipped with the model (``auto_map``).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"the pretrained model must be given as a directory path, got "
                        f"{type(path).__name__}.")
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"no pretrained model directory at {path} (plantlearn loads local models only, "
            f"never from the network).")
    missing = [name for name in BACKBONE_FILES if not (path / name).is_file()]
    if missing:
        raise ValueError(f"{path} is not a usable pretrained model directory: "
                         f"{', '.join(missing)} missing.")
    if not _weight_files(path):
        other = [p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        hint = (f" (it holds {', '.join(other)}: pickled weights, which can run code when "
                f"loaded; convert them to safetensors)") if other else ""
        raise ValueError(f"{path} holds no .safetensors weights{hint}.")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path / 'config.json'} is corrupt: {exc}") from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise ValueError(f"{path / 'config.json'} has no model_type: not a transformers model.")
    if config.get("auto_map"):
        raise ValueError(f"{path} needs code shipped with the model (auto_map in config.json); "
                         f"plantlearn never runs such code. Use a model transformers supports.")
    return path.resolve()


def backbone_fingerprint(path):
    """SHA-256 over the configuration and weight files: a saved model that refers to a
    backbone directory checks, when loaded, that the directory still holds the same model."""
    digest = hashlib.sha256()
    for file in [path / "config.json", *_weight_files(path)]:
        digest.update(file.name.encode())
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------
# The backbone's tokenizer with plantlearn's id contract
# ----------------------------------------------------------------------------


def _check_texts(texts):
    if isinstance(texts, str):
        raise TypeError("expected a list of texts, got a single string.")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts must be str; element {i} is {type(text).__name__}.")
    return texts


def _special_ids(hf):
    """The ids the backbone's own template puts before and after a text ([CLS] / [SEP] for
    BERT, <s> / </s> for RoBERTa), found by encoding one word with and without them."""
    plain = hf.encode("a", add_special_tokens=False).ids
    full = hf.encode("a", add_special_tokens=True).ids
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start], full[start + len(plain):]
    return [], []


class PretrainedTokenizer:
    """A backbone's ``tokenizer.json`` behind :class:`~plantlearn._tokenize.TextTokenizer`'s
    interface.

    Ids are the backbone's plus 2: 0 is padding and 1 the unknown token (the backbone's own
    unknown token maps to 1), so that every plantlearn component (MI, L2R, the evidence head,
    the attention) reads them unchanged; :meth:`to_backbone_ids` maps them back. No
    vocabulary is learnt: :meth:`fit` only checks its input. The backbone's truncation and
    padding settings are switched off (documents are cut into chunks by plantlearn).

    Parameters
    ----------
    path : str or path-like
        A model directory holding ``tokenizer.json``, or that file itself.
    """

    def __init__(self, path):
        self.path = path

    def fit(self, texts, y=None):
        from tokenizers import Tokenizer

        path = Path(self.path).expanduser()
        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(f"no tokenizer.json at {path}.")
        try:
            hf = Tokenizer.from_file(str(file))
        except Exception as exc:
            raise ValueError(f"{file} is not a valid tokenizer file ({type(exc).__name__}: "
                             f"{str(exc)[:200]}).") from None
        if texts is not None and not _check_texts(texts):
            raise ValueError("no texts to tokenize.")
        self._set_fitted(hf)
        return self

    def _set_fitted(self, hf):
        hf.no_truncation()
        hf.no_padding()
        self.tokenizer_ = hf
        model = json.loads(hf.to_str())["model"]
        unk = model.get("unk_token")
        self._backbone_unk = hf.token_to_id(unk) if unk is not None else None
        self.prefix_ids_, self.suffix_ids_ = _special_ids(hf)

    def _check_fitted(self):
        if getattr(self, "tokenizer_", None) is None:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("This PretrainedTokenizer is not fitted yet.")

    def __sklearn_is_fitted__(self):
        return getattr(self, "tokenizer_", None) is not None

    # --------------------------------------------------------------- vocabulary

    @property
    def vocab_size(self):
        self._check_fitted()
        return self.tokenizer_.get_vocab_size(with_added_tokens=True) + _OFFSET

    def get_vocabulary(self):
        self._check_fitted()
        vocab = {tok: i + _OFFSET for tok, i in
                 self.tokenizer_.get_vocab(with_added_tokens=True).items()}
        vocab.update({"[PAD]": _PAD_ID, "[UNK]": _UNK_ID})  # plantlearn's, not the backbone's
        return vocab

    def id_to_token(self, i):
        self._check_fitted()
        if not 0 <= int(i) < self.vocab_size:
            raise IndexError(f"id {i} is out of range for a vocabulary of {self.vocab_size}")
        if i < _OFFSET:
            return ("[PAD]", "[UNK]")[int(i)]
        return self.tokenizer_.id_to_token(int(i) - _OFFSET)

    def token_to_id(self, token):
        self._check_fitted()
        i = self.tokenizer_.token_to_id(token)
        return None if i is None else self._map(np.asarray([i]))[0].item()

    # ----------------------------------------------------------------- encoding

    def _map(self, ids):
        out = ids.astype(np.int32) + _OFFSET
        if self._backbone_unk is not None:
            out[ids == self._backbone_unk] = _UNK_ID
        return out

    def to_backbone_ids(self, ids, pad_id=0):
        """plantlearn ids (a tensor) back to the backbone's: padding to ``pad_id``."""
        back = ids - _OFFSET
        unk = self._backbone_unk if self._backbone_unk is not None else pad_id
        back = torch.where(ids == _UNK_ID, torch.full_like(ids, unk), back)
        return torch.where(ids == _PAD_ID, torch.full_like(ids, pad_id), back)

    def _encode_arrays(self, texts):
        from ._tokenize import _install_fork_guard

        self._check_fitted()
        texts = _check_texts(texts)
        _install_fork_guard()  # as TextTokenizer: old tokenizers releases and fork
        out = []
        for start in range(0, len(texts), 256):
            for enc in self.tokenizer_.encode_batch(texts[start:start + 256],
                                                    add_special_tokens=False):
                out.append(self._map(np.asarray(enc.ids, dtype=np.int64)))
        return out

    def encode(self, texts, *, max_length=None):
        out = self._encode_arrays(texts)
        return out if max_length is None else [ids[:max_length] for ids in out]

    def encode_chunks(self, texts, *, max_length, max_chunks=None):
        limit = None if max_chunks is None else max_length * max_chunks
        return [[ids[s:s + max_length] for s in range(0, len(ids[:limit]), max_length)]
                for ids in self._encode_arrays(texts)]

    def tokenize(self, text):
        self._check_fitted()
        enc = self.tokenizer_.encode(text, add_special_tokens=False)
        return list(enc.tokens)

    def encode_with_offsets(self, text):
        self._check_fitted()
        enc = self.tokenizer_.encode(text, add_special_tokens=False)
        return self._map(np.asarray(enc.ids, dtype=np.int64)), list(enc.offsets)

    # ------------------------------------------------------------ serialisation

    def to_json(self):
        """The backbone's tokenizer itself is stored: a saved model tokenizes without the
        backbone directory."""
        self._check_fitted()
        return json.dumps({"format": _FORMAT, "format_version": _FORMAT_VERSION,
                           "path": os.fspath(self.path),
                           "hf_tokenizer": json.loads(self.tokenizer_.to_str())},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, s):
        from tokenizers import Tokenizer

        data = json.loads(s)
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError("not a PretrainedTokenizer JSON string (wrong format tag)")
        obj = cls(data["path"])
        obj._set_fitted(Tokenizer.from_str(json.dumps(data["hf_tokenizer"])))
        return obj

    @staticmethod
    def is_json(s):
        try:
            return json.loads(s).get("format") == _FORMAT
        except (ValueError, AttributeError):
            return False

    def __getstate__(self):
        return {"json": self.to_json()} if self.__sklearn_is_fitted__() else {"path": self.path}

    def __setstate__(self, state):
        if "json" in state:
            self.__dict__.update(type(self).from_json(state["json"]).__dict__)
        else:
            self.path = state["path"]


# ----------------------------------------------------------------------------
# The torch module
# ----------------------------------------------------------------------------


def load_backbone(path):
    """The transformers model in ``path`` (local files only, no remote code, safetensors)."""
    transformers = _require_transformers()
    path = check_model_directory(path)
    logging = transformers.utils.logging
    bar = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()  # a per-tensor progress bar on every load and refit
    try:
        return transformers.AutoModel.from_pretrained(
            str(path), local_files_only=True, trust_remote_code=False, use_safetensors=True)
    except Exception as exc:
        raise ValueError(f"could not load the pretrained model in {path}: "
                         f"{type(exc).__name__}: {str(exc)[:300]}") from None
    finally:
        if bar:
            logging.enable_progress_bar()


class BackboneEncoder(nn.Module):
    """A pretrained transformer as PlantNet's encoder: token ids (n, T) -> states (n, T, D).

    Every chunk is read as the backbone was trained to read a text: its own prefix and suffix
    tokens ([CLS] ... [SEP]) around the chunk's ids; their states are dropped, so the
    attention sees exactly one state per plantlearn position.

    ``mode="frozen"``: the backbone is not part of the module's parameters or state dict
    (it is read again from its directory when a model is loaded); it stays in eval mode and
    each chunk's hidden states are computed once and kept (as float16, on the CPU) while
    :attr:`caching` is on, so that training the attention over many epochs costs one pass
    of the backbone. ``"finetune"``: the backbone's weights train with the rest (at their own
    ``learning_rate``). ``"lora"``: low-rank adapters on every linear layer (``peft``), the
    backbone's weights themselves frozen.
    """

    reads_token_ids = True

    def __init__(self, backbone, tokenizer, *, mode="frozen", learning_rate=None, lora_rank=8):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
        self.mode = mode
        self.learning_rate = learning_rate
        config = backbone.config
        self.output_dim = int(config.hidden_size)
        self.pad_id = int(config.pad_token_id if config.pad_token_id is not None else 0)
        self.max_positions = int(getattr(config, "max_position_embeddings", 512))
        self._tokenizer = tokenizer
        self.register_buffer("prefix_ids", torch.as_tensor(tokenizer.prefix_ids_,
                                                           dtype=torch.long), persistent=False)
        self.register_buffer("suffix_ids", torch.as_tensor(tokenizer.suffix_ids_,
                                                           dtype=torch.long), persistent=False)
        if mode == "frozen":
            backbone.eval()
            backbone.requires_grad_(False)
            # Held outside the module tree: not a parameter, not in the state dict.
            self._frozen = [backbone]
        else:
            if mode == "lora":
                backbone = _with_lora(backbone, lora_rank)
            self.backbone = backbone
            self._frozen = []
        self.caching = False
        self._cache = {}
        self._cache_bytes = 0

    @property
    def model(self):
        return self._frozen[0] if self._frozen else self.backbone

    @property
    def special_tokens(self):
        return int(self.prefix_ids.numel() + self.suffix_ids.numel())

    def _apply(self, fn, recurse=True):
        # .to(device) / .cpu() move the frozen backbone too, though it is not a submodule.
        super()._apply(fn, recurse)
        if self._frozen:
            self._frozen[0]._apply(fn)
        return self

    def train(self, mode=True):
        super().train(mode)
        if self._frozen:
            self._frozen[0].eval()  # no dropout in a frozen backbone: its states are cached
        return self

    def clear_cache(self):
        self._cache = {}
        self._cache_bytes = 0

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cache"], state["_cache_bytes"] = {}, 0  # pickles and deep copies stay small
        return state

    def _backbone_states(self, tokens, mask):
        """Hidden states (n, T, D) of a batch of chunks, special tokens around each."""
        n, T = tokens.shape
        lengths = mask.sum(dim=1)
        p, s = self.prefix_ids.numel(), self.suffix_ids.numel()
        tokens = tokens.long()
        ids = tokens.new_full((n, p + T + s), self.pad_id)
        ids[:, p:p + T] = self._tokenizer.to_backbone_ids(tokens, self.pad_id)
        if p:
            ids[:, :p] = self.prefix_ids
        if s:  # the suffix right after each chunk's last id, before its padding
            pos = (p + lengths)[:, None] + torch.arange(s, device=tokens.device)
            ids.scatter_(1, pos, self.suffix_ids.expand(n, s))
        attention = torch.arange(p + T + s, device=tokens.device)[None] < (p + lengths + s)[:, None]
        out = self.model(input_ids=ids, attention_mask=attention.long())
        return out.last_hidden_state[:, p:p + T]

    def forward(self, tokens, mask):
        if tokens.shape[1] + self.special_tokens > self.max_positions:
            raise ValueError(
                f"chunks of {tokens.shape[1]} tokens do not fit the backbone's "
                f"{self.max_positions} positions (with {self.special_tokens} special tokens); "
                f"lower max_length.")
        if self._frozen:
            return self._frozen_states(tokens, mask)
        return self._backbone_states(tokens, mask)

    def _frozen_states(self, tokens, mask):
        lengths = mask.sum(dim=1).tolist()
        keys = [tokens[i, :lengths[i]].cpu().numpy().tobytes() for i in range(len(lengths))]
        missing = [i for i, key in enumerate(keys) if key not in self._cache]
        fresh = {}
        if missing:
            with torch.no_grad():
                rows = torch.as_tensor(missing, device=tokens.device)
                h = self._backbone_states(tokens[rows], mask[rows])
            for j, i in enumerate(missing):
                fresh[i] = h[j, :lengths[i]]
                if self.caching and self._cache_bytes < CACHE_LIMIT_BYTES:
                    kept = fresh[i].to("cpu", torch.float16)
                    self._cache[keys[i]] = kept
                    self._cache_bytes += kept.numel() * 2
        states = torch.zeros(tokens.shape + (self.output_dim,), device=tokens.device)
        for i, key in enumerate(keys):
            row = fresh[i] if i in fresh else self._cache[key]
            states[i, :lengths[i]] = row.to(states.device, states.dtype)
        return states


def _with_lora(backbone, rank):
    try:
        import peft
    except ImportError:
        raise ImportError("mode='lora' needs the `peft` package (pip install peft); "
                          "mode='finetune' trains every weight without it.") from None
    config = peft.LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                             target_modules="all-linear")
    return peft.get_peft_model(backbone, config)


# ----------------------------------------------------------------------------
# The user-facing parameter
# ----------------------------------------------------------------------------


class PretrainedEncoder(BaseEstimator):
    """A pretrained Hugging Face encoder for :class:`PlantClassifier` (``encoder=``).

    The backbone reads every chunk of a document (``max_length`` of its subword tokens,
    ``max_chunks`` chunks); stage 1 ranks the backbone's own subword vocabulary, so the
    planted attention points at the positions the backbone encodes. Loaded from the local
    directory only, with ``transformers`` (``pip install 'plantlearn[hf]'``); code shipped
    with a model is never run and weights are read from safetensors files only.

    Parameters
    ----------
    path : str or path-like
        A local model directory: ``config.json``, ``tokenizer.json`` and ``*.safetensors``
        (what ``save_pretrained`` writes, or a downloaded model snapshot).
    mode : {"frozen", "finetune", "lora"}, default="frozen"
        "frozen": the backbone's weights do not change; its hidden states are computed once
        per chunk and cached during ``fit``, so only the planted attention trains (minutes
        on a CPU). "finetune": every backbone weight trains too (a GPU job). "lora":
        low-rank adapters on the backbone's linear layers train, its weights stay (needs
        ``peft``).
    learning_rate : float or None, default=None
        Peak learning rate of the backbone's weights ("finetune", "lora"); the attention
        keeps ``PlantClassifier.learning_rate``. None: 2e-5 for "finetune", 5e-4 for "lora".
    lora_rank : int, default=8
        Rank of the adapters (``mode="lora"``).

    Examples
    --------
    >>> from plantlearn import PlantClassifier, PretrainedEncoder
    >>> clf = PlantClassifier(encoder=PretrainedEncoder("models/all-MiniLM-L6-v2"))  # doctest: +SKIP
    """

    def __init__(self, path, *, mode="frozen", learning_rate=None, lora_rank=8):
        self.path = path
        self.mode = mode
        self.learning_rate = learning_rate
        self.lora_rank = lora_rank

    def model_directory(self):
        """The model directory, checked (and these parameters with it): a clear error when
        ``transformers`` is missing, the directory lacks a file, or a parameter is invalid."""
        if self.mode not in MODES:
            raise ValueError(f"PretrainedEncoder mode must be one of {', '.join(MODES)}, got "
                             f"{self.mode!r}.")
        if self.learning_rate is not None and not (isinstance(self.learning_rate, (int, float))
                                                   and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive number or None, got "
                             f"{self.learning_rate!r}.")
        if not (isinstance(self.lora_rank, int) and self.lora_rank >= 1):
            raise ValueError(f"lora_rank must be a positive int, got {self.lora_rank!r}.")
        _require_transformers()
        return check_model_directory(self.path)

    def tokenizer(self):
        """The backbone's tokenizer, fitted (stage 1 ranks its vocabulary)."""
        return PretrainedTokenizer(self.model_directory()).fit(None)

    def build(self, tokenizer=None):
        """The :class:`BackboneEncoder` module, the backbone loaded from :attr:`path`."""
        path = self.model_directory()
        tokenizer = tokenizer if tokenizer is not None else PretrainedTokenizer(path).fit(None)
        lr = (self.learning_rate if self.learning_rate is not None
              else _DEFAULT_LEARNING_RATE[self.mode])
        return BackboneEncoder(load_backbone(path), tokenizer, mode=self.mode,
                               learning_rate=lr, lora_rank=self.lora_rank)
