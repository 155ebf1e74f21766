"""Figures from the JSON results of run_evidence.py (PNG, into docs/img/ by default).

- ``learning-curve`` results: P@5 and rare-label macro-F1 (labels with 1-10 training
  documents in the full training split, and, where recorded, in each run's own subset) against
  the number of training documents, mean ± standard deviation over seeds
  as bands, one line per model (PLANT, control, linear SVC, ...).
- ``compare`` results: macro-F1 per training-frequency bucket (unseen, 1-5, 6-50, >50) and
  rare, one bar per model, with the standard deviation over seeds as error bars.
- ``ablation`` results: P@5, macro-F1 and rare macro-F1 of each variant.

Needs matplotlib (``pip install "plantlearn[bench]"`` or ``pip install matplotlib``).

Usage::

    python benchmarks/plot_results.py benchmarks/results/learning-curve_reuters_*.json
    python benchmarks/plot_results.py benchmarks/results/*.json --out-dir docs/img
    # one curve from the runs of several learning-curve files of one dataset (a run of the
    # same model, fraction and seed in a later file replaces the earlier one):
    python benchmarks/plot_results.py A.json B.json --merge reuters_learning_curve
"""

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUCKETS = ("unseen", "1-5", "6-50", ">50")
COLORS = {"plant": "#1b7837", "control": "#762a83", "linear_svc": "#e08214",
          "lml_thresholding": "#2166ac", "lml_1vsrest": "#67a9cf", "lml_bigru_lwan": "#b2182b",
          "prior": "#999999"}
LABELS = {"plant": "PLANT", "control": "control (no planting)", "linear_svc": "tf-idf + LinearSVC",
          "lml_thresholding": "LibMultiLabel thresholding", "lml_1vsrest": "LibMultiLabel 1vsrest",
          "lml_bigru_lwan": "LibMultiLabel BiGRU-LWAN", "prior": "label-frequency floor"}


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "plot_results.py needs matplotlib: pip install 'plantlearn[bench]' "
            "(or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(rec):
    d = rec["dataset"]
    quick = " (--quick smoke run: not a result)" if rec["settings"].get("quick") else ""
    return f"{d['name']}, test n={d['n_test']}{quick}"


def _ok(rows):
    return [r for r in rows if r.get("status") == "ok"]


def _pct(v):
    return float("nan") if v is None else 100.0 * v


