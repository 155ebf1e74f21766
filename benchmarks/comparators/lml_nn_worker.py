"""Worker run by a Python with ``libmultilabel[nn]``: train BiGRU-LWAN, score validation and test.

Never imported by plantlearn; :mod:`comparators.libmultilabel_nn` starts it as

    LML_NN_PYTHON lml_nn_worker.py IN.json.gz OUT.npz

``IN.json.gz`` holds ``fit``, ``val``, ``test`` (lists of raw texts), ``fit_labels`` and
``val_labels`` (lists of column-index lists), ``n_labels`` and ``config`` (seed, threads,
minutes, epochs, patience, batch size, sequence length, learning rate, rnn_dim, embed_dim).
``OUT.npz`` receives ``val_score`` and ``test_score`` (logits, n x n_labels) and a JSON ``meta``.

The network, data pipeline (LibMultiLabel's tokenizer, vocabulary, padding) and training loop
(Lightning, Adam, gradient clipping at 0.5, early stopping on validation P@1 with the best
checkpoint restored) are LibMultiLabel's. What differs from its command line:

- word vectors: no pretrained vectors can be downloaded here, so the embedding layer starts
  from LSA vectors (truncated SVD of the fitting documents' tf-idf term-document matrix,
  ``embed_dim`` dimensions); the unknown-word vector is random and padding is zero;
- a wall-clock cap (``minutes``, Lightning's ``max_time``) so that CPU runs stay bounded; the
  best checkpoint so far is used when the cap stops training.
"""

import gzip
import json
import resource
import sys
import tempfile
import time

import numpy as np


def _peak_rss_mb():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _lsa_vectors(token_lists, word_dict, dim, seed):
    """Word vectors from a truncated SVD of the tf-idf term-document matrix."""
    import torch
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer=lambda toks: toks, min_df=1)
    X = vec.fit_transform(token_lists)  # documents x words
    k = max(1, min(dim, X.shape[0] - 1, X.shape[1] - 1))
    svd = TruncatedSVD(n_components=k, random_state=seed)
    svd.fit(X)
    word_vecs = (svd.components_.T * svd.singular_values_).astype(np.float32)  # words x k
    word_vecs /= np.linalg.norm(word_vecs, axis=1, keepdims=True) + 1e-6
    weights = np.zeros((len(word_dict), dim), dtype=np.float32)
    rng = np.random.default_rng(seed)
    for word, j in vec.vocabulary_.items():
        i = word_dict.get(word)
        if i is not None:
            weights[i, :k] = word_vecs[j]
    weights[word_dict["<unk>"]] = rng.normal(scale=0.1, size=dim)
    return torch.from_numpy(weights)


def main(argv):
    in_path, out_path = argv[1], argv[2]
    with gzip.open(in_path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    cfg = data["config"]

    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from libmultilabel.nn import data_utils, nn_utils

    torch.set_num_threads(int(cfg.get("threads") or 1))
    nn_utils.set_seed(int(cfg["seed"]))
    t_start = time.perf_counter()
    n_labels = int(data["n_labels"])
    classes = [f"{j:07d}" for j in range(n_labels)]  # sorted order = column order

    def instances(texts, labels=None):
        out = []
        for i, text in enumerate(texts):
            toks = data_utils.tokenize(text) or ["<unk>"]
            lab = [classes[j] for j in labels[i]] if labels is not None else []
            out.append({"text": toks, "label": lab, "index": i})
        return out

    fit = instances(data["fit"], data["fit_labels"])
    val = instances(data["val"], data["val_labels"])
    test = instances(data["test"])
    # The placeholder of empty documents is a special, not a word: counted as a word it would
    # enter the dictionary a second time and leave an index past the embedding's last row.
    specials = ["<pad>", "<unk>"]
    word_dict = data_utils._build_word_dict([set(d["text"]) - set(specials) for d in fit],
                                            min_vocab_freq=1, specials=specials)
    embed_vecs = _lsa_vectors([d["text"] for d in fit], word_dict, int(cfg["embed_dim"]),
                              int(cfg["seed"]))
    device = torch.device("cpu")

    def loader(rows, shuffle=False):
        return data_utils.get_dataset_loader(
            rows, classes, device, max_seq_length=int(cfg["max_seq_length"]),
            batch_size=int(cfg["batch_size"]), shuffle=shuffle, data_workers=0,
            word_dict=word_dict,
        )

    with tempfile.TemporaryDirectory(prefix="lml-nn.") as ckpt_dir:
        model = nn_utils.init_model(
            model_name="BiGRULWAN",
            network_config={"rnn_dim": int(cfg["rnn_dim"]), "rnn_layers": 1,
                            "embed_dropout": 0.2, "encoder_dropout": 0.0,
                            "post_encoder_dropout": 0.0},
            classes=classes, embed_vecs=embed_vecs, learning_rate=float(cfg["learning_rate"]),
            optimizer="adam", val_metric="P@1", monitor_metrics=["P@1", "P@5"], silent=True,
        )
        checkpoint = ModelCheckpoint(dirpath=ckpt_dir, filename="best_model", save_top_k=1,
                                     monitor="P@1", mode="max")
        trainer = L.Trainer(
            logger=False, num_sanity_val_steps=0, accelerator="cpu", devices=1,
            enable_progress_bar=False, enable_model_summary=False,
            max_epochs=int(cfg["epochs"]), max_time={"minutes": float(cfg["minutes"])},
            callbacks=[EarlyStopping(monitor="P@1", mode="max", patience=int(cfg["patience"]),
                                     strict=False), checkpoint],
            deterministic="warn", gradient_clip_val=0.5, gradient_clip_algorithm="value",
        )
        trainer.fit(model, loader(fit, shuffle=True), loader(val))
        epochs_run = int(trainer.current_epoch)
        if checkpoint.best_model_path:
            state = torch.load(checkpoint.best_model_path, map_location="cpu",
                               weights_only=False)["state_dict"]
            model.load_state_dict(state)
    train_s = time.perf_counter() - t_start

    def logits(rows):
        model.eval()
        out = []
        with torch.no_grad():
            for batch in loader(rows):
                out.append(model(batch).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, n_labels), np.float32)

    val_score = logits(val)
    t0 = time.perf_counter()
    test_score = logits(test)
    predict_s = time.perf_counter() - t0
    import importlib.metadata as md

    meta = {
        "train_seconds": train_s,
        "predict_seconds": predict_s,
        "epochs_run": epochs_run,
        "best_val_p@1": float(checkpoint.best_model_score) if checkpoint.best_model_score
        is not None else None,
        "vocab_size": len(word_dict),
        "peak_rss_mb": _peak_rss_mb(),
        "libmultilabel_version": md.version("libmultilabel"),
        "torch": torch.__version__,
        "config": cfg,
        "embeddings": "LSA (truncated SVD of the fitting documents' tf-idf), no pretrained vectors",
    }
    np.savez(out_path, val_score=val_score, test_score=test_score, meta=json.dumps(meta))


if __name__ == "__main__":
    main(sys.argv)
