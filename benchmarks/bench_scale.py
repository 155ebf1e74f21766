"""Cost of every step of PlantClassifier at the paper's scale and beyond (issue 23).

Synthetic corpora of the real shapes from ``make_multilabel_text``: Zipf label frequencies,
about 16 labels per document, long documents, a large vocabulary. For each shape (labels x
training documents) one child process generates the corpus, fits with one epoch cut to a
fixed number of batches, and predicts on held-out documents; a sampler thread reads the
process's resident memory every 20 ms, so every step gets its own time and peak memory:

- stage 1: tokenize, MI (``MIInitializer``), L2R (``LTRPretrainer``);
- the evidence head (pairs, SVMs, cross-validated margins);
- training (``--batches`` batches of one epoch), the head's weight, the decision rule;
- ``predict``, ``predict_topk`` and ``predict_proba`` on ``--predict-docs`` documents.

``--shortlist none`` measures the same shape with attention over every label.

Times per document make growth in documents and in labels visible. A child that passes
``--memory-limit-gb`` is stopped and reported as such (no swapping the machine to death).

    python benchmarks/bench_scale.py --labels 1000 9000 --train-docs 1000 --batches 10 \\
        --predict-docs 500 --out benchmarks/results/bench_scale_before.json
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

_MB = 1024 * 1024


class RssSampler(threading.Thread):
    """Samples this process's resident memory; ``peak(t0, t1)`` is the largest sample in a
    time window, ``over`` is set when it passes the limit."""

    def __init__(self, limit_mb=None, period=0.02):
        super().__init__(daemon=True)
        self.samples = []
        self.limit_mb = limit_mb
        self.period = period
        self.over = False
        self._stop_event = threading.Event()

    @staticmethod
    def rss_mb():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / _MB

    def run(self):
        while not self._stop_event.is_set():
            rss = self.rss_mb()
            self.samples.append((time.perf_counter(), rss))
            if self.limit_mb and rss > self.limit_mb:
                self.over = True
                print(f"memory limit passed ({rss:.0f} MB)", flush=True)
                os._exit(3)
            time.sleep(self.period)

    def peak(self, t0, t1):
        """The largest sample in [t0, t1], widened by one period (a step shorter than the
        period still gets the samples around it)."""
        values = [rss for t, rss in self.samples if t0 - self.period <= t <= t1 + self.period]
        return max(values) if values else self.rss_mb()

    def stop(self):
        self._stop_event.set()


def child(spec):
    """Run one shape; print one JSON line with every step's seconds and peak MB."""
    import numpy as np
    import torch

    from plantlearn import LTRPretrainer, MIInitializer, PlantClassifier
    from plantlearn.callbacks import Callback
    from plantlearn.datasets import make_multilabel_text

    torch.set_num_threads(spec["threads"])
    sampler = RssSampler(limit_mb=spec["memory_limit_gb"] * 1024 if spec["memory_limit_gb"]
                         else None)
    sampler.start()
    steps = {}

    def step(name, t0, t1, **extra):
        steps[name] = {"seconds": t1 - t0, "peak_mb": sampler.peak(t0, t1), **extra}
        print(f"  {name}: {t1 - t0:.1f}s, peak {steps[name]['peak_mb']:.0f} MB", flush=True)

    n_train, n_pred = spec["train_docs"], spec["predict_docs"]
    t0 = time.perf_counter()
    X, Y = make_multilabel_text(
        n_samples=n_train + n_pred, n_labels=spec["labels"], vocab_size=spec["vocab"],
        length=(spec["doc_words"] // 2, spec["doc_words"] * 3 // 2), avg_labels=16,
        label_skew=1.0, random_state=0)
    step("generate", t0, time.perf_counter())
    X_train, Y_train, X_pred, Y_pred = X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]

    epoch_times = {}  # the classifier fits a copy of its callbacks: times come back here

    class Budget(Callback):
        """Cuts the epoch after --batches batches (0: the whole epoch, what the quality
        comparison with and without the shortlist needs) and times the batches apart from
        the validation pass that ends every epoch (over the carve: 5,000 documents of a
        50,000-document fit, which would swamp one batch's time)."""

        def on_epoch_begin(self, trainer):
            epoch_times["begin"] = epoch_times["last_batch"] = time.perf_counter()

        def on_batch_end(self, trainer, batch, n_batches, loss):
            epoch_times["last_batch"] = time.perf_counter()
            if 0 < spec["batches"] <= batch + 1:
                trainer.stop_training = True

        def on_epoch_end(self, trainer, logs):
            epoch_times["batches"] = epoch_times["last_batch"] - epoch_times["begin"]
            epoch_times["validation"] = time.perf_counter() - epoch_times["last_batch"]

    clf = PlantClassifier(max_iter=1, random_state=0, callbacks=[Budget()],
                          mi=MIInitializer(), ltr=LTRPretrainer(random_state=0),
                          device=spec.get("device", "auto"), n_jobs=spec.get("n_jobs"))
    if spec.get("shortlist") != "auto":  # code without the option has no parameter to set
        clf.set_params(shortlist=None if spec["shortlist"] == "none" else int(spec["shortlist"]))
    t_fit = time.perf_counter()
    clf.fit(X_train, Y_train)
    t_end = time.perf_counter()
    # fit_time_ holds the steps in the order they ran; stage 1 splits further into the MI
    # step's own times and the rest (L2R).
    t = t_fit
    times = {k: v for k, v in clf.fit_time_.items() if k != "total"}
    for name, seconds in times.items():  # the steps in the order they ran
        if name == "stage1":
            tok, mi_s = clf.mi_.tokenize_time_, clf.mi_.mi_time_
            step("tokenize", t, t + tok)
            step("mi", t + tok, t + tok + mi_s)
            step("ltr", t + tok + mi_s, t + seconds)
        elif name == "train":
            trained = n_train - clf.validation_indices_.size
            if spec["batches"] > 0:
                trained = min(spec["batches"] * clf.batch_size, trained)
            # seconds per document: the batches alone, without the validation pass
            step(name, t, t + seconds, documents=trained,
                 batches_seconds=epoch_times["batches"],
                 validation_seconds=epoch_times["validation"],
                 seconds_per_document=epoch_times["batches"] / max(trained, 1))
        else:
            step(name, t, t + seconds)
        t += seconds
    steps["fit_total"] = {"seconds": t_end - t_fit, "peak_mb": sampler.peak(t_fit, t_end)}
    quality = {}
    for name, call in (("predict", lambda: clf.predict(X_pred)),
                       ("predict_topk", lambda: clf.predict_topk(X_pred, k=5)),
                       ("predict_proba", lambda: clf.predict_proba(X_pred))):
        t0 = time.perf_counter()
        out = call()
        t1 = time.perf_counter()
        step(name, t0, t1, seconds_per_document=(t1 - t0) / max(n_pred, 1))
        if name == "predict_topk":
            quality = precision_at(out[0], clf.classes_, Y_pred, ks=(1, 5))
            print(f"  held-out {quality}", flush=True)
        del out
    sampler.stop()
    device = spec.get("device", "auto")  # where training ran: "auto" as the classifier reads it
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    print("RESULT " + json.dumps({"steps": steps, "quality": quality, "device": str(device),
                                  "device_name": (torch.cuda.get_device_name(0)
                                                  if str(device).startswith("cuda") else None),
                                  "n_pairs_head": int(clf.net_.evidence.n_pairs),
                                  # labels attended per document (0: every label)
                                  "attended_labels": int(clf.net_.shortlist_size),
                                  "vocab_size": int(clf.tokenizer_.vocab_size),
                                  "labels_per_doc": float(np.mean(np.diff(Y.indptr)))}),
          flush=True)


