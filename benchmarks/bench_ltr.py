"""Benchmark: LTRPretrainer training time and held-out ranking quality.

For each dataset, fits MIInitializer and LTRPretrainer (default parameters) on
the training split and prints the L2R fit time, the number of epochs and the
NDCG@10 on the held-out graded words of the fitted model next to that of the
untrained (randomly initialised) model it started from::

    python benchmarks/bench_ltr.py --data-home ../shared/data
    python benchmarks/bench_ltr.py --datasets reuters21578_modapte --seeds 0 1 2
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-home", default=os.environ.get("PLANTLEARN_DATA", "../shared/data"))
    ap.add_argument("--datasets", nargs="+", default=["reuters21578_modapte", "codiesp_d_en"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--output", default=None)
    args = ap.parse_args(argv)

    import torch

    from plantlearn import LTRPretrainer, MIInitializer
    from plantlearn.datasets import load_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name in args.datasets:
        train = load_dataset(name, "train", data_home=args.data_home)
        t0 = time.perf_counter()
        mi_out = MIInitializer().fit_transform(train.data, train.target)
        mi_s = time.perf_counter() - t0
        for seed in args.seeds:
            t0 = time.perf_counter()
            ltr = LTRPretrainer(random_state=seed).fit(mi_out, train.target)
            ltr_s = time.perf_counter() - t0
            row = {
                "dataset": name, "seed": seed, "n_labels": int(train.target.shape[1]),
                "vocab_size": int(mi_out.mi.tokenizer_.vocab_size),
                "graded_pairs": int(mi_out.mi.grades_.nnz),
                "mi_seconds": mi_s, "ltr_seconds": ltr_s, "epochs": ltr.n_iter_,
                f"ndcg@{args.k}_trained": ltr.holdout_ndcg(args.k),
                f"ndcg@{args.k}_untrained": ltr.holdout_ndcg(args.k, untrained=True),
            }
            rows.append(row)
            print(f"{name} seed {seed}: {row['n_labels']} labels, {row['graded_pairs']} graded pairs; "
                  f"MI (with tokenization) {mi_s:.1f}s, L2R {ltr_s:.1f}s over {ltr.n_iter_} epochs; "
                  f"held-out NDCG@{args.k} {row[f'ndcg@{args.k}_trained']:.3f} vs untrained "
                  f"{row[f'ndcg@{args.k}_untrained']:.3f}", flush=True)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps({
            "machine": f"{platform.machine()} {os.cpu_count()} cores",
            "date": time.strftime("%Y-%m-%d"), "rows": rows,
        }, indent=1))
    return rows


if __name__ == "__main__":
    main()
