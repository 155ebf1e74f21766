"""Evidence for the PLANT claims: PLANT against its no-planting control and linear comparators.

Subcommands (each writes one JSON file under ``benchmarks/results/`` and prints a table):

``compare``
    Every model on the same split in the same run; the neural models (``plant``, ``control``,
    and the neural comparator ``lml_bigru_lwan``) over several seeds (mean and standard
    deviation), the deterministic comparators once.
``learning-curve``
    Nested training subsets (fractions of the training split, drawn with a fixed seed per
    seed), the same test set; PLANT vs control vs linear SVC by default.
``ablation``
    The ablation ladder: planted or random-start attention, with or without the evidence
    head, with or without the static L2R scores (eight models, each differing from a
    neighbour in one switch); optionally the other components (inattention_k 8 / 32,
    stateless reading of the first chunk only, queries planted but not keys).

Every model is fitted and applied in a fresh child process, which reports fit and predict
seconds and its peak resident memory. See benchmarks/README.md for the protocol and commands.

Examples::

    python benchmarks/run_evidence.py compare --dataset reuters --quick
    python benchmarks/run_evidence.py compare --dataset codiesp --seeds 0 1 2 --set max_iter=10
    python benchmarks/run_evidence.py learning-curve --dataset reuters --fractions 0.05 0.1 0.25 0.5 1.0
    python benchmarks/run_evidence.py ablation --dataset codiesp --seeds 0
"""

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
from comparators import COMPARATORS, SEEDED_COMPARATORS  # noqa: E402

#: neural models: name -> (PlantClassifier(plant=...), parameters changed from the run's
#: settings). The control is PlantClassifier(plant=False): the same network, inputs and
#: evidence head, with attention from a random start.
NEURAL = {
    "plant": (True, {}),
    "control": (False, {}),
}

#: --quick: a tiny network and stage 1, for smoke tests only (numbers mean nothing).
QUICK_PARAMS = {
    "max_iter": 1,
    "embed_dim": 32,
    "hidden_size": 32,
    "max_length": 64,
    "max_chunks": 2,
    "ltr__max_iter": 2,
    "ltr__n_factors": 16,
}
QUICK_DOCS = 300

#: The ablation ladder: name -> (plant, parameters changed from the run's settings). Planted
#: or random-start attention x evidence head or not x static L2R scores or not; "attention"
#: rows are the label-wise attention model alone (the paper's architecture, with
#: "control_attention_no_static" the LAAT-style model without anything from stage 1 in the
#: network).
LADDER = {
    "plant": (True, {}),
    "plant_no_static": (True, {"static_scores": False}),
    "plant_attention": (True, {"evidence_head": False}),
    "plant_attention_no_static": (True, {"evidence_head": False, "static_scores": False}),
    "control": (False, {}),
    "control_no_static": (False, {"static_scores": False}),
    "control_attention": (False, {"evidence_head": False}),
    "control_attention_no_static": (False, {"evidence_head": False, "static_scores": False}),
}
#: Other components, one at a time on top of the default PLANT (not in the default ladder).
ABLATIONS = {
    **LADDER,
    "inattention_k=8": (True, {"inattention_k": 8}),
    "inattention_k=32": (True, {"inattention_k": 32}),
    "stateless": (True, {"stateful": False}),
    "queries_only": (True, {"plant_keys": False}),
}


# --------------------------------------------------------------------------------------------
# Running and recording
# --------------------------------------------------------------------------------------------


def claim_path(out_dir, stem, tail):
    """A new file ``stem[-N]tail`` in ``out_dir``, created empty so that no other run takes it.

    Two runs started in the same second (two jobs side by side) would otherwise share a
    name and the later one's saves would overwrite the other's results.
    """
    for n in range(1, 1000):
        path = Path(out_dir) / f"{stem}{'' if n == 1 else f'-{n}'}{tail}"
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"no free result file name for {stem}{tail} in {out_dir}")


