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
held-out precision. ``calibration.py``, ``bench_distributed.py`` and ``bench_gpu.py`` files
make their own tables.

``--encoders`` sets PLANT and its control on each text encoder (``--set encoder=...``) beside
the default BiGRU's runs, a row per dataset, training size and setup::

    python benchmarks/tables.py --encoders benchmarks/results/*_minilm_2026*.json \
        benchmarks/results/compare_codiesp_20261204-163644.json
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


def _md_row(cells):
    """One markdown table row."""
    return "| " + " | ".join(cells) + " |"


def _md_head(header):
    """A markdown table's header row and rule."""
    return [_md_row(header), "|" + "---|" * len(header)]


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


def _signature(record, any_commit=False):
    """Code and model settings of a record: runs pool across files only when these agree
    (with ``any_commit``, the settings alone)."""
    settings = record.get("settings", {})
    code = (None, None) if any_commit else (record.get("git_commit"), record.get("git_dirty"))
    return code + (json.dumps(settings.get("plant_params"), sort_keys=True),)


def pooled_runs(records, any_commit=False):
    """Finished runs of all records, one per (fraction, model or variant, seed).

    Runs of one experiment may be split over files (seeds run side by side, each in its own
    process); they are pooled so that mean and spread cover every seed, but only across files
    of the same commit and model settings. For each row the last file given decides which
    files those are; files of other code or settings are left out of that row (a comparator
    rerun elsewhere, or an older run of the same model, replaces instead of mixing in). A run
    repeated with the same seed is taken from the later file. ``any_commit`` pools files of
    the same settings whatever their commit: only for commits whose differences leave the
    measured code path alone, and the docs must say so.
    """
    by_row = defaultdict(list)
    for name, record in records:
        for r in record["runs"]:
            if r.get("status") == "ok":
                by_row[(r.get("fraction"), _row_name(r))].append((r, name, record))
    pooled = {}
    for (fraction, row_name), entries in by_row.items():
        keep = _signature(entries[-1][2], any_commit)
        for r, name, record in entries:
            if _signature(record, any_commit) == keep:
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
    lines = _md_head(header)
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
        lines.append(_md_row(cells))
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
    lines = _md_head(header)
    for f in sorted({f for f, _, m in runs if m == first}):
        seeds = sorted(s for g, s, m in runs if g == f and m == first and (f, s, second) in runs)
        if not seeds:
            continue
        cells = [f"{sizes[f]} ({100 * f:g}%)", str(len(seeds))]
        for key, _ in PAIRED_METRICS:
            cells.append(_paired_cells(
                [(runs[(f, s, first)].get(key), runs[(f, s, second)].get(key)) for s in seeds]))
        lines.append(_md_row(cells))
    return "\n".join(lines)


def ablation_paired_table(records, reference="plant"):
    """Each ablation variant minus full PLANT of the same seed, in points."""
    runs = {(name, seed): r["metrics"] for (_, name, seed), (r, _, _) in pooled_runs(records).items()}
    header = ["variant", "seeds"] + [name for _, name in PAIRED_METRICS[:4]]
    lines = _md_head(header)
    variants = list(dict.fromkeys(name for name, _ in runs if name != reference))
    for v in variants:
        seeds = sorted(s for name, s in runs if name == v and (reference, s) in runs)
        if not seeds:
            continue
        cells = [v, str(len(seeds))]
        for key, _ in PAIRED_METRICS[:4]:
            cells.append(_paired_cells([(runs[(v, s)].get(key), runs[(reference, s)].get(key))
                                        for s in seeds]))
        lines.append(_md_row(cells))
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
    lines = _md_head(["variant"] + datasets)
    for name in sorted(cells, key=lambda n: _sort_key((n,))):
        lines.append(_md_row([name] + [cells[name].get(d, "-") for d in datasets]))
    return "\n".join(lines)


def _is_scale_record(record):
    """Whether a JSON record comes from bench_scale.py (its runs time named steps)."""
    return "dataset" not in record and any("steps" in r for r in record.get("runs") or ())


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
    lines = _md_head(header)
    lines += [_md_row(cells) for _, cells in sorted(rows, key=lambda r: r[0])]
    return "\n".join(lines)


def _encoder_name(record):
    """The text encoder a record's PLANT runs used: the model folder's name (its parent's when
    the folder is a package's ``model``), or the default BiGRU."""
    encoder = (record.get("settings", {}).get("plant_params") or {}).get("encoder")
    if not encoder:
        return "BiGRU"
    path = Path(str(encoder))
    return path.parent.name if path.name == "model" and path.parent.name else path.name


def _start_and_setup(row_name):
    """('planted' or 'random start', the rest of the model) of a PLANT model or ladder rung."""
    start, _, setup = row_name.partition("_")
    return ("planted" if start == "plant" else "random start"), setup or "default"


def encoder_table(records, any_commit=False):
    """PLANT and its control on each text encoder, side by side: a row per dataset, training
    size and model setup, for each encoder the planted and random-start P@1 / macro-F1
    (mean ± sd over seeds) and the mean fit seconds of both starts. Learning-curve, compare
    and ablation files may be mixed; runs pool per encoder, command and dataset."""
    groups = defaultdict(list)
    for name, record in records:
        groups[(_encoder_name(record), record["command"], record["dataset"]["name"])].append(
            (name, record))
    encoders = list(dict.fromkeys(e for e, _, _ in groups))
    cells = defaultdict(dict)
    for (encoder, _, dataset), group in groups.items():
        by_row = defaultdict(list)
        for (_, row_name, _), (r, _, _) in pooled_runs(group, any_commit).items():
            if row_name.startswith(("plant", "control")):
                by_row[(dataset, r["n_train_docs"], *_start_and_setup(row_name))].append(r)
        for (dataset, docs, start, setup), runs in by_row.items():
            cells[(dataset, docs, setup)][(encoder, start)] = runs
    header = ["dataset", "training docs", "model"]
    header += [f"{e} {start}" for e in encoders for start in ("planted", "random start")]
    header += ["fit s, " + " / ".join(encoders)]
    lines = _md_head(header)
    for key in sorted(cells, key=lambda k: (k[2] != "default", k[0], k[1], k[2])):
        row = [key[0], f"{key[1]:,}", key[2]]
        fits = []
        for e in encoders:
            both = []
            for start in ("planted", "random start"):
                runs = cells[key].get((e, start))
                if not runs:
                    row.append("-")
                    continue
                both += runs
                summary = C.summarize(runs, [])[0]
                row.append(f"{_pct(summary, 'p@1')} / {_pct(summary, 'macro_f1')} "
                           f"({summary['n_runs']})")
            fits.append(f"{statistics.mean(r['fit_seconds'] for r in both):.0f}" if both else "-")
        lines.append(_md_row(row + [" / ".join(fits)]))
    return "\n".join(lines)


def _is_calibration_record(record):
    return any("ece" in r for r in record.get("runs") or ())


def calibration_table(records):
    """calibration.py records: a row per dataset and seed with the expected calibration error
    of ``predict_proba`` and of the logits' sigmoid (all pairs; pairs given >= 0.01), the
    micro / macro-F1 of each decision rule, and P@1 ranked by the logits and by probability."""
    header = ["dataset", "seed", "dev docs", "ECE `predict_proba`", "ECE sigmoid",
              "same, pairs >= 0.01: calibrated", "sigmoid", "`predict` micro / macro-F1",
              "sigmoid >= 0.5", "one isotonic cut >= 0.5", "P@1 by logits / by proba",
              "source"]
    lines = _md_head(header)
    for name, record in records:
        for run in record["runs"]:
            ece, rules, ranking = run["ece"], list(run["rules"].values()), run["ranking"]
            cells = [record["dataset"], str(run["seed"]), f"{run['n_dev']:,}"]
            cells += [f"{100 * ece[k]:.2f}" for k in ("calibrated", "raw_sigmoid")]
            cells += [f"{100 * ece[k]:.1f}" for k in ("calibrated_01", "raw_sigmoid_01")]
            cells += [f"{100 * rule['micro_f1']:.1f} / {100 * rule['macro_f1']:.1f}"
                      for rule in rules]
            cells.append(f"{100 * ranking['decision_function']['1']:.1f} / "
                         f"{100 * ranking['predict_proba']['1']:.1f}")
            cells.append(f"`{name}` ({str(record.get('git_commit'))[:7]})")
            lines.append(_md_row(cells))
    return "\n".join(lines)


def _is_distributed_record(record):
    return "train_speedup" in record


def distributed_table(records):
    """bench_distributed.py records: one process against N on the same corpus."""
    header = ["corpus", "processes", "training, 1 process (s)", "N processes (s)", "speed-up",
              "whole fit 1 / N (s)", "max weight difference", "max probability difference",
              "ranks identical", "source"]
    lines = _md_head(header)
    for name, r in records:
        s = r["settings"]
        low, high = s["length"]
        corpus = (f"{s['docs']:,} documents of {low}-{high} words, {s['labels']} labels, "
                  f"{s['epochs']} epoch{'s' if s['epochs'] > 1 else ''}")
        n = r["processes"]
        cells = [corpus, str(n), f"{r['train_seconds_one_process']:.1f}",
                 f"{r[f'train_seconds_{n}_processes']:.1f}", f"**{r['train_speedup']:.2f}x**",
                 f"{r['fit_seconds_one_process']:.1f} / {r[f'fit_seconds_{n}_processes']:.1f}",
                 f"{r['max_weight_difference']:.1e}", f"{r['max_probability_difference']:.1e}",
                 str(r["ranks_identical"]), f"`{name}` ({str(r.get('git_commit'))[:7]})"]
        lines.append(_md_row(cells))
    return "\n".join(lines)


def _is_gpu_record(record):
    return "devices" in record and "device_name" in record


def gpu_table(records):
    """bench_gpu.py records: the same fit on the GPU and on the host's CPU cores."""
    header = ["dataset", "fit GPU / CPU s", "training GPU / CPU s", "speed-up fit / training",
              "predict test GPU / CPU s", "test P@1 GPU / CPU", "saved on GPU, loaded on CPU: "
              "max probability difference", "source"]
    lines = _md_head(header)
    for name, r in records:
        gpu, cpu = r["devices"]["cuda"], r["devices"].get("cpu")
        devices = [gpu] + ([cpu] if cpu else [])

        def both(value, fmt="{:.1f}"):
            return " / ".join(fmt.format(value(d)) for d in devices)

        speedup = (f"{cpu['fit_seconds'] / gpu['fit_seconds']:.1f}x / "
                   f"{cpu['stage_seconds']['train'] / gpu['stage_seconds']['train']:.1f}x"
                   if cpu else "-")
        iters = r["settings"].get("max_iter")
        cells = [f"{r['dataset']} (`max_iter={iters}`)", both(lambda d: d["fit_seconds"]),
                 both(lambda d: d["stage_seconds"]["train"]), speedup,
                 both(lambda d: d["predict_seconds"]), both(lambda d: 100 * d["p@1"]),
                 f"{r['max_diff_loaded_on_cpu']:.1e}",
                 f"`{name}` ({str(r.get('git_commit'))[:7]}, {r['device_name']}, "
                 f"{(r.get('machine') or {}).get('cpu_count', '?')} cores)"]
        lines.append(_md_row(cells))
    return "\n".join(lines)


def _as_ladder_rows(compare_record):
    """A compare record's full PLANT and control runs, as ablation variants."""
    runs = [dict(r, variant=r["model"]) for r in compare_record["runs"]
            if r["model"] in ("plant", "control")]
    return dict(compare_record, runs=runs)


# Records of the other benchmark scripts: (recognises a record, table title, table maker), in
# the order their tables are printed. A record none of these recognise is a run_evidence.py one.
OTHER_KINDS = (
    (_is_scale_record, "bench_scale: time and peak memory by shape", scale_table),
    (_is_calibration_record, "calibration on dev data (%)", calibration_table),
    (_is_distributed_record, "bench_distributed: one process against several", distributed_table),
    (_is_gpu_record, "bench_gpu: the same fit on the GPU and on the CPU", gpu_table),
)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="run_evidence.py JSON results")
    ap.add_argument("--ladder", action="store_true",
                    help="one table of the ablation ladders of every dataset given")
    ap.add_argument("--encoders", action="store_true",
                    help="one table of PLANT and its control on each text encoder given")
    ap.add_argument("--any-commit", action="store_true",
                    help="pool runs of the same settings across commits (only where the "
                         "commits leave the measured code path alone)")
    args = ap.parse_args(argv)
    groups = defaultdict(list)
    other = {kind: [] for kind in OTHER_KINDS}
    everything = []
    for path in args.files:
        name, record = Path(path).name, json.loads(Path(path).read_text())
        kind = next((k for k in OTHER_KINDS if k[0](record)), None)
        if kind is not None:
            other[kind].append((name, record))
        elif not record.get("runs"):
            print(f"{path}: no runs, skipped", file=sys.stderr)
        else:
            groups[(record["command"], record["dataset"]["name"])].append((name, record))
            everything.append((name, record))
    if args.encoders:
        print("\n**PLANT and its control by text encoder: P@1 / macro-F1 (runs)**\n")
        print(encoder_table(everything, args.any_commit))
        return 0
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
    for (_, title, make_table), records in other.items():
        if records:
            print(f"\n**{title}**\n")
            print(make_table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
