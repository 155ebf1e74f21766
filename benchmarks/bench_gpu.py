"""GPU check and speed-up: fit PlantClassifier on CUDA and on CPU, compare.

Run it whenever a CUDA machine is at hand; it writes a JSON record (``--out``) that
``tables.py`` turns into the GPU table of docs/benchmarks.md::

    python benchmarks/bench_gpu.py --data-home ../shared/data
    python benchmarks/bench_gpu.py --max-train 2000 --max-iter 2   # a quick look

It fits the same configuration with the same seed on both devices (stage 1
included), then reports: fit seconds on each device and the ratio, predict
seconds, P@1 / P@5 on the test split for both, the largest difference between
the CPU model's and the GPU model's test probabilities, and the agreement of
their top-1 labels. It also predicts with the GPU-fitted model after moving it
to the CPU, through a pickle round trip and through save() / load(device="cpu"):
a GPU-fitted model must load on a CPU-only machine and score the same there.
Exits with status 1 when CUDA is unavailable.
"""

import argparse
import json
import os
import pickle
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-home", default=os.environ.get("PLANTLEARN_DATA", "../shared/data"))
    ap.add_argument("--dataset", default="reuters21578_modapte")
    ap.add_argument("--max-train", type=int, default=None)
    ap.add_argument("--max-iter", type=int, default=5)
    ap.add_argument("--skip-cpu", action="store_true", help="GPU only (no speed-up ratio)")
    ap.add_argument("--out", default=None, help="JSON record (default: "
                    "benchmarks/results/bench_gpu_<dataset>.json)")
    args = ap.parse_args(argv)
    dataset = C.resolve_dataset(args.dataset)
    out = Path(args.out or Path(__file__).resolve().parent / "results" / f"bench_gpu_{dataset}.json")

    import torch

    from plantlearn import PlantClassifier
    from plantlearn.datasets import load_dataset
    from plantlearn.metrics import precision_at_k

    if not torch.cuda.is_available():
        print("CUDA is not available on this machine; nothing to measure.")
        return 1
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
          f"host {platform.machine()} {os.cpu_count()} cores")
    train = load_dataset(dataset, "train", data_home=args.data_home)
    test = load_dataset(dataset, "test", data_home=args.data_home, label_names=train.target_names)
    X, Y = train.data, train.target
    if args.max_train:
        X, Y = X[:args.max_train], Y[:args.max_train]

    results = {}
    devices = ["cuda"] if args.skip_cpu else ["cuda", "cpu"]
    for device in devices:
        clf = PlantClassifier(max_iter=args.max_iter, random_state=0, device=device, verbose=1)
        t0 = time.perf_counter()
        clf.fit(X, Y)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        proba = clf.predict_proba(test.data)
        pred_s = time.perf_counter() - t0
        results[device] = dict(clf=clf, fit=fit_s, predict=pred_s, proba=proba,
                               p1=precision_at_k(test.target, proba, k=1),
                               p5=precision_at_k(test.target, proba, k=5))
        print(f"[{device}] fit {fit_s:.1f}s (stages {clf.fit_time_}), predict {pred_s:.1f}s, "
              f"P@1 {results[device]['p1']:.4f}, P@5 {results[device]['p5']:.4f}, "
              f"{clf.n_iter_} epochs", flush=True)

    gpu = results["cuda"]
    record = {**C.provenance(sys.argv), "device_name": torch.cuda.get_device_name(0),
              "dataset": dataset,
              "settings": {"max_train": args.max_train, "max_iter": args.max_iter},
              "devices": {d: {"fit_seconds": r["fit"], "stage_seconds": r["clf"].fit_time_,
                              "predict_seconds": r["predict"], "p@1": r["p1"], "p@5": r["p5"],
                              "epochs": r["clf"].n_iter_} for d, r in results.items()}}
    # A GPU-fitted model travels on CPU: pickle, then predict on the CPU.
    restored = pickle.loads(pickle.dumps(gpu["clf"]))
    restored.set_params(device="cpu")
    proba_moved = restored.predict_proba(test.data[:200])
    print(f"GPU-fitted model predicting on CPU after pickling: max |diff| vs GPU "
          f"{np.abs(proba_moved - gpu['proba'][:200]).max():.2e}")
    # ... and through save() / load() onto the CPU, the way a user ships a model.
    with tempfile.TemporaryDirectory() as tmp:
        gpu["clf"].save(os.path.join(tmp, "model"))
        loaded = PlantClassifier.load(os.path.join(tmp, "model"), device="cpu")
        proba_loaded = loaded.predict_proba(test.data[:200])
    print(f"GPU-fitted model saved and loaded on CPU: max |diff| vs GPU "
          f"{np.abs(proba_loaded - gpu['proba'][:200]).max():.2e}")
    record["max_diff_pickled_to_cpu"] = float(np.abs(proba_moved - gpu["proba"][:200]).max())
    record["max_diff_loaded_on_cpu"] = float(np.abs(proba_loaded - gpu["proba"][:200]).max())
    if "cpu" in results:
        cpu = results["cpu"]
        agree = np.mean(gpu["proba"].argmax(1) == cpu["proba"].argmax(1))
        print(f"speed-up (CPU fit / GPU fit): {cpu['fit'] / gpu['fit']:.1f}x; "
              f"predict {cpu['predict'] / gpu['predict']:.1f}x")
        print(f"CPU vs GPU fits: top-1 agreement {agree:.3f}, max |proba diff| "
              f"{np.abs(gpu['proba'] - cpu['proba']).max():.3f} (separate fits: bf16 and "
              f"kernel differences make them close, not identical)")
        record["top1_agreement_of_the_two_fits"] = float(agree)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(C.jsonable(record), indent=1))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
