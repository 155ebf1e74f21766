"""Markdown tables from run_evidence.py results, for docs/benchmarks.md.

Several JSON files of the same dataset and subcommand are merged into one table; every row names
the files it came from, so the provenance stays visible::

    python benchmarks/tables.py benchmarks/results/compare_reuters_*.json
    python benchmarks/tables.py benchmarks/results/learning-curve_codiesp_*.json
    python benchmarks/tables.py benchmarks/results/ablation_reuters_*.json \
        benchmarks/results/compare_reuters_*.json
    python benchmarks/tables.py benchmarks/results/bench_scale_*.json

An ablation table takes the ``plant`` and ``control`` runs of compare files of the same dataset
given beside it as the ladder's two full models (pooled by the same rule: same commit and
settings), so the ladder need not refit what a comparison already ran.

Runs of one experiment split over files (seeds run side by side, one process each) are pooled
into one row when the files record the same commit and model settings; a file of other code or
settings replaces the row instead (the last file given wins), so a comparator rerun on another
machine, or an older run, never mixes into a mean.

For learning curves a second table gives PLANT minus the control per seed: both saw the same
training subset, so the paired difference removes the luck of the draw that both share. For
ablations it gives each variant minus full PLANT of the same seed.

Figures are percentages, mean ± standard deviation over the seeds (no ± for a single run).

``--ladder`` prints the ablation ladders of several datasets as one table instead, a column per
dataset and a row per rung (P@1 / macro-F1 / rare-label macro-F1, mean over seeds)::

    python benchmarks/tables.py --ladder benchmarks/results/ablation_{reuters,codiesp}_2026*.json \
        benchmarks/results/compare_{reuters_20261203-031215,codiesp_20261204-163644}.json

Give each dataset's files explicitly: a broader glob would take in runs of other encoders or
older defaults, and the last file given decides a row.

``bench_scale.py`` files make one growth table instead: a row per shape and file, with the
seconds of every stage of ``fit``, training and prediction time per document, peak memory and
held-out precision.
"""

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

COLUMNS = (("p@1", "P@1"), ("p@5", "P@5"), ("ndcg@5", "nDCG@5"), ("psp@5", "PSP@5"),
           ("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"), ("rare_macro_f1", "rare macro-F1"))
# Learning curves only: rare labels counted in each run's own training subset.
SUBSET_COLUMNS = (("subset_rare_macro_f1", "rare macro-F1 (own subset)"),)
ORDER = ("plant", "plant_no_static", "plant_attention", "plant_attention_no_static",
         "control", "control_no_static", "control_attention", "control_attention_no_static",
         "linear_svc", "lml_thresholding", "lml_1vsrest", "lml_bigru_lwan", "prior")


def _pct(row, key, spread=True):
    value = row.get(key)
    if value is None:
        return "-"
    std = row.get(f"{key}_std")
    if spread and row.get("n_runs", 1) > 1 and std is not None:
        return f"{100 * value:.1f} ± {100 * std:.1f}"
    return f"{100 * value:.1f}"


def _machine(record):
    m = record.get("machine", {})
    torch_version = record.get("versions", {}).get("torch", "?")
    return f"{m.get('cpu_count', '?')} cores, torch {torch_version}"


def _sort_key(row_key):
    model = row_key[-1]
    return (row_key[:-1], ORDER.index(model) if model in ORDER else len(ORDER), model)


def _subset_docs(record, fraction):
    """Training documents of a learning-curve fraction (the fraction itself if not recorded)."""
    return (record.get("settings", {}).get("subset_sizes") or {}).get(str(fraction)) or fraction


def _kind(records):
    """'learning-curve', 'ablation' or 'compare': what the records' runs are keyed by."""
    runs = [r for _, record in records for r in record["runs"]]
    if any("fraction" in r for r in runs):
        return "learning-curve"
    if any("variant" in r for r in runs):
        return "ablation"
    return "compare"


def _row_name(run):
    return run.get("variant") or run["model"]


