"""README.md's and docs/figures.md's figures are what benchmarks/results/ holds (make bench's JSON,
the last CI run), written by benchmarks/figures.py, never by hand."""

from __future__ import annotations

import copy
import importlib.util
import json

import pytest

from runconfig import REPO

spec = importlib.util.spec_from_file_location("figures", REPO / "benchmarks" / "figures.py")
figures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(figures)


def test_the_pages_hold_the_figures_of_the_results():
    for path, text in figures.pages(*figures.load_results()).items():
        assert path.read_text() == text, f"{path} drifted from benchmarks/results/: run `make figures`"


def test_each_figure_is_read_from_the_results():
    bench, ci = figures.load_results()
    changed = copy.deepcopy(bench)
    changed["cpu"]["default_path_ms"] = 12345.4
    changed["loop"]["overhead %"] = -42.0
    block = figures.table(changed, ci)
    assert "12345 ms" in block and "-42.0%" in block
    assert block != figures.table(bench, ci)


def test_a_missing_figure_names_the_file_and_the_key():
    bench, ci = figures.load_results()
    del bench["data"]["modern"]
    with pytest.raises(figures.MissingFigure, match=r"bench.json has no 'data.modern'.*make bench"):
        figures.table(bench, ci)


def test_the_ci_record_counts_pytests_closing_line():
    log = "collected 470 items\n....\n= 3 failed, 459 passed, 8 skipped, 1 error in 293.10s (0:04:53) =\n"
    record = figures.ci_record(log, 401.0)
    assert (record["passed"], record["failed"], record["skipped"]) == (459, 4, 8)
    assert (record["pytest_s"], record["total_s"]) == (293.1, 401.0)
    json.dumps(record)  # plain data
    with pytest.raises(ValueError, match="no pytest summary"):
        figures.ci_record("make: *** [test] Error 2\n", 1.0)