class Bench:
    """Runs models one by one, evaluates them, and keeps the JSON record up to date."""

    def __init__(self, args, command, split):
        self.args = args
        self.split = split
        self.t_start = time.monotonic()
        self.deadline = (
            self.t_start + 60.0 * args.time_limit_min if args.time_limit_min else None
        )
        self.params = plant_params(args)
        out_dir = Path(args.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        short = next((k for k, v in C.DATASET_ALIASES.items() if v == split.name), split.name)
        suffix = "_quick" if args.quick else ""
        self.path = claim_path(out_dir, f"{command}_{short}_{stamp}", f"{suffix}.json")
        self.software = {}
        self.record = {
            "command": command,
            **C.provenance(sys.argv),
            "dataset": split.describe(),
            "settings": {
                "models": getattr(args, "model_list", None),
                "seeds": args.seeds,
                "fractions": getattr(args, "fractions", None),
                "plant_params": {k: _param_repr(v) for k, v in self.params.items()},
                "quick": args.quick,
                "threads": args.threads,
                "time_limit_min": args.time_limit_min,
                "lml_python": args.lml_python,
                "lml_options": args.lml_options,
                "lml_nn_python": args.lml_nn_python,
                "lml_nn_minutes": args.lml_nn_minutes,
                "protocol": {
                    "label_space": "training split's labels; dev/test-only labels appended "
                                   "as unseen columns (never predicted)",
                    "plant_threshold": "PlantClassifier's own threshold_ (default 'auto': one "
                                       "micro-F1 cut on logits minus per-label offsets, tuned "
                                       "on its own validation carve of the training "
                                       "documents)",
                    "comparator_threshold": "one global threshold for micro-F1 on "
                                            + split.validation,
                    "macro_f1": "training labels present in test",
                    "rare": f"labels with {C.RARE_RANGE[0]}-{C.RARE_RANGE[1]} reference "
                            "training documents, present in test",
                    "buckets": "training-frequency buckets unseen, 1-5, 6-50, >50 of the "
                               "reference training labels",
                },
            },
            "runs": [],
        }
        self.save()

    # ---------------------------------------------------------------- time

    def remaining(self):
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    # ---------------------------------------------------------------- one run

    def run(self, model, seed, *, train_idx=None, y_ref=None, plant=None, params=None, **keys):
        """Fit and evaluate one model; returns the run record (also appended and saved)."""
        split = self.split
        y_ref = split.Y_train if y_ref is None else y_ref
        rec = {"model": model, "seed": int(seed), **keys}
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            rec.update(status="skipped", error="time limit reached before this run")
            return self._finish(rec)
        if model in NEURAL or plant is not None:
            if train_idx is None:
                texts, Y = split.train_texts, split.Y_train
            else:
                texts = [split.train_texts[i] for i in train_idx]
                Y = split.Y_train[train_idx]
            # A named model brings its own settings; an ablation variant passes them itself.
            plant, preset = NEURAL[model] if plant is None else (plant, {})
            kwargs = {
                "train_texts": texts, "Y_train": Y, "test_texts": split.test_texts,
                "dev_texts": split.dev_texts,
                "plant": plant, "params": {**self.params, **preset, **(params or {})},
                "seed": int(seed),
            }
            target = "_common:run_plant"
            rec["n_train_docs"] = len(texts)
        elif model in COMPARATORS:
            missing = self.software_check(model)
            if missing:
                rec.update(status="not installed", error=missing)
                return self._finish(rec)
            target, fixed = COMPARATORS[model]
            fit_t, Y_fit, val_t, Y_val, desc = split.comparator_split(train_idx)
            kwargs = {
                "fit_texts": fit_t, "Y_fit": Y_fit, "val_texts": val_t, "Y_val": Y_val,
                "test_texts": split.test_texts, "seed": int(seed), **fixed,
                "threads": self.args.threads, "lml_python": self.args.lml_python,
                "options": self.args.lml_options, "lml_nn_python": self.args.lml_nn_python,
                "nn_config": {"minutes": self.args.lml_nn_minutes},
            }
            rec["n_train_docs"] = len(fit_t) + len(val_t)
            rec["n_fit_docs"], rec["validation"] = len(fit_t), desc
        else:
            raise SystemExit(f"unknown model {model!r}; choose from "
                             f"{', '.join([*NEURAL, *COMPARATORS])}")
        res = C.run_measured(target, kwargs, timeout=remaining, threads=self.args.threads)
        rec["status"] = res["status"]
        for key in ("error", "traceback", "fit_seconds", "predict_seconds", "peak_rss_mb",
                    "wall_seconds", "rss_before_mb", "info"):
            if key in res:
                rec[key] = res[key]
        if res["status"] == "ok":
            # In a training subset most labels that are rare in the full split have no
            # training document at all; the rare labels of *this* model are the ones its own
            # subset holds 1-10 times, so learning curves record both views.
            subset = None if train_idx is None else split.Y_train[train_idx]
            rec["metrics"] = C.evaluate(split.Y_test, res["test_score"], res["test_pred"], y_ref,
                                        y_subset_train=subset, y_proba=res.get("test_proba"))
            if res.get("dev_score") is not None:
                # The dev split: where choices may be read from (the test split reports).
                rec["dev_metrics"] = C.evaluate(split.Y_dev, res["dev_score"], res["dev_pred"],
                                                y_ref, y_subset_train=subset,
                                                y_proba=res.get("dev_proba"))
            if res.get("native_pred") is not None:
                native = C.evaluate(split.Y_test, res["test_score"], res["native_pred"], y_ref)
                rec["native_metrics"] = {
                    k: native[k] for k in ("micro_f1", "macro_f1", "rare_macro_f1", "buckets")
                }
        return self._finish(rec)

    def software_check(self, model):
        """None when the comparator's software is usable, else why not (checked once)."""
        if model == "lml_bigru_lwan":
            from comparators.libmultilabel_nn import check_python

            key, python = "libmultilabel_nn", self.args.lml_nn_python
        elif model.startswith("lml_"):
            from comparators.libmultilabel_linear import check_python

            key, python = "libmultilabel", self.args.lml_python
        else:
            return None
        if key not in self.software:
            try:
                version = check_python(python)
                self.software[key] = None
                self.record["settings"][key + "_version"] = version
            except C.NotInstalled as exc:
                self.software[key] = str(exc)
        return self.software[key]

    def _finish(self, rec):
        self.record["runs"].append(C.jsonable(rec))
        self.save()
        keys = " ".join(f"{k}={rec[k]}" for k in ("variant", "fraction") if k in rec)
        if rec.get("status") == "ok":
            m = rec["metrics"]
            print(f"  {rec['model']:<16} seed={rec['seed']} {keys} P@1={100 * m['p@1']:.1f} "
                  f"P@5={100 * m['p@5']:.1f} miF1={100 * m['micro_f1']:.1f} "
                  f"maF1={100 * (m['macro_f1'] or 0):.1f} fit={rec['fit_seconds']:.1f}s "
                  f"peak={rec['peak_rss_mb']:.0f}MB", flush=True)
        else:
            msg = (rec.get("error") or "").splitlines()[0] if rec.get("error") else ""
            print(f"  {rec['model']:<16} seed={rec['seed']} {keys} {rec['status'].upper()}: {msg}",
                  flush=True)
            if rec.get("status") == "error" and self.args.verbose and rec.get("traceback"):
                print(rec["traceback"], file=sys.stderr)
        return rec

    def save(self):
        self.record["elapsed_seconds"] = time.monotonic() - self.t_start
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(C.jsonable(self.record), indent=1))
        os.replace(tmp, self.path)

    def finish(self, summary, ratios, table, notes=()):
        self.record["summary"] = summary
        self.record["ratios"] = ratios
        self.save()
        print()
        print(table)
        for note in notes:
            print(note)
        print(f"\nresults: {self.path}")


