"""The figures of README.md and docs/figures.md, written from what was measured, never typed by hand:
`make bench`'s JSON (benchmarks/results/bench.json) and the last `bash .ci/run` on a fresh clone
(benchmarks/results/ci.json, which .ci/run records).

    python benchmarks/figures.py                          # rewrite README.md's table and docs/figures.md
    python benchmarks/figures.py --record-ci LOG SECONDS  # .ci/run: the pytest summary of LOG -> ci.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
BEGIN = "<!-- figures:begin (written by `make figures` from benchmarks/results/*.json; do not edit) -->"
END = "<!-- figures:end -->"


class MissingFigure(KeyError):
    def __str__(self) -> str:
        file, key = self.args
        return f"{file} has no {key!r}: rerun what writes it (`make bench`, or `bash .ci/run` on a fresh clone)"


def figure(results: dict[str, Any], file: str, key: str) -> Any:
    """``results[a][b]...`` for the dotted ``key``; a key that is not there names the file and the key."""
    value: Any = results
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise MissingFigure(file, key)
        value = value[part]
    return value


# (what, how it reads from bench.json, the command that measures it)
BENCH_ROWS: list[tuple[str, Callable[[Callable[[str], Any]], str], str]] = [
    ("FCN-8s VGG16 at 500x500, batch 1, on the CPU: the default path (what `speed.runtime=auto` picks), "
     "its share of the machine's peak for its precision, its masks' agreement with fp32 eager",
     lambda f: (f"**{f('cpu.default_path')}**, {f('cpu.default_path_ms'):.0f} ms, "
                f"{100 * f('cpu.default_path_share_of_peak'):.0f}% of peak, {100 * f('cpu.default_path_agreement'):.3f}%"),
     "`make bench`"),
    ("the same, plain PyTorch port (padding 100, crops) vs fcn-lit's default path",
     lambda f: f"x{f('inference.headline.default speedup'):.2f}", "`make bench`"),
    ("int8 (OpenVINO, NNCF) vs fp32 eager; its mean IU cost on the quickstart model",
     lambda f: f"x{f('cpu.int8_speedup_vs_fp32'):.2f}; {f('cpu.int8_mean_iu_drop'):.2f} points", "`make bench`"),
    ("one training step, FCN-8s VGG16, plain PyTorch port vs fcn-lit",
     lambda f: f"{f('train.plain PyTorch (port, fp32) step ms'):.0f} ms vs {f('train.fcn-lit step ms'):.0f} ms",
     "`make bench`"),
    ("Lightning loop overhead against a bare PyTorch loop", lambda f: f"{f('loop.overhead %'):+.1f}%", "`make bench`"),
    ("data pipeline, modern augmentation, VOC-layout JPEGs, per worker",
     lambda f: f"{f('data.modern'):.0f} images/s", "`make bench`"),
    ("metric update, 8 x 21 x 500 x 500, from class indices (vs score.py's numpy)",
     lambda f: f"{f('metrics.update(indices) ms'):.1f} ms (x{f('metrics.ratio'):.2f})", "`make bench`"),
    ("quickstart model (reduced FCN-8s, synthetic set), val mean IU in fp32",
     lambda f: f"{f('cpu.quickstart.mean_iu_fp32'):.2f}", "`make bench`"),
]


def table(bench: dict[str, Any], ci: dict[str, Any]) -> str:
    """The Figures block: where and when each source was measured, then one row per figure."""
    b = partial(figure, bench, "benchmarks/results/bench.json")
    c = partial(figure, ci, "benchmarks/results/ci.json")
    suite = (f"{c('passed')} passed, {c('failed')} failed, {c('skipped')} skipped; pytest {c('pytest_s') / 60:.1f} min, "
             f"the whole run {c('total_s') / 60:.1f} min")
    lines = [
        f"Benchmarks: `make bench` on {b('machine')}. Test suite: `bash .ci/run` on a fresh clone, "
        f"{c('date')}, {c('machine')}.",
        "",
        "| what | figure | command |",
        "|---|---|---|",
        *(f"| {what} | {read(b)} | {command} |" for what, read, command in BENCH_ROWS),
        f"| test suite | {suite} | `bash .ci/run` |",
    ]
    return "\n".join(lines)


def replace_block(text: str, block: str, where: Path) -> str:
    if BEGIN not in text or END not in text:
        raise ValueError(f"{where} has no figures block: put {BEGIN!r} and {END!r} where the table goes")
    head, rest = text.split(BEGIN, 1)
    return f"{head}{BEGIN}\n{block}\n{END}{rest.split(END, 1)[1]}"


def pages(bench: dict[str, Any], ci: dict[str, Any]) -> dict[Path, str]:
    """README.md and docs/figures.md as they must read for these results."""
    block = table(bench, ci)
    readme = REPO / "README.md"
    doc = REPO / "docs" / "figures.md"
    return {readme: replace_block(readme.read_text(), block, readme), doc: replace_block(doc.read_text(), block, doc)}


def load_results() -> tuple[dict[str, Any], dict[str, Any]]:
    return tuple(json.loads((RESULTS / name).read_text()) for name in ("bench.json", "ci.json"))  # type: ignore[return-value]


SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|errors?)")


def ci_record(log: str, total_s: float) -> dict[str, Any]:
    """The counts of pytest's closing line in ``log`` (e.g. `462 passed, 8 skipped in 293.1s`)."""
    closing = [line for line in log.splitlines() if re.search(r"\d+ (passed|failed)", line) and " in " in line]
    if not closing:
        raise ValueError("the log has no pytest summary line ('N passed ... in S s')")
    line = closing[-1]
    counts = {kind.rstrip("s") if kind.startswith("error") else kind: int(n) for n, kind in SUMMARY.findall(line)}
    seconds = re.search(r" in ([\d.]+)s", line)
    cpu = next((row.split(":", 1)[1].strip() for row in Path("/proc/cpuinfo").read_text().splitlines()
                if row.startswith("model name")), platform.processor())
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{cpu}, {os.cpu_count()} cores",
        "passed": counts.get("passed", 0),
        "failed": counts.get("failed", 0) + counts.get("error", 0),
        "skipped": counts.get("skipped", 0),
        "pytest_s": float(seconds.group(1)) if seconds else None,
        "total_s": total_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record-ci", nargs=2, metavar=("LOG", "SECONDS"),
                        help="record the pytest summary of LOG and the run's SECONDS in benchmarks/results/ci.json")
    args = parser.parse_args()
    if args.record_ci:
        log, seconds = args.record_ci
        record = ci_record(Path(log).read_text(), float(seconds))
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "ci.json").write_text(json.dumps(record, indent=2) + "\n")
        print(f"Recorded {record['passed']} passed, {record['failed']} failed in {RESULTS / 'ci.json'}")
        return
    for path, text in pages(*load_results()).items():
        path.write_text(text)
        print(f"Wrote the figures of {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
