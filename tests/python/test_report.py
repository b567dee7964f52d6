"""`vitq report` and `vitq compare --html`: content and well-formedness of the HTML pages.

The pages are XHTML-compatible, so Python's XML parser checks that every element is closed and
every attribute quoted; the tests then look for what a reader needs in them.
"""
import json
import os
import xml.etree.ElementTree as ET

import pytest

from paths import CALIB, MODEL, VAL, cli as vitq

X = "{http://www.w3.org/1999/xhtml}"
SVG = "{http://www.w3.org/2000/svg}"


def parse(path):
    text = open(path, encoding="utf-8").read()
    assert text.startswith("<!DOCTYPE html>\n")
    assert "<script" not in text and "http://" not in text.replace(
        "http://www.w3.org/", "")  # self-contained: no scripts, no links out
    return ET.fromstring(text.split("\n", 1)[1])


def cells(table):
    return [[(c.text or "") for c in row] for row in table.iter(X + "tr")]


def text_of(root):
    return "".join(root.itertext())


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    r = vitq("quantize", MODEL, "--calib", CALIB, "--method", "minmax", "--calib-size", "2",
             "--out", str(d / "m.vitq"), "--report", str(d / "m.json"), "--quiet")
    assert r.returncode == 0, r.stderr
    return d


def test_quantization_report_shows_every_layer_and_how_it_was_made(quantized):
    rep = json.load(open(quantized / "m.json"))
    assert rep["run"]["method"] == "minmax" and rep["run"]["bits"] == "W8A8"
    assert "--calib-size 2" in rep["run"]["command"]
    r = vitq("report", str(quantized / "m.json"), "--out", str(quantized / "m.html"))
    assert r.returncode == 0, r.stderr
    root = parse(quantized / "m.html")
    assert root.find(f"{X}head/{X}title").text == "vitq quantization report: m.json"
    tables = list(root.iter(X + "table"))
    run = dict((row[0], row[1]) for row in cells(tables[0]))
    assert run["method"] == "minmax" and run["calib_size"] == "2"
    assert run["command"] == rep["run"]["command"]
    layers = [row[1] for row in cells(tables[2])[1:]]
    assert layers == [op["layer"] for op in rep["ops"]]
    mean_after = sum(op["similarity_after"] for op in rep["ops"]) / len(rep["ops"])
    assert "%.5f" % mean_after in text_of(tables[1])
    charts = list(root.iter(SVG + "svg"))
    assert len(charts) == 2  # similarity before/after, SQNR
    lines = list(charts[0].iter(SVG + "polyline"))
    assert len(lines) == 2 and len(lines[1].get("points").split()) == len(rep["ops"])
    assert "Mixed precision" not in text_of(root)


def test_mixed_precision_report_has_the_omega_table_and_pareto_curve(tmp_path):
    r = vitq("quantize", MODEL, "--calib", CALIB, "--method", "minmax", "--mixed-precision",
             "--target-bits", "6", "--calib-size", "2", "--out", str(tmp_path / "mp.vitq"),
             "--report", str(tmp_path / "mp.json"), "--quiet")
    assert r.returncode == 0, r.stderr
    mp = json.load(open(tmp_path / "mp.json"))["mixed_precision"]
    assert vitq("report", str(tmp_path / "mp.json"), "--out",
                str(tmp_path / "mp.html")).returncode == 0
    root = parse(tmp_path / "mp.html")
    omega = [t for t in root.iter(X + "table") if "nuclear norm" in text_of(t)][0]
    rows = list(omega.iter(X + "tr"))[1:]
    assert len(rows) == len(mp["modules"])
    for row, m in zip(rows, mp["modules"]):
        chosen = [c for c in row if c.get("class") == "chosen"]
        assert len(chosen) == 1 and row[-1].text == str(m["bits"])
        assert list(row).index(chosen[0]) == 3 + mp["candidates"].index(m["bits"])
    titles = [c.find(SVG + "title").text for c in root.iter(SVG + "svg")]
    assert any(t.startswith("Pareto curve") for t in titles)
    assert any(t == "Bits per module" for t in titles)


