"""The plantlearn command line: fit / predict / evaluate / explain round trips, errors, demo."""

import csv
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from plantlearn import PlantClassifier
from plantlearn.cli import main, parse_assignments, parse_value
from plantlearn.datasets import make_multilabel_text

# Tiny settings for every fit; --threads 1 because the test machine is shared.
TINY = ["--set", "max_iter=1", "--set", "embed_dim=16", "--set", "hidden_size=16",
        "--set", "max_length=32", "--set", "ltr__max_iter=2", "--set", "ltr__n_factors=8",
        "--set", "random_state=0"]
NAMES = ["grain", "wheat", "ship", "crude", "trade"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    X, Y = make_multilabel_text(n_samples=140, n_labels=5, length=(15, 40), vocab_size=300,
                                random_state=0)
    labels = [[NAMES[j] for j in Y[i].indices] for i in range(len(X))]
    out = {}
    for split, sl in (("train", slice(0, 100)), ("test", slice(100, 140))):
        path = root / f"{split}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for i in range(len(X))[sl]:
                fh.write(json.dumps({"id": f"d{i}", "text": X[i], "labels": labels[i]}) + "\n")
        out[split] = path
        path = root / f"{split}.csv"
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["doc", "body", "tags"])
            for i in range(len(X))[sl]:
                writer.writerow([f"d{i}", X[i], "|".join(labels[i])])
        out[split + "_csv"] = path
    # Documents to predict need no labels.
    path = root / "new.jsonl"
    path.write_text("".join(json.dumps({"id": k, "text": X[k]}) + "\n" for k in range(3)))
    out["new"] = path
    out["root"] = root
    return out


@pytest.fixture(scope="module")
def model(files):
    path = files["root"] / "model"
    assert main(["--threads", "1", "fit", str(files["train"]), "--model", str(path), "--quiet",
                 *TINY]) == 0
    return path


def test_fit_saves_nested_parameters(model):
    params = json.loads((model / "params.json").read_text())
    assert params["params"]["max_iter"] == 1
    assert params["params"]["ltr"]["params"]["n_factors"] == 8
    assert sorted(params["classes"]["values"]) == sorted(NAMES)