def _param_repr(v):
    return v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)


def plant_params(args):
    """PlantClassifier parameters shared by PLANT and the control: --quick, --device, --set."""
    params = dict(QUICK_PARAMS) if args.quick else {}
    if args.device:
        params["device"] = args.device
    if args.verbose:
        params["verbose"] = 1
    from plantlearn.cli import parse_assignments

    try:
        params.update(parse_assignments(args.set))
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    for forbidden in ("plant", "random_state"):
        if forbidden in params:
            raise SystemExit(f"--set {forbidden}=... is chosen by the benchmark, not settable")
    return params


def load(args):
    max_train, max_test = args.max_train, args.max_test
    if args.quick:
        max_train = min(max_train or QUICK_DOCS, QUICK_DOCS)
        max_test = min(max_test or QUICK_DOCS, QUICK_DOCS)
    print(f"loading {args.dataset} from {args.data_home} ...", flush=True)
    split = C.Split(args.dataset, args.data_home, max_train=max_train, max_test=max_test)
    d = split.describe()
    print(f"  train {d['n_train']} (of {d['n_train_full']}), dev {d['n_dev']}, test {d['n_test']} "
          f"(of {d['n_test_full']}); {d['n_labels_train_space']} training labels, "
          f"{d['n_test_only_labels']} test-only; comparator threshold on {split.validation}",
          flush=True)
    return split


def parse_models(text):
    models = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in models if m not in NEURAL and m not in COMPARATORS]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from "
                         f"{', '.join([*NEURAL, *COMPARATORS])}")
    return models