def plot_learning_curve(rec, out_dir, plt, file_name=None):
    from matplotlib import ticker

    summary = _ok(rec["summary"])
    sizes = rec["settings"].get("subset_sizes", {})
    models = list(dict.fromkeys(r["model"] for r in _model_order(summary)))
    panels = [("p@5", "P@5 (%)", None),
              ("rare_macro_f1", "rare-label macro-F1 (%)",
               "labels with 1-10 documents in the full training split")]
    if any(r.get("subset_rare_macro_f1") is not None for r in summary):
        panels.append(("subset_rare_macro_f1", "rare-label macro-F1 (%)",
                       "labels with 1-10 documents in the run's own subset"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    for ax, (metric, name, title) in zip(axes, panels):
        if title:
            ax.set_title(title, fontsize=9)
        for m in models:
            rows = sorted((r for r in summary if r["model"] == m), key=lambda r: r["fraction"])
            x = [sizes.get(str(r["fraction"]), r["fraction"]) for r in rows]
            y = [_pct(r.get(metric)) for r in rows]
            s = [_pct(r.get(metric + "_std") or 0.0) for r in rows]
            color = COLORS.get(m)
            ax.plot(x, y, marker="o", color=color, label=LABELS.get(m, m))
            ax.fill_between(x, [a - b for a, b in zip(y, s)], [a + b for a, b in zip(y, s)],
                            color=color, alpha=0.2, linewidth=0)
        ax.set_xscale("log")
        if sizes:
            # Only the sizes that ran (a run stopped early lists fractions it never reached).
            ax.set_xticks(sorted({float(sizes[str(r["fraction"])]) for r in summary
                                  if str(r["fraction"]) in sizes}))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("training documents" if sizes else "training fraction")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    n_seeds = len(rec["settings"].get("seeds") or [])
    fig.suptitle(f"Learning curve: {_title(rec)}; mean ± std over {n_seeds} seed(s)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_dir, file_name or f"{_short(rec)}_learning_curve.png", plt)


def _model_order(rows):
    order = list(COLORS)
    return sorted(rows, key=lambda r: order.index(r["model"]) if r["model"] in order else 99)


def _errors(values):
    return values if any(v and v == v for v in values) else None


def plot_buckets(rec, out_dir, plt):
    summary = _model_order(_ok(rec["summary"]))
    groups = [*BUCKETS, "rare 1-10"]
    keys = [f"bucket_{b}_macro_f1" for b in BUCKETS] + ["rare_macro_f1"]
    width = 0.8 / max(1, len(summary))
    fig, ax = plt.subplots(figsize=(10, 4))
    for i, r in enumerate(summary):
        xs = [g + (i - (len(summary) - 1) / 2) * width for g in range(len(groups))]
        ys = [_pct(r.get(k)) for k in keys]
        es = [_pct(r.get(k + "_std") or 0.0) for k in keys]
        ax.bar(xs, ys, width, yerr=_errors(es), capsize=2, color=COLORS.get(r["model"]),
               label=LABELS.get(r["model"], r["model"]))
    counts = _bucket_counts(rec)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{g}\n({counts.get(g, '?')} labels in test)" for g in groups], fontsize=8)
    ax.set_xlabel("training documents per label")
    ax.set_ylabel("macro-F1 (%)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"macro-F1 by label frequency: {_title(rec)}", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_dir, f"{_short(rec)}_buckets.png", plt)


def _bucket_counts(rec):
    for run in rec["runs"]:
        if run.get("status") == "ok":
            counts = {b["bucket"]: b["n_labels_in_test"] for b in run["metrics"]["buckets"]}
            counts["rare 1-10"] = run["metrics"].get("n_rare_labels")
            return counts
    return {}


def plot_ablation(rec, out_dir, plt):
    summary = _ok(rec["summary"])
    metrics = (("p@5", "P@5"), ("macro_f1", "macro-F1"), ("rare_macro_f1", "rare macro-F1"))
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(metrics)
    for i, (key, name) in enumerate(metrics):
        xs = [v + (i - (len(metrics) - 1) / 2) * width for v in range(len(summary))]
        ax.bar(xs, [_pct(r.get(key)) for r in summary], width,
               yerr=_errors([_pct(r.get(key + "_std") or 0.0) for r in summary]), capsize=2,
               label=name)
    ax.set_xticks(range(len(summary)))
    ax.set_xticklabels([r["variant"] for r in summary], fontsize=8, rotation=15)
    ax.set_ylabel("%")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Ablation: {_title(rec)}", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_dir, f"{_short(rec)}_ablation.png", plt)


def _short(rec):
    names = {"reuters21578_modapte": "reuters", "codiesp_d_en": "codiesp"}
    return names.get(rec["dataset"]["name"], rec["dataset"]["name"]) + (
        "_quick" if rec["settings"].get("quick") else "")


def _save(fig, out_dir, name, plt):
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


PLOTTERS = {"learning-curve": [plot_learning_curve], "compare": [plot_buckets],
            "ablation": [plot_ablation]}


def merged_learning_curve(records):
    """One learning-curve record from several of one dataset: their runs, a run of the same
    (model, fraction, seed) in a later record replacing the earlier one, summarised again."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _common as C

    if {r.get("command") for r in records} != {"learning-curve"}:
        raise SystemExit("--merge takes learning-curve results only")
    names = {r["dataset"]["name"] for r in records}
    if len(names) != 1:
        raise SystemExit(f"--merge takes one dataset's results; got {sorted(names)}")
    runs, sizes = {}, {}
    for rec in records:
        sizes.update(rec["settings"].get("subset_sizes", {}))
        for run in rec["runs"]:
            runs[(run["model"], run["fraction"], run["seed"])] = run
    runs = list(runs.values())
    seeds = sorted({r["seed"] for r in runs})
    return {**records[-1], "runs": runs, "summary": C.summarize(runs, ["fraction", "model"]),
            "settings": {**records[-1]["settings"], "subset_sizes": sizes, "seeds": seeds}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON files from run_evidence.py")
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "img")
    parser.add_argument("--merge", metavar="NAME",
                        help="pool the runs of the given learning-curve files into one figure, "
                             "NAME.png")
    args = parser.parse_args(argv)
    plt = _pyplot()
    if args.merge:
        rec = merged_learning_curve([json.loads(p.read_text()) for p in args.results])
        path = plot_learning_curve(rec, args.out_dir, plt, file_name=f"{args.merge}.png")
        print(path)
        return [path]
    written = []
    for path in args.results:
        rec = json.loads(path.read_text())
        if "summary" not in rec:
            print(f"skip {path}: unfinished run (no summary)", file=sys.stderr)
            continue
        if not _ok(rec["summary"]):
            print(f"skip {path}: no successful run", file=sys.stderr)
            continue
        for plot in PLOTTERS.get(rec.get("command"), []):
            written.append(plot(rec, args.out_dir, plt))
    for p in written:
        print(p)
    return written


if __name__ == "__main__":
    main()
