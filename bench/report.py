"""The results as Markdown: the machine, the tables, the targets; and where they are published."""

import math
import os
import platform
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from .openloop import Outcome
from .rounds import Series, slowdown

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- bench:results -->", "<!-- /bench:results -->"
# Ratios to the baseline of the same round (pairs/s for reserve+commit).
TARGETS = {"usage": 0.6, "check": 0.5, "consume": 0.35, "reserve+commit": 0.15}
SCALING_TARGET = 1.2
OPEN_LOOP_P99_MS, OPEN_LOOP_P99_RATE, OPEN_LOOP_CLEAN_RATE = 10.0, 100, 300


def machine() -> str:
    """Describe this machine: CPU model, cores, memory, software versions."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), "0") if Path("/proc/meminfo").exists() else "0"
    return (f"{model}, {os.cpu_count()} CPUs (nproc), {int(mem) // 1024} MiB RAM, "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}")


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def verdict(ok: bool, rule: str) -> str:
    return f"{'met' if ok else 'MISSED'} ({rule})"


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def throughput_table(rows: list[tuple[str, str, Series]]) -> list[str]:
    """Rows of (backend, endpoint, series): median, spread, latency, ratio, target."""
    lines = ["| backend | run | median /s | min-max /s | p50 ms | p99 ms | vs baseline "
             "| errors | target |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for backend, name, series in rows:
        low, high = series.spread
        target = TARGETS.get(name)
        rule = verdict(series.ratio >= target, f">= {target}x") if target else ""
        unit = " (pairs/s)" if series.spec.pairs else ""
        lines.append(f"| {backend} | {name}{unit} | {series.median:,.0f} | {low:,.0f}-{high:,.0f} "
                     f"| {series.p50:.2f} | {series.p99:.2f} | {series.ratio:.2f}x "
                     f"| {series.errors} | {rule} |")
    return lines


def _open_loop_target(outcome: Outcome) -> str:
    if outcome.rate == OPEN_LOOP_P99_RATE:
        return verdict(outcome.percentile(99) <= OPEN_LOOP_P99_MS,
                       f"p99 <= {OPEN_LOOP_P99_MS:g} ms")
    if outcome.rate == OPEN_LOOP_CLEAN_RATE:
        return verdict(outcome.error_count == 0, "no errors")
    return ""


def open_loop_table(rows: list[tuple[str, Outcome]]) -> list[str]:
    """Rows of (backend, outcome) at each fixed arrival rate."""
    lines = ["| backend | endpoint | rate /s | achieved /s | p50 ms | p99 ms | max ms "
             "| errors (status/timeout/connection) | target |",
             "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for backend, o in rows:
        e = o.errors
        top = max(o.latencies_ms) if o.latencies_ms else math.nan
        lines.append(f"| {backend} | {o.name} | {o.rate} | {o.achieved:,.0f} "
                     f"| {_ms(o.percentile(50))} | {_ms(o.percentile(99))} | {_ms(top)} "
                     f"| {o.error_count} ({e['status']}/{e['timeout']}/{e['connection']}) "
                     f"| {_open_loop_target(o)} |")
    return lines


def history_table(pairs: list[tuple[str, Series, Series]]) -> list[str]:
    """Rows comparing the 1k-event and the 10M-event database."""
    lines = ["| endpoint | 1k events /s | 10M events /s | slowdown | p50 ms 1k / 10M "
             "| p99 ms 1k / 10M | errors | target |",
             "|---|---:|---:|---:|---|---|---:|---|"]
    for name, small, big in pairs:
        ratio = slowdown(small, big)
        lines.append(f"| {name} | {small.median:,.0f} | {big.median:,.0f} | {ratio:.2f}x "
                     f"| {small.p50:.2f} / {big.p50:.2f} | {small.p99:.2f} / {big.p99:.2f} "
                     f"| {small.errors + big.errors} "
                     f"| {verdict(ratio <= SCALING_TARGET, f'<= {SCALING_TARGET}x')} |")
    return lines


def storage_table(sizes: dict) -> list[str]:
    """Bytes per stored event in the 10M-event database, table and each index."""
    events = sizes["events"]
    lines = [f"| object ({events:,} events) | MiB | bytes/event |", "|---|---:|---:|"]
    own = sorted(((n, s) for n, t, s in sizes["objects"] if t == "usage_events"),
                 key=lambda item: -item[1])
    rest = sum(s for _n, t, s in sizes["objects"] if t != "usage_events")
    rows = [*own, ("usage_events with its indexes", sum(s for _n, s in own)),
            ("every other table and index", rest), ("whole file", sizes["file"])]
    for name, size in rows:
        lines.append(f"| {name} | {size / 2**20:,.1f} | {size / events:,.1f} |")
    return lines


def publish(full: str, headline: str) -> list[Path]:
    """Write bench/results.md; refresh the marked blocks of docs/benchmarks.md and README."""
    written = [ROOT / "bench" / "results.md"]
    written[0].write_text("# chatquota benchmark results\n\n" + full)
    for doc, markdown in ((ROOT / "docs" / "benchmarks.md", full), (ROOT / "README.md", headline)):
        text = doc.read_text() if doc.exists() else ""
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _old, tail = rest.split(END, 1)
            doc.write_text(f"{head}{START}\n{markdown}{END}{tail}")
            written.append(doc)
    return written


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