# --------------------------------------------------------------------------------------------
# Subcommands
# --------------------------------------------------------------------------------------------


def compare_order(models, seeds):
    """The (model, seed) runs of ``compare``: the deterministic comparators once (seed 0,
    they are fast), then seed by seed the neural models and the seeded comparators, so that
    the models of a seed stay paired if the time limit ends the run early."""
    once = [(m, 0) for m in models if m not in NEURAL and m not in SEEDED_COMPARATORS]
    per_seed = ([m for m in models if m in NEURAL]
                + [m for m in models if m in SEEDED_COMPARATORS])
    return once + [(m, seed) for seed in seeds for m in per_seed]


def cmd_compare(args):
    split = load(args)
    args.model_list = parse_models(args.models)
    bench = Bench(args, "compare", split)
    for model, seed in compare_order(args.model_list, args.seeds):
        bench.run(model, seed)
    summary = C.summarize(bench.record["runs"], ["model"])
    ratios = C.ratios_to_best_peer(summary)
    table = C.format_table(summary, ["model"])
    notes = [f"\nPLANT / strongest peer ({split.name}, means over seeds):",
             C.format_ratios(ratios), "", bucket_table(summary)]
    natives = [r for r in bench.record["runs"] if r.get("native_metrics")]
    for r in natives:
        nm = r["native_metrics"]
        notes.append(f"{r['model']} with its own per-label thresholds: miF1 "
                     f"{100 * nm['micro_f1']:.1f}, maF1 {100 * (nm['macro_f1'] or 0):.1f}, rare "
                     f"{_pct(nm['rare_macro_f1'])}")
    bench.finish(summary, ratios, table, notes)


def cmd_learning_curve(args):
    split = load(args)
    args.model_list = parse_models(args.models)
    bench = Bench(args, "learning-curve", split)
    n = len(split.train_texts)
    subsets = {seed: C.nested_subsets(n, args.fractions, seed) for seed in args.seeds}
    bench.record["settings"]["subset_sizes"] = {
        str(f): len(subsets[args.seeds[0]][float(f)]) for f in args.fractions
    }
    bench.record["settings"]["reference_training_labels"] = (
        "the full training split (buckets, rare and PSP fixed across fractions); "
        "subset_rare_macro_f1: labels with 1-10 documents in the run's own training subset"
    )
    for f in sorted(float(x) for x in args.fractions):
        for seed in args.seeds:
            idx = subsets[seed][f]
            for model in args.model_list:
                bench.run(model, seed, train_idx=idx, fraction=f)
    summary = C.summarize(bench.record["runs"], ["fraction", "model"])
    ratios = {}
    for f in sorted({r["fraction"] for r in summary}):
        rows = [r for r in summary if r["fraction"] == f]
        ratios[str(f)] = C.ratios_to_best_peer(rows)
    table = C.format_table(summary, ["fraction", "model"],
                           metrics=["p@1", "p@5", "ndcg@5", "psp@5", "micro_f1", "macro_f1",
                                    "rare_macro_f1", "subset_rare_macro_f1"])
    notes = ["\nPLANT / strongest peer per training fraction:"]
    for f, r in ratios.items():
        notes.append(f"[fraction {f}]\n" + C.format_ratios(r))
    bench.finish(summary, ratios, table, notes)