def test_compare_html_has_every_row(tmp_path):
    out = tmp_path / "c.html"
    r = vitq("compare", MODEL, "--calib", CALIB, "--data", VAL, "--methods", "minmax",
             "--bits", "8", "--calib-size", "2", "--limit", "8", "--html", str(out), "--json",
             "--quiet")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    root = parse(out)
    table = [t for t in root.iter(X + "table") if "top-1" in text_of(t)][0]
    rows = cells(table)[1:]
    assert [row[0] for row in rows] == [row["method"] for row in j["rows"]]
    assert [row[2] for row in rows] == ["%.4f" % row["top1"] for row in j["rows"]]
    assert len(list(root.iter(SVG + "circle"))) == len(j["rows"])
    # The JSON given to `vitq report` makes the same table.
    (tmp_path / "c.json").write_text(r.stdout)
    assert vitq("report", str(tmp_path / "c.json"), "--out", str(tmp_path / "c2.html")).returncode == 0
    assert cells([t for t in parse(tmp_path / "c2.html").iter(X + "table")
                  if "top-1" in text_of(t)][0]) == cells(table)


def test_text_is_escaped(tmp_path, quantized):
    rep = json.load(open(quantized / "m.json"))
    rep["ops"][0]["layer"] = "<script>alert(1)</script>&"
    rep["run"]["command"] = 'vitq "quoted" <b>\u0001'
    (tmp_path / "evil.json").write_text(json.dumps(rep))
    assert vitq("report", str(tmp_path / "evil.json"), "--out", str(tmp_path / "e.html")).returncode == 0
    text = open(tmp_path / "e.html").read()
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in text
    assert "vitq &quot;quoted&quot; &lt;b&gt;\ufffd" in text
    assert parse(tmp_path / "e.html") is not None


def test_bad_reports_exit_3_and_write_nothing(tmp_path, quantized):
    out = tmp_path / "out.html"
    cases = {
        "notjson.json": "{ not json",
        "other.json": json.dumps({"hello": 1}),
        "missingkey.json": json.dumps({"ops": [{"layer": "x"}]}),
        "badtype.json": json.dumps({"ops": [{"layer": 5, "bits_w": "<b>8</b>", "bits_x": 8,
                                             "similarity_before": 1, "similarity_after": 1,
                                             "sqnr_db": 30, "scale_w": 1, "scale_x": 1}]}),
        "nullops.json": json.dumps({"ops": None}),
        "objops.json": json.dumps({"ops": {}}),
        "nullrows.json": json.dumps({"rows": None}),
        "hugebits.json": json.dumps({"ops": [], "mixed_precision": {
            "candidates": [1e30], "modules": [], "size_bytes": 1, "budget_bytes": 1,
            "total_omega": 1}}),
        "array.json": "[1, 2]",
    }
    for name, content in cases.items():
        (tmp_path / name).write_text(content)
        r = vitq("report", str(tmp_path / name), "--out", str(out))
        assert r.returncode == 3, (name, r.stderr)
        assert name in r.stderr, r.stderr
        assert not out.exists()
    r = vitq("report", str(tmp_path / "missing.json"), "--out", str(out))
    assert r.returncode == 3 and "missing.json" in r.stderr
    r = vitq("report", str(quantized / "m.json"), "--out", str(tmp_path / "no-dir" / "x.html"))
    assert r.returncode == 3 and "does not exist" in r.stderr
    r = vitq("report", str(quantized / "m.json"), "--out", str(quantized / "m.json"))
    assert r.returncode == 3 and "refusing to overwrite an input" in r.stderr
    assert json.load(open(quantized / "m.json"))["ops"]  # untouched
