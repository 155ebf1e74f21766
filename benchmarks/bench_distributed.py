"""Data-parallel training (torchrun, gloo on CPU): speed-up and parity against one process.

The same fit three ways, in the same run: one process with one torch thread, then
``torchrun --nproc_per_node=2`` (two processes, one thread each) with the same global batch.
Reports the training step's seconds (from ``fit_time_``) and their ratio, the whole fit's
seconds, and the largest difference between the two models' weights and probabilities
(dropout 0, so that the two fits differ only by float rounding and the reduction order).

    python benchmarks/bench_distributed.py --docs 4000 --labels 200 --epochs 2
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def worker(spec, out):
    import time

    import numpy as np
    import torch

    from plantlearn import PlantClassifier
    from plantlearn.datasets import make_multilabel_text

    torch.set_num_threads(1)
    X, Y = make_multilabel_text(n_samples=spec["docs"], n_labels=spec["labels"],
                                vocab_size=spec["vocab"], length=tuple(spec["length"]),
                                avg_labels=spec["avg_labels"], random_state=0)
    clf = PlantClassifier(max_iter=spec["epochs"], early_stopping=False, dropout=0.0,
                          random_state=0)
    t0 = time.perf_counter()
    clf.fit(X, Y)
    seconds = time.perf_counter() - t0
    rank = int(os.environ.get("RANK", 0))
    torch.save(clf.net_.state_dict(), Path(out) / f"weights{rank}.pt")
    np.save(Path(out) / f"proba{rank}.npy", clf.predict_proba(X[:500]))
    (Path(out) / f"times{rank}.json").write_text(json.dumps(
        {"fit_seconds": seconds, "fit_time_": clf.fit_time_}))


def run(args, spec, processes, out):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable]
    if processes > 1:
        cmd += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    cmd += [__file__, "--worker", json.dumps(spec), "--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads((Path(out) / "times0.json").read_text())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=4000)
    p.add_argument("--labels", type=int, default=200)
    p.add_argument("--vocab", type=int, default=5000)
    p.add_argument("--length", type=int, nargs=2, default=[100, 300])
    p.add_argument("--avg-labels", type=float, default=4.0)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--out", default=str(C.BENCH_DIR / "results" / "bench_distributed.json"))
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker), args.out)
        return
    import numpy as np
    import torch

    spec = {"docs": args.docs, "labels": args.labels, "vocab": args.vocab,
            "length": args.length, "avg_labels": args.avg_labels, "epochs": args.epochs}
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as many:
        single = run(args, spec, 1, one)
        parallel = run(args, spec, args.processes, many)
        a = torch.load(Path(one) / "weights0.pt", weights_only=True)
        b = torch.load(Path(many) / "weights0.pt", weights_only=True)
        others = [torch.load(Path(many) / f"weights{r}.pt", weights_only=True)
                  for r in range(1, args.processes)]
        weight_diff = max(float((a[k].float() - b[k].float()).abs().max())
                          for k in a if a[k].numel())
        ranks_identical = all(torch.equal(b[k], o[k]) for o in others for k in b)
        proba_diff = float(np.abs(np.load(Path(one) / "proba0.npy")
                                  - np.load(Path(many) / "proba0.npy")).max())
    result = {
        **C.provenance(sys.argv), "settings": spec, "processes": args.processes,
        "train_seconds_one_process": single["fit_time_"]["train"],
        f"train_seconds_{args.processes}_processes": parallel["fit_time_"]["train"],
        "train_speedup": single["fit_time_"]["train"] / parallel["fit_time_"]["train"],
        "fit_seconds_one_process": single["fit_seconds"],
        f"fit_seconds_{args.processes}_processes": parallel["fit_seconds"],
        "max_weight_difference": weight_diff, "max_probability_difference": proba_diff,
        "ranks_identical": ranks_identical,
    }
    Path(args.out).write_text(json.dumps(C.jsonable(result), indent=1))
    print(f"training: one process {result['train_seconds_one_process']:.1f}s, "
          f"{args.processes} processes {parallel['fit_time_']['train']:.1f}s: "
          f"speed-up {result['train_speedup']:.2f}x; weights differ by at most "
          f"{weight_diff:.2e}, probabilities by {proba_diff:.2e}; ranks identical: "
          f"{ranks_identical}")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
