"""Beyond one machine: data-parallel training under torchrun (2 CPU processes, gloo) and the
per-label work on a joblib cluster backend (dask)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

FIT_SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from plantlearn import LTRPretrainer, MIInitializer, PlantClassifier
    from plantlearn.datasets import make_multilabel_text

    out = sys.argv[1]
    X, Y = make_multilabel_text(n_samples=240, n_labels=5, vocab_size=80, length=(10, 30),
                                random_state=0)
    clf = PlantClassifier(max_iter=2, embed_dim=16, hidden_size=16, max_length=32,
                          batch_size=16, dropout=0.0, random_state=0, verbose=1,
                          mi=MIInitializer(top_k=20), ltr=LTRPretrainer(n_factors=8, max_iter=3))
    clf.fit(X, Y)
    rank = int(os.environ.get("RANK", 0))
    torch.save(clf.net_.state_dict(), os.path.join(out, f"rank{rank}.pt"))
    np.save(os.path.join(out, f"proba{rank}.npy"), clf.predict_proba(X))
    clf.save(os.path.join(out, "model"))
""")


def _run(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=cwd)


def test_two_gloo_processes_train_one_model_that_matches_a_single_process(tmp_path):
    (tmp_path / "fit.py").write_text(FIT_SCRIPT)
    (tmp_path / "two").mkdir()
    (tmp_path / "one").mkdir()
    two = _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "fit.py",
                "two"], tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    one = _run(["fit.py", "one"], tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    # One process reports (rank 0) and writes the model; both hold the same weights.
    assert two.stdout.count("[PlantClassifier] epoch 1 loss") == 1
    assert two.stdout.count("evidence head: 5/5 labels") == 1  # stage 1 and head: once
    assert sorted(os.listdir(tmp_path / "two")) == ["model", "proba0.npy", "proba1.npy",
                                                    "rank0.pt", "rank1.pt"]
    a = torch.load(tmp_path / "two" / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "two" / "rank1.pt", weights_only=True)
    single = torch.load(tmp_path / "one" / "rank0.pt", weights_only=True)
    for key, value in a.items():
        assert torch.equal(value, b[key]), key
        # The same global batches, gradients summed across ranks: one process's fit, to
        # float rounding (no dropout, whose masks differ between the two).
        torch.testing.assert_close(value.float(), single[key].float(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(np.load(tmp_path / "two" / "proba0.npy"),
                               np.load(tmp_path / "one" / "proba0.npy"), atol=1e-4)


def test_the_per_label_work_on_a_dask_cluster_gives_the_same_model():
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    from distributed import Client, LocalCluster
    from joblib import parallel_backend

    from plantlearn import LTRPretrainer, MIInitializer, PlantClassifier
    from plantlearn.datasets import make_multilabel_text

    torch.set_num_threads(1)
    X, Y = make_multilabel_text(n_samples=160, n_labels=6, vocab_size=80, length=(10, 30),
                                random_state=1)
    params = dict(max_iter=1, embed_dim=8, hidden_size=8, max_length=32, random_state=0,
                  mi=MIInitializer(top_k=20), ltr=LTRPretrainer(n_factors=8, max_iter=2))
    local = PlantClassifier(**params).fit(X, Y)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        with parallel_backend("dask"):
            spread = PlantClassifier(**params, n_jobs=-1).fit(X, Y)
    torch.testing.assert_close(spread.net_.evidence.weight, local.net_.evidence.weight)
    np.testing.assert_array_equal(spread.evidence_thresholds_, local.evidence_thresholds_)
    np.testing.assert_array_equal(spread.predict_proba(X), local.predict_proba(X))
