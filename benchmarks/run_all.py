"""Run every benchmark, one after another, and print one table of their figures.

    python benchmarks/run_all.py            # what `make bench` runs (each script's --quick size)
    python benchmarks/run_all.py --full     # the scripts' full sizes

Columns: figure, target, median, spread (min-max over the ABBA rounds), met, quiet.
Run it alone on an idle machine: a figure measured under load is noise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [  # (script, quick arguments)
    ("translate.py", ["--quick"]),
    ("build.py", ["--quick"]),
    ("corpus.py", []),
    ("train.py", ["--quick"]),
    ("evaluate.py", []),
    ("faults.py", ["--quick"]),
]


def last_json(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def rows_of(name: str, summary: dict) -> list[list[str]]:
    quiet = "yes" if summary.get("quiet") else "NO"
    rows = []
    for figure, f in (summary.get("figures") or {}).items():
        target = f.get("target")
        met = "-"
        if target is not None:
            better = f.get("higher_is_better", True)
            met = "yes" if (f["median"] >= target if better else f["median"] <= target) else "NO"
        arrow = ">=" if f.get("higher_is_better", True) else "<="
        rows.append([f"{name}:{figure}", f"{arrow} {target}" if target is not None else "-", f"{f['median']:.3f}",
                     f"{f['min']:.3f}-{f['max']:.3f}", met, quiet])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the scripts' full sizes, not --quick")
    parser.add_argument("--only", help="comma-separated script names, e.g. translate,build")
    args = parser.parse_args(argv)
    wanted = set(args.only.split(",")) if args.only else None
    table = [["figure", "target", "median", "spread", "met", "quiet"]]
    failed = []
    for script, quick in SCRIPTS:
        name = script[:-3]
        if wanted and name not in wanted:
            continue
        command = [sys.executable, str(HERE / script), *([] if args.full else quick)]
        print(f"$ {' '.join(command)}", file=sys.stderr, flush=True)
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        summary = last_json(done.stdout)
        if done.returncode != 0 or summary is None:
            failed.append(name)
            table.append([f"{name}: FAILED (exit {done.returncode})", "", "", "", "", ""])
            continue
        table.extend(rows_of(name, summary))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
