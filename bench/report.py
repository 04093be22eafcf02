"""The results as Markdown: the machine, the runs, the ratios and the targets."""

import os
import platform
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from .load import CONNECTIONS, DURATION_S, THREADS, Result

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- bench:results -->", "<!-- /bench:results -->"
TARGETS = {"usage": 0.6, "check": 0.5, "consume": 0.35}
SCALING_TARGET = 1.2


def machine() -> str:
    """Describe this machine: CPU model, cores, memory, load, software versions."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), "0") if Path("/proc/meminfo").exists() else "0"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{model}, {os.cpu_count()} CPUs (nproc), {int(mem) // 1024} MiB RAM, "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}; load average at the end: {load}")


def _verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<="
    return f"{'met' if ok else 'MISSED'} ({sign} {target})"


def _row(result: Result, baseline: Result, target: str) -> str:
    errors = result.error_count or "0"
    return (f"| {result.name} | {result.rps:,.0f} | {result.p50_ms:.2f} | {result.p99_ms:.2f} "
            f"| {result.rps / baseline.rps:.2f}x | {errors} | {target} |")


def throughput_table(baseline: Result, runs: list[tuple[Result, str]]) -> list[str]:
    """Return the Markdown rows of the throughput table."""
    lines = ["| run | requests/s | p50 ms | p99 ms | vs baseline | errors | target |",
             "|---|---:|---:|---:|---:|---:|---|",
             _row(baseline, baseline, "")]
    for result, key in runs:
        target = _verdict(result.rps / baseline.rps, TARGETS[key]) if key in TARGETS else ""
        lines.append(_row(result, baseline, target))
    return lines


def scaling_table(pairs: list[tuple[str, Result, Result]]) -> list[str]:
    """Return the Markdown rows comparing 1k and 10M stored events."""
    lines = ["| endpoint | 1k events req/s | 10M events req/s | slowdown | p50 ms 1k / 10M "
             "| p99 ms 1k / 10M | errors | target |",
             "|---|---:|---:|---:|---|---|---:|---|"]
    for name, small, big in pairs:
        slowdown = small.rps / big.rps
        lines.append(
            f"| {name} | {small.rps:,.0f} | {big.rps:,.0f} | {slowdown:.2f}x "
            f"| {small.p50_ms:.2f} / {big.p50_ms:.2f} | {small.p99_ms:.2f} / {big.p99_ms:.2f} "
            f"| {small.error_count + big.error_count} "
            f"| {_verdict(slowdown, SCALING_TARGET, higher_is_better=False)} |")
    return lines


def render(baseline: Result, runs, pairs, notes: list[str], workers: int) -> str:
    """Return the whole results section as Markdown."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} on {machine()}.",
        "",
        f"gunicorn: {workers} sync workers on 127.0.0.1 for every run, the baseline's too; "
        f"wrk: {THREADS} threads, {CONNECTIONS} connections, {DURATION_S} s per run after a "
        "short warm-up. SQLite in WAL mode with the default `synchronous=FULL` unless a row "
        "says otherwise. The baseline is a bare Flask app answering a trivial JSON route "
        "(`bench/baseline.py`).",
        "",
        *throughput_table(baseline, runs),
        "",
        "History size: the same `usage` and `consume` runs for a user with about a "
        "thousand and about ten million stored usage events (separate databases, so the "
        "whole table grows too).",
        "",
        *scaling_table(pairs),
    ]
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"


def publish(markdown: str) -> list[Path]:
    """Write bench/results.md and refresh the table in READMEs that have the markers."""
    written = [ROOT / "bench" / "results.md"]
    written[0].write_text("# chatquota benchmark results\n\n" + markdown)
    for doc in (ROOT / "README.md",):
        text = doc.read_text() if doc.exists() else ""
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _old, tail = rest.split(END, 1)
            doc.write_text(f"{head}{START}\n{markdown}{END}{tail}")
            written.append(doc)
    return written