def cmd_ablation(args):
    split = load(args)
    variants = list(LADDER) if not args.variants else args.variants.split(",")
    unknown = [v for v in variants if v not in ABLATIONS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {', '.join(ABLATIONS)}")
    args.model_list = variants
    bench = Bench(args, "ablation", split)
    for seed in args.seeds:
        for v in variants:
            plant, params = ABLATIONS[v]
            bench.run("plant" if plant else "control", seed, plant=plant, params=params,
                      variant=v)
    summary = C.summarize(bench.record["runs"], ["variant"])
    full = next((r for r in summary if r["variant"] == "plant" and r["status"] == "ok"), None)
    ratios = {}
    notes = ["\nvariant / full PLANT (means over seeds):"]
    for r in summary:
        if full is None or r["status"] != "ok" or r["variant"] == "plant":
            continue
        ratios[r["variant"]] = {
            m: (r[m] / full[m]) if (r.get(m) is not None and full.get(m)) else None
            for m in ("p@1", "p@5", "macro_f1", "rare_macro_f1")
        }
        notes.append(f"  {r['variant']:<18} " + "  ".join(
            f"{m} {'-' if v is None else f'{v:.3f}'}" for m, v in ratios[r["variant"]].items()))
    table = C.format_table(summary, ["variant"])
    bench.finish(summary, ratios, table, notes)


def _pct(v):
    return "-" if v is None else f"{100 * v:.1f}"


def bucket_table(summary):
    names = ("unseen", "1-5", "6-50", ">50")
    lines = ["macro-F1 by training frequency (mean over seeds, %):",
             f"{'model':<18}" + "".join(f"{b:>9}" for b in names) + f"{'rare 1-10':>11}"]
    for r in summary:
        if r.get("status") != "ok":
            continue
        lines.append(f"{r['model']:<18}" + "".join(
            f"{_pct(r.get(f'bucket_{b}_macro_f1')):>9}" for b in names)
            + f"{_pct(r.get('rare_macro_f1')):>11}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dataset", required=True,
                        help="dataset folder or alias: reuters, codiesp, goemotions")
    common.add_argument("--data-home", default=str(C.default_data_home()),
                        help="folder with one sub-folder per dataset (default: $PLANTLEARN_DATA "
                             "or ../shared/data next to the repository)")
    common.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="seeds of the neural models and lml_bigru_lwan "
                             "(default: 0 1 2; 0 with --quick)")
    common.add_argument("--max-train", type=int, default=None,
                        help="subsample the training split to N documents (seed 0)")
    common.add_argument("--max-test", type=int, default=None,
                        help="subsample the test split to N documents (seed 0)")
    common.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="PlantClassifier.set_params for PLANT and control, e.g. "
                             "--set max_iter=10 --set ltr__n_factors=128 (repeatable)")
    common.add_argument("--device", default=None, help="PlantClassifier device (default: auto)")
    common.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK_DOCS} train/test documents, one epoch of a "
                             "tiny network (numbers are meaningless)")
    common.add_argument("--time-limit-min", type=float, default=None,
                        help="stop the running model and skip the rest after this many minutes")
    common.add_argument("--threads", type=int, default=1,
                        help="torch / BLAS / liblinear threads per model (default 1)")
    common.add_argument("--lml-python", default=os.environ.get("LML_PYTHON"),
                        help="python of a venv with libmultilabel (default: $LML_PYTHON; "
                             "unset: LibMultiLabel comparators are skipped)")
    common.add_argument("--lml-options", default=None,
                        help="liblinear options for LibMultiLabel (default: '-B 1 -m THREADS', "
                             "i.e. LibMultiLabel's solver defaults plus a bias term; pass -B 1 "
                             "yourself when you set this)")
    common.add_argument("--lml-nn-python", default=os.environ.get("LML_NN_PYTHON"),
                        help="python of a venv with libmultilabel[nn], for lml_bigru_lwan "
                             "(default: $LML_NN_PYTHON)")
    common.add_argument("--lml-nn-minutes", type=float, default=18.0,
                        help="wall-clock training cap of lml_bigru_lwan (default 18)")
    common.add_argument("--out-dir", default=str(C.BENCH_DIR / "results"),
                        help="where the JSON result goes (default: benchmarks/results)")
    common.add_argument("-v", "--verbose", action="store_true",
                        help="print tracebacks of failed runs and the models' progress")

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("compare", parents=[common], help="all models on the same split")
    p.add_argument("--models", default="plant,control,linear_svc,lml_thresholding",
                   help=f"comma-separated, from {', '.join([*NEURAL, *COMPARATORS])}")
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("learning-curve", parents=[common], help="nested training subsets")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.05, 0.1, 0.25, 0.5, 1.0])
    p.add_argument("--models", default="plant,control,linear_svc")
    p.set_defaults(func=cmd_learning_curve)
    p = sub.add_parser("ablation", parents=[common], help="PLANT components one at a time")
    p.add_argument("--variants", default=None,
                   help=f"comma-separated, from {', '.join(ABLATIONS)} (default: the eight "
                        f"models of the ladder)")
    p.set_defaults(func=cmd_ablation)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.seeds is None:
        args.seeds = [0] if args.quick else [0, 1, 2]
    if getattr(args, "fractions", None):
        bad = [f for f in args.fractions if not 0 < f <= 1]
        if bad:
            raise SystemExit(f"--fractions must lie in (0, 1]; got {bad}")
    if args.threads:
        # Inherited by every child process (numpy's BLAS reads it at import).
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    if not Path(args.data_home).is_dir():
        raise SystemExit(f"--data-home {args.data_home} does not exist (set PLANTLEARN_DATA)")
    args.func(args)


if __name__ == "__main__":
    main()