def _signature(record):
    """Code and model settings of a record: runs pool across files only when these agree."""
    settings = record.get("settings", {})
    return (record.get("git_commit"), record.get("git_dirty"),
            json.dumps(settings.get("plant_params"), sort_keys=True))


def pooled_runs(records):
    """Finished runs of all records, one per (fraction, model or variant, seed).

    Runs of one experiment may be split over files (seeds run side by side, each in its own
    process); they are pooled so that mean and spread cover every seed, but only across files
    of the same commit and model settings. For each row the last file given decides which
    files those are; files of other code or settings are left out of that row (a comparator
    rerun elsewhere, or an older run of the same model, replaces instead of mixing in). A run
    repeated with the same seed is taken from the later file.
    """
    by_row = defaultdict(list)
    for name, record in records:
        for r in record["runs"]:
            if r.get("status") == "ok":
                by_row[(r.get("fraction"), _row_name(r))].append((r, name, record))
    pooled = {}
    for (fraction, row_name), entries in by_row.items():
        keep = _signature(entries[-1][2])
        for r, name, record in entries:
            if _signature(record) == keep:
                pooled[(fraction, row_name, r["seed"])] = (r, name, record)
    return pooled


def table(records):
    """One markdown table for records of the same dataset and subcommand."""
    kind = _kind(records)
    grouped = kind == "learning-curve"
    columns = COLUMNS + (SUBSET_COLUMNS if grouped else ())
    label = "variant" if kind == "ablation" else "model"
    header = (["training docs"] if grouped else []) + [label, "runs"] + [c[1] for c in columns] \
        + ["fit s", "peak MB", "source"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    groups = defaultdict(list)
    for (fraction, row_name, _), entry in pooled_runs(records).items():
        groups[(fraction, row_name)].append(entry)
    keyed = {}
    for (fraction, row_name), entries in groups.items():
        record = entries[0][2]
        key = ((_subset_docs(record, fraction),) if grouped else ()) + (row_name,)
        keyed[key] = entries
    for key in sorted(keyed, key=_sort_key):
        entries = keyed[key]
        row = C.summarize([r for r, _, _ in entries], [])[0]
        names = list(dict.fromkeys(name for _, name, _ in entries))
        record = entries[0][2]
        cells = ([str(key[0])] if grouped else []) + [key[-1], str(row["n_runs"])]
        cells += [_pct(row, k) for k, _ in columns]
        cells += [f"{row.get('fit_seconds') or 0:.0f}", f"{row.get('peak_rss_mb') or 0:.0f}",
                  ", ".join(f"`{n}`" for n in names) + f" ({_machine(record)})"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


PAIRED_METRICS = (("p@1", "P@1"), ("p@5", "P@5"), ("macro_f1", "macro-F1"),
                  ("rare_macro_f1", "rare macro-F1"),
                  ("subset_rare_macro_f1", "rare macro-F1 (own subset)"))


def _paired_cells(pairs):
    d = [100 * (a - b) for a, b in pairs if a is not None and b is not None]
    if not d:
        return "-"
    std = statistics.stdev(d) if len(d) > 1 else 0.0
    return f"{statistics.mean(d):+.1f} ± {std:.1f} ({sum(x > 0 for x in d)}/{len(d)})"


def paired_table(records, first="plant", second="control"):
    """``first`` minus ``second`` per (fraction, seed) of learning-curve runs.

    Both models of a seed saw the same training subset, so the difference per seed removes the
    subset's own luck, which dominates the spread of either model over seeds. Cells: mean ±
    standard deviation of the differences in points, and how many seeds ``first`` was ahead.
    """
    runs = {}
    sizes = {}
    for (fraction, name, seed), (r, _, _) in pooled_runs(records).items():
        if name in (first, second):
            runs[(fraction, seed, name)] = r["metrics"]
            sizes[fraction] = r.get("n_train_docs") or fraction
    header = ["training docs", "seeds"] + [name for _, name in PAIRED_METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for f in sorted({f for f, _, m in runs if m == first}):
        seeds = sorted(s for g, s, m in runs if g == f and m == first and (f, s, second) in runs)
        if not seeds:
            continue
        cells = [f"{sizes[f]} ({100 * f:g}%)", str(len(seeds))]
        for key, _ in PAIRED_METRICS:
            cells.append(_paired_cells(
                [(runs[(f, s, first)].get(key), runs[(f, s, second)].get(key)) for s in seeds]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ablation_paired_table(records, reference="plant"):
    """Each ablation variant minus full PLANT of the same seed, in points."""
    runs = {(name, seed): r["metrics"] for (_, name, seed), (r, _, _) in pooled_runs(records).items()}
    header = ["variant", "seeds"] + [name for _, name in PAIRED_METRICS[:4]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    variants = list(dict.fromkeys(name for name, _ in runs if name != reference))
    for v in variants:
        seeds = sorted(s for name, s in runs if name == v and (reference, s) in runs)
        if not seeds:
            continue
        cells = [v, str(len(seeds))]
        for key, _ in PAIRED_METRICS[:4]:
            cells.append(_paired_cells([(runs[(v, s)].get(key), runs[(reference, s)].get(key))
                                        for s in seeds]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ladder_cell(row):
    cells = [_pct(row, k, spread=False) for k in ("p@1", "macro_f1", "rare_macro_f1")]
    return " / ".join(cells) + f" ({row['n_runs']})"


def ladder_table(ladders):
    """The ablation ladders of several datasets side by side: ``ladders`` maps a dataset name
    to its records (ablation files with the compare files' full models, as for ``table``)."""
    cells = defaultdict(dict)
    for dataset, records in ladders.items():
        grouped = defaultdict(list)
        for (_, name, _), (r, _, _) in pooled_runs(records).items():
            grouped[name].append(r)
        for name, runs in grouped.items():
            cells[name][dataset] = _ladder_cell(C.summarize(runs, [])[0])
    datasets = list(ladders)
    lines = ["| variant | " + " | ".join(datasets) + " |", "|" + "---|" * (len(datasets) + 1)]
    for name in sorted(cells, key=lambda n: _sort_key((n,))):
        lines.append("| " + " | ".join([name] + [cells[name].get(d, "-") for d in datasets])
                     + " |")
    return "\n".join(lines)


def _is_scale_record(record):
    """Whether a JSON record comes from bench_scale.py (its runs time named steps)."""
    return "dataset" not in record and any("steps" in r for r in record["runs"])


def _attention(run, record):
    """What a scale run attended to: the resolved shortlist when the run recorded it,
    otherwise the --shortlist setting ('auto', 'none', K), or its code's default."""
    if "attended_labels" in run:
        return "every label" if run["attended_labels"] == 0 else f"shortlist {run['attended_labels']}"
    setting = run.get("shortlist") or record.get("settings", {}).get("shortlist")
    return {"none": "every label", None: "its code's default"}.get(setting, str(setting))


def _per_document(seconds):
    """Seconds per document to the millisecond; sub-millisecond rates (a GPU's) to 0.1 ms."""
    return f"{seconds:.3f}" if seconds >= 0.01 else f"{seconds:.4f}"


def _training_rate(train_step):
    """Training seconds per document; marked † where the file's rate includes the validation
    pass that ends the epoch (files written before bench_scale timed the batches alone)."""
    rate = _per_document(train_step["seconds_per_document"])
    return rate if "batches_seconds" in train_step else rate + " †"


def _scale_cells(name, run, record):
    """The growth table's cells for one finished bench_scale.py run."""
    steps = run["steps"]

    def seconds(*names):
        return f"{sum(steps[n]['seconds'] for n in names if n in steps):.1f}"

    def gb(step_name):
        return f"{steps[step_name]['peak_mb'] / 1024:.1f}"

    quality = run.get("quality") or {}
    return [f"{run['labels']:,}", f"{run['train_docs']:,}", _attention(run, record),
            seconds("tokenize", "mi"), seconds("ltr"), seconds("evidence_head"),
            _training_rate(steps["train"]), seconds("evidence_scale", "decision_rule"),
            f"{steps['fit_total']['seconds']:,.0f}", gb("fit_total"),
            _per_document(steps["predict"]["seconds_per_document"]), gb("predict"),
            gb("predict_proba"),
            " / ".join(f"{quality[k]:.1f}" for k in ("P@1", "P@5") if k in quality) or "-",
            f"`{name}` ({str(record.get('git_commit'))[:7]}{_scale_machine(run, record)})"]


def _scale_machine(run, record):
    """The source cell's note of a run that was not on this project's one-thread CPU setup:
    the GPU it trained on, and the cores its CPU steps had."""
    if not run.get("device_name"):
        return ""
    cores = (record.get("machine") or {}).get("cpu_count")
    return f", {run['device_name']}" + (f", {cores} cores" if cores else "")


def scale_table(records):
    """The growth table of bench_scale.py records: one row per finished shape and file,
    sorted by training documents then labels (training rates marked † include the epoch's
    validation pass over the carve)."""
    header = ["labels", "training docs", "attention", "tokenize + MI s", "L2R s", "head s",
              "training s/doc", "head's weight + rule s", "fit s", "fit peak GB",
              "`predict` s/doc", "`predict` peak GB", "`predict_proba` peak GB", "P@1 / P@5",
              "source"]
    rows = []
    for name, record in records:
        for run in record["runs"]:
            if run.get("status") == "ok":
                rows.append(((run["train_docs"], run["labels"]), _scale_cells(name, run, record)))
            else:
                print(f"{name}: {run['labels']} labels x {run['train_docs']} documents: "
                      f"{run.get('status')}, skipped", file=sys.stderr)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for _, cells in sorted(rows, key=lambda r: r[0])]
    return "\n".join(lines)


def _as_ladder_rows(compare_record):
    """A compare record's full PLANT and control runs, as ablation variants."""
    runs = [dict(r, variant=r["model"]) for r in compare_record["runs"]
            if r["model"] in ("plant", "control")]
    return dict(compare_record, runs=runs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="run_evidence.py JSON results")
    ap.add_argument("--ladder", action="store_true",
                    help="one table of the ablation ladders of every dataset given")
    args = ap.parse_args(argv)
    groups = defaultdict(list)
    scale = []
    for path in args.files:
        record = json.loads(Path(path).read_text())
        if not record.get("runs"):
            print(f"{path}: no runs, skipped", file=sys.stderr)
            continue
        if _is_scale_record(record):
            scale.append((Path(path).name, record))
            continue
        groups[(record["command"], record["dataset"]["name"])].append((Path(path).name, record))
    for (command, dataset), records in list(groups.items()):
        if command == "ablation":
            records[:0] = [(name, _as_ladder_rows(record))
                           for name, record in groups.get(("compare", dataset), [])]
    if args.ladder:
        ladders = {dataset: records for (command, dataset), records in sorted(groups.items())
                   if command == "ablation"}
        print("\n**The ablation ladder: P@1 / macro-F1 / rare-label macro-F1, mean over seeds "
              "(runs)**\n")
        print(ladder_table(ladders))
        return 0
    for (command, dataset), records in sorted(groups.items()):
        print(f"\n**{command}, {dataset}**\n")
        print(table(records))
        if command == "learning-curve":
            print(f"\n**{dataset}: PLANT minus control per seed (same subset), points; "
                  "(seeds where PLANT is ahead)**\n")
            print(paired_table(records))
        elif command == "ablation":
            print(f"\n**{dataset}: variant minus full PLANT of the same seed, points; "
                  "(seeds where the variant is ahead)**\n")
            print(ablation_paired_table(records))
    if scale:
        print("\n**bench_scale: time and peak memory by shape**\n")
        print(scale_table(scale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
