"""Run every benchmark, one after another, and print one table of their figures.

    python benchmarks/run_all.py                 # what `make bench` runs (each script's --quick size)
    python benchmarks/run_all.py --full          # the scripts' full sizes
    python benchmarks/run_all.py --only translate,build

Columns: figure, target, median, spread (min-max over the ABBA rounds), met, quiet (1-minute
load below 1 when the script started), others (the most CPU other processes took in any
timed round, as a share of all cores: a figure is a result only when this stays near 0%).
Before each script the runner waits (up to ``--settle`` seconds) for the 1-minute
load to fall below 1, so one script's own load does not mark the next one as
not quiet. Run it alone on an idle machine: a figure measured under load is noise.

Scripts print one JSON object as their last line: ``{"figures": ..., "quiet": ...}``
(``benchmarks/method.py``). ``faults.py`` prints its own keys (``kills``,
``identical``, ``valid``, ``redone_shards``, ``leftover_files``); they are shown as
rows too. A script that is not there is listed as missing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from method import QUIET_LOAD, machine_state, wait_until_quiet  # noqa: E402

SCRIPTS = [  # (script, quick arguments)
    ("translate.py", ["--quick"]),
    ("build.py", ["--quick"]),
    ("corpus.py", ["--quick"]),
    ("export.py", ["--quick"]),
    ("train.py", ["--quick"]),
    ("evaluate.py", ["--quick"]),
    ("faults.py", ["--quick"]),
]
# faults.py's keys (counts over its kills): what each must be ("kills": every kill; None: shown only).
FAULT_KEYS = {"kills": None, "identical": "kills", "valid": "kills", "redone_shards": 0, "leftover_files": 0}


def last_json(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def _number(value: float) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def others(summary: dict) -> str:
    share = (summary.get("machine") or {}).get("others_cpu_share_max")
    return "-" if share is None else f"{share:.0%}"


def figure_rows(name: str, summary: dict) -> list[list[str]]:
    quiet = quiet_of(summary)
    rows = []
    for figure, f in (summary.get("figures") or {}).items():
        target = f.get("target")
        better = f.get("higher_is_better", True)
        met = "-"
        if target is not None:
            met = "yes" if (f["median"] >= target if better else f["median"] <= target) else "NO"
        unit = f.get("unit", "x")
        unit = "" if unit in ("x", "") else f" {unit}"
        rows.append([f"{name}:{figure}", f"{'>=' if better else '<='} {target}" if target is not None else "-",
                     f"{_number(f['median'])}{unit}", f"{_number(f['min'])}-{_number(f['max'])}", met, quiet,
                     others(summary)])
    return rows


def quiet_of(summary: dict) -> str:
    """The script's quiet flag, or the 1-minute load at its start when it reports only that."""
    if "quiet" in summary:
        return "yes" if summary["quiet"] else "NO"
    load = ((summary.get("machine") or {}).get("start") or {}).get("load1")
    return "-" if load is None else ("yes" if load < QUIET_LOAD else "NO")


def fault_rows(name: str, summary: dict) -> list[list[str]]:
    """faults.py's keys as rows: value in the median column, and whether it is what it must be."""
    quiet = quiet_of(summary)
    rows = []
    for key, must in FAULT_KEYS.items():
        if key not in summary:
            continue
        value = summary[key]
        expected = summary.get("kills") if must == "kills" else must
        met = "-" if must is None else ("yes" if value == expected else "NO")
        target = "-" if must is None else f"= {expected}" + (" (kills)" if must == "kills" else "")
        rows.append([f"{name}:{key}", target, json.dumps(value), "-", met, quiet, others(summary)])
    return rows


def rows_of(name: str, summary: dict) -> list[list[str]]:
    rows = figure_rows(name, summary)
    if any(key in summary for key in FAULT_KEYS):
        rows += fault_rows(name, summary)
    if not rows:
        rows.append([f"{name}: no figures in its JSON", "", "", "", "", "", ""])
    return rows


def print_table(table: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip(), flush=True)
        if i == 0:
            print("  ".join("-" * w for w in widths), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the scripts' full sizes, not --quick")
    parser.add_argument("--only", help="comma-separated script names, e.g. translate,build")
    parser.add_argument("--settle", type=float, default=240.0,
                        help=f"seconds to wait at most, before each script, for the 1-minute load to fall "
                        f"below {QUIET_LOAD} (default 240)")
    parser.add_argument("--json-dir", default="out/benchmarks",
                        help="where each script's JSON is kept (default out/benchmarks; '' keeps none)")
    args = parser.parse_args(argv)
    wanted = set(args.only.split(",")) if args.only else None
    table = [["figure", "target", "median", "spread", "met", "quiet", "others"]]
    failed = []
    started = time.perf_counter()
    for script, quick in SCRIPTS:
        name = script[:-3]
        if wanted and name not in wanted:
            continue
        if not (HERE / script).is_file():
            table.append([f"{name}: missing ({script} is not in benchmarks/)", "", "", "", "", "", ""])
            continue
        state = wait_until_quiet(args.settle)
        command = [sys.executable, str(HERE / script), *([] if args.full else quick)]
        print(f"$ {' '.join(command)}   (load {state['load1']})", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        print(f"  {name}: exit {done.returncode} after {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        summary = last_json(done.stdout)
        if summary is not None and args.json_dir:  # every per-round figure, for the record
            Path(args.json_dir).mkdir(parents=True, exist_ok=True)
            (Path(args.json_dir) / f"{name}.json").write_text(json.dumps(summary, indent=1) + "\n", "utf-8")
        if done.returncode != 0 or summary is None:
            failed.append(name)
            table.append([f"{name}: FAILED (exit {done.returncode})", "", "", "", "", "", ""])
            continue
        table.extend(rows_of(name, summary))
    print_table(table)
    end = machine_state()
    print(f"{time.perf_counter() - started:.0f} s in all; load at the end {end['load1']}; quiet = 1-minute load "
          f"below {QUIET_LOAD} when the script started", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