def test_predict(files, model, capsys):
    out = files["root"] / "pred.jsonl"
    assert main(["--threads", "1", "predict", "--model", str(model), str(files["new"]),
                 "--output", str(out), "--top-k", "3"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == [0, 1, 2]
    clf = PlantClassifier.load(model)
    texts = [json.loads(line)["text"] for line in files["new"].read_text().splitlines()]
    proba = clf.predict_proba(texts)
    for i, r in enumerate(records):
        assert set(r) == {"id", "labels", "probabilities", "predicted", "threshold"}
        assert len(r["labels"]) == 3 and set(r["labels"]) <= set(NAMES)
        # The model's calibrated probabilities; predicted exactly where they reach the
        # threshold (labels ranked by the model's ranking scores).
        columns = [list(clf.classes_).index(lab) for lab in r["labels"]]
        np.testing.assert_allclose(r["probabilities"], proba[i, columns], atol=1e-6)
        assert r["threshold"] == clf.threshold_ == 0.5
        assert set(r["predicted"]) == {c for c, p in zip(clf.classes_, proba[i]) if p >= 0.5}
        assert r["predicted"] == clf.predict([texts[i]])[0]
    # Without --output the records go to stdout.
    capsys.readouterr()
    assert main(["predict", "--model", str(model), str(files["new"]), "--top-k", "99"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and len(json.loads(lines[0])["labels"]) == len(NAMES)


def test_evaluate(files, model, capsys):
    assert main(["evaluate", "--model", str(model), str(files["test"]),
                 "--train", str(files["train"]), "--k", "1,3"]) == 0
    out = capsys.readouterr().out
    for name in ("P@1", "P@3", "nDCG@1", "nDCG@3", "micro-F1", "macro-F1", "bucket", "recall_at_k"):
        assert name in out


def test_explain(files, model, capsys):
    # A missing folder is an error (nothing created), not a silent mkdir.
    page = files["root"] / "report" / "explain.html"
    assert main(["explain", "--model", str(model), str(files["test"]), "--html", str(page),
                 "--limit", "2", "--top-labels", "2"]) == 2
    assert "folder" in capsys.readouterr().err and not page.parent.exists()
    page.parent.mkdir()
    assert main(["explain", "--model", str(model), str(files["test"]), "--html", str(page),
                 "--limit", "2", "--top-labels", "2"]) == 0
    text = page.read_text(encoding="utf-8")
    root = ET.fromstring(text.replace("<!DOCTYPE html>", "", 1))
    assert len(root.findall(".//section")) == 2
    assert "d100" in text  # document ids from the file


def test_csv_round_trip(files, capsys):
    path = files["root"] / "model_csv"
    cols = ["--text-column", "body", "--label-column", "tags", "--label-sep", "|",
            "--id-column", "doc"]
    assert main(["--threads", "1", "fit", str(files["train_csv"]), "--model", str(path), "--quiet",
                 *TINY, *cols, "--validation-file", str(files["test_csv"])]) == 0
    err = capsys.readouterr().err
    assert "validation file" in err and "P@1" in err
    out = files["root"] / "pred_csv.jsonl"
    assert main(["predict", "--model", str(path), str(files["test_csv"]), "--output", str(out),
                 *cols]) == 0
    first = json.loads(out.read_text().splitlines()[0])
    assert first["id"] == "d100" and set(first["labels"]) <= set(NAMES)
    assert main(["evaluate", "--model", str(path), str(files["test_csv"]), *cols]) == 0
    assert "P@5" in capsys.readouterr().out


def test_unknown_parameter_exits_2(files, tmp_path, capsys):
    code = main(["fit", str(files["train"]), "--model", str(tmp_path / "m"),
                 "--set", "no_such_param=3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no_such_param" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_invalid_value_exits_2(files, tmp_path, capsys):
    code = main(["fit", str(files["train"]), "--model", str(tmp_path / "m"), "--quiet",
                 "--set", "max_iter=-1"])
    assert code == 2
    assert "max_iter" in capsys.readouterr().err


@pytest.mark.parametrize("command", [
    ["fit", "{missing}", "--model", "{tmp}/m"],
    ["predict", "--model", "{model}", "{missing}"],
    ["evaluate", "--model", "{model}", "{missing}"],
    ["explain", "--model", "{model}", "{missing}", "--html", "{tmp}/x.html"],
    ["predict", "--model", "{tmp}/no_model", "{new}"],
])
def test_missing_files_exit_2(command, files, model, tmp_path, capsys):
    subst = {"missing": str(tmp_path / "missing.jsonl"), "tmp": str(tmp_path),
             "model": str(model), "new": str(files["new"])}
    assert main([part.format(**subst) for part in command]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_malformed_files_exit_2(files, model, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "text": "ok", "labels": []}\n{not json\n')
    assert main(["fit", str(bad), "--model", str(tmp_path / "m")]) == 2
    assert "line 2" in capsys.readouterr().err
    assert main(["predict", "--model", str(model), str(bad)]) == 2
    assert "line 2" in capsys.readouterr().err
    no_col = tmp_path / "x.csv"
    no_col.write_text("a,b\n1,2\n")
    assert main(["fit", str(no_col), "--model", str(tmp_path / "m")]) == 2
    assert "--text-column" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(model), str(files["test"]), "--k", "x"]) == 2
    assert "--k" in capsys.readouterr().err


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["predict"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


def test_parse_values():
    assert parse_value("3") == 3 and isinstance(parse_value("3"), int)
    assert parse_value("0.5") == 0.5
    assert parse_value("True") is True and parse_value("false") is False
    assert parse_value("None") is None and parse_value("none") is None
    assert parse_value("gru") == "gru"
    assert parse_value("(1, 2)") == (1, 2)
    assert parse_assignments(["a=1", "ltr__n_factors=32", "s=x=y"]) == {
        "a": 1, "ltr__n_factors": 32, "s": "x=y"}
    with pytest.raises(ValueError, match="name=value"):
        parse_assignments(["oops"])


def test_demo_quick_subprocess():
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [sys.executable, "-m", "plantlearn", "--threads", "1", "demo", "--quick", "--quiet"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()
            if line.strip().startswith(("PLANT", "no planting"))}
    assert set(rows) == {"PLANT", "no"}
    for line in rows.values():
        numbers = [float(x) for x in line.split()[-4:]]  # P@1, P@5, macro-F1, seconds
        assert all(0.0 <= x <= 1.0 for x in numbers[:3])
    assert "P@1" in proc.stdout and "P@5" in proc.stdout and "macro-F1" in proc.stdout
