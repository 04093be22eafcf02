"""Drive load with wrk and read back its numbers."""

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
THREADS = 2
CONNECTIONS = 8
DURATION_S = 5
WARMUP_S = 1


@dataclass(frozen=True)
class Result:
    """One wrk run: throughput, latency and every kind of error."""

    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def wrk(name: str, url: str, script: str, *args: str, duration: int = DURATION_S) -> Result:
    """Run wrk with a Lua script from bench/ against `url` and return its result."""
    command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{duration}s", "--timeout", "10s",
               "-s", script, url, "--", *args]
    out = subprocess.run(command, cwd=BENCH, capture_output=True, text=True, check=True,
                         timeout=duration + 60).stdout
    line = next(l for l in out.splitlines() if l.startswith("BENCH_RESULT "))
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    errors = {k: data[k] for k in ("connect", "read", "write", "status", "timeout")}
    return Result(name, data["requests"], data["duration_us"] / 1e6,
                  data["p50_us"] / 1000, data["p99_us"] / 1000, errors)


def measure(name: str, url: str, script: str, *args: str) -> Result:
    """Warm up briefly (results discarded), then run the measured load."""
    wrk(name, url, script, *args, duration=WARMUP_S)
    return wrk(name, url, script, *args)
