"""Markdown tables from run_evidence.py results, for docs/benchmarks.md.

Several JSON files of the same dataset and subcommand are merged into one table (for example
the neural models from a GPU run and LibMultiLabel from a CPU run on the same split); every row
names the file it came from, so the provenance stays visible::

    python benchmarks/tables.py benchmarks/results/compare_reuters_*.json
    python benchmarks/tables.py benchmarks/results/learning-curve_codiesp_*.json

For learning curves a second table gives PLANT minus the control per seed: both saw the same
training subset, so the paired difference removes the luck of the draw that both share.

Figures are percentages, mean ± standard deviation over the seeds of the run (no ± when there
was a single run).
"""

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

COLUMNS = (("p@1", "P@1"), ("p@5", "P@5"), ("ndcg@5", "nDCG@5"), ("psp@5", "PSP@5"),
           ("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"), ("rare_macro_f1", "rare macro-F1"))
# Learning curves only: rare labels counted in each run's own training subset.
SUBSET_COLUMNS = (("subset_rare_macro_f1", "rare macro-F1 (own subset)"),)
ORDER = ("plant", "control", "linear_svc", "lml_thresholding", "lml_1vsrest", "lml_bigru_lwan",
         "prior")


def _pct(row, key):
    value = row.get(key)
    if value is None:
        return "-"
    std = row.get(f"{key}_std")
    if row.get("n_runs", 1) > 1 and std is not None:
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


def table(records):
    """One markdown table for records of the same dataset and subcommand."""
    grouped = "fraction" in records[0][1]["summary"][0] if records[0][1]["summary"] else False
    columns = COLUMNS + (SUBSET_COLUMNS if grouped else ())
    header = (["training docs"] if grouped else []) + ["model", "runs"] + [c[1] for c in columns] \
        + ["fit s", "peak MB", "source"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows = {}
    for name, record in records:
        for row in record["summary"]:
            if row.get("status", "ok") != "ok" or row.get("p@1") is None:
                continue
            key = ((_subset_docs(record, row["fraction"]),) if grouped else ()) + (row["model"],)
            rows[key] = (row, name, record)
    for key in sorted(rows, key=_sort_key):
        row, name, record = rows[key]
        cells = ([str(key[0])] if grouped else []) + [row["model"], str(row.get("n_runs", 1))]
        cells += [_pct(row, k) for k, _ in columns]
        cells += [f"{row.get('fit_seconds', 0):.0f}", f"{row.get('peak_rss_mb', 0):.0f}",
                  f"`{name}` ({_machine(record)})"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


PAIRED_METRICS = (("p@1", "P@1"), ("p@5", "P@5"), ("macro_f1", "macro-F1"),
                  ("rare_macro_f1", "rare macro-F1"),
                  ("subset_rare_macro_f1", "rare macro-F1 (own subset)"))


def paired_table(records, first="plant", second="control"):
    """``first`` minus ``second`` per (fraction, seed) of learning-curve runs.

    Both models of a seed saw the same training subset, so the difference per seed removes the
    subset's own luck, which dominates the spread of either model over seeds. Cells: mean ±
    standard deviation of the differences in points, and how many seeds ``first`` was ahead.
    """
    runs = {}
    sizes = {}
    for _, record in records:
        for r in record["runs"]:
            if r.get("status") == "ok" and r["model"] in (first, second):
                runs[(r["fraction"], r["seed"], r["model"])] = r["metrics"]
                sizes[r["fraction"]] = r.get("n_train_docs") or r["fraction"]
    header = ["training docs", "seeds"] + [name for _, name in PAIRED_METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for f in sorted({f for f, _, m in runs if m == first}):
        seeds = sorted(s for g, s, m in runs if g == f and m == first and (f, s, second) in runs)
        if not seeds:
            continue
        cells = [f"{sizes[f]} ({100 * f:g}%)", str(len(seeds))]
        for key, _ in PAIRED_METRICS:
            pairs = [(runs[(f, s, first)].get(key), runs[(f, s, second)].get(key)) for s in seeds]
            d = [100 * (a - b) for a, b in pairs if a is not None and b is not None]
            if not d:
                cells.append("-")
                continue
            std = statistics.stdev(d) if len(d) > 1 else 0.0
            cells.append(f"{statistics.mean(d):+.1f} ± {std:.1f} ({sum(x > 0 for x in d)}/{len(d)})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="run_evidence.py JSON results")
    args = ap.parse_args(argv)
    groups = defaultdict(list)
    for path in args.files:
        record = json.loads(Path(path).read_text())
        if not record.get("summary"):
            print(f"{path}: no summary (unfinished run?), skipped", file=sys.stderr)
            continue
        groups[(record["command"], record["dataset"]["name"])].append((Path(path).name, record))
    for (command, dataset), records in sorted(groups.items()):
        print(f"\n**{command}, {dataset}**\n")
        print(table(records))
        if command == "learning-curve":
            print(f"\n**{dataset}: PLANT minus control per seed (same subset), points; "
                  "(seeds where PLANT is ahead)**\n")
            print(paired_table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