def precision_at(top_columns, classes, Y_true, ks):
    """P@k of ranked label columns (indices into ``classes``, best first) against the rows
    of the indicator matrix ``Y_true`` (whose columns are the generator's label ids)."""
    import numpy as np

    predicted = np.asarray(classes)[top_columns]
    Y_true = Y_true.tocsr()
    hits = np.array([np.isin(predicted[i], Y_true.indices[Y_true.indptr[i]:Y_true.indptr[i + 1]])
                     for i in range(predicted.shape[0])])
    return {f"P@{k}": float(100 * hits[:, :k].mean()) for k in ks}


def run_shape(spec, timeout):
    """Run one shape in a child process, echoing its step lines as they come (a long shape
    shows its progress, and a shape stopped by the timeout still leaves its steps in the log)."""
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    output = []
    for line in proc.stdout:
        output.append(line)
        if not line.startswith("RESULT "):
            print(line, end="", flush=True)
    returncode = proc.wait()
    timed_out = not timer.is_alive()
    timer.cancel()
    log = "".join(output)
    if timed_out:
        return {"status": "timeout", "wall_seconds": time.perf_counter() - t0,
                "log": log[-3000:]}
    lines = [line for line in output if line.startswith("RESULT ")]
    if returncode == 3:
        return {"status": "memory limit", "log": log[-2000:]}
    if returncode != 0 or not lines:
        return {"status": "error", "returncode": returncode, "log": log[-3000:]}
    return {"status": "ok", **json.loads(lines[-1][len("RESULT "):]),
            "wall_seconds": time.perf_counter() - t0}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--labels", type=int, nargs="+", default=[1000, 3000, 9000])
    p.add_argument("--train-docs", type=int, nargs="+", default=[2000])
    p.add_argument("--predict-docs", type=int, default=5000)
    p.add_argument("--doc-words", type=int, default=1500)
    p.add_argument("--vocab", type=int, default=50000)
    p.add_argument("--batches", type=int, default=10,
                   help="training batches measured (one epoch cut short); 0: the whole epoch")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto",
                   help="PlantClassifier's device: auto (CUDA when present), cpu or cuda")
    p.add_argument("--n-jobs", type=int, default=None,
                   help="PlantClassifier's n_jobs (the evidence head's per-label fits)")
    p.add_argument("--shortlist", default="auto",
                   help="PlantClassifier's shortlist: auto (its default), none (every label) or K")
    p.add_argument("--memory-limit-gb", type=float, default=20.0)
    p.add_argument("--timeout-min", type=float, default=120.0)
    p.add_argument("--out", default=str(C.BENCH_DIR / "results" / "bench_scale.json"))
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return
    record = {**C.provenance(sys.argv), "settings": vars(args), "runs": []}
    out = Path(args.out)
    for n_labels in args.labels:
        for n_docs in args.train_docs:
            spec = {"labels": n_labels, "train_docs": n_docs, "predict_docs": args.predict_docs,
                    "doc_words": args.doc_words, "vocab": args.vocab, "batches": args.batches,
                    "threads": args.threads, "memory_limit_gb": args.memory_limit_gb,
                    "shortlist": args.shortlist, "device": args.device, "n_jobs": args.n_jobs}
            print(f"{n_labels} labels, {n_docs} training documents ...", flush=True)
            result = run_shape(spec, args.timeout_min * 60)
            record["runs"].append({**spec, **result})
            print(f"  -> {result['status']}", flush=True)
            out.write_text(json.dumps(C.jsonable(record), indent=1))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
