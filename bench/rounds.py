"""Interleaved wrk rounds: every round loads the baseline, then every endpoint.

Servers stay up across rounds; what drifts on a shared machine (other
processes, caches, the disk) then drifts for the baseline and the endpoints
alike, and each endpoint is compared with the baseline of its own round.
"""

import statistics
import sys
from dataclasses import dataclass

from .load import Result, measure

ROUNDS = 3


@dataclass(frozen=True)
class Spec:
    """One wrk run of a round: which server, which URL and script, which arguments."""

    key: str
    server: str
    path: str
    script: str
    args: tuple[str, ...] = ()
    pairs: bool = False  # two requests per unit: report pairs/s


@dataclass
class Series:
    """The same run over every round, with the baseline of each round."""

    spec: Spec
    results: list[Result]
    baselines: list[Result]

    def rates(self) -> list[float]:
        """Requests/s per round, or pairs/s for a pair (each pair is two requests)."""
        return [r.rps / 2 if self.spec.pairs else r.rps for r in self.results]

    @property
    def median(self) -> float:
        return statistics.median(self.rates())

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.rates()), max(self.rates())

    @property
    def ratio(self) -> float:
        """Median over rounds of (this run / the same round's baseline requests/s)."""
        return statistics.median(rate / b.rps for rate, b in zip(self.rates(), self.baselines))

    @property
    def p50(self) -> float:
        return statistics.median(r.p50_ms for r in self.results)

    @property
    def p99(self) -> float:
        return statistics.median(r.p99_ms for r in self.results)

    @property
    def errors(self) -> int:
        return sum(r.error_count for r in self.results)


def run(baseline: Spec, specs: list[Spec], servers: dict[str, str]) -> dict[str, Series]:
    """Run ROUNDS rounds of the baseline then every spec; return a Series per key."""
    everything, rounds = [baseline, *specs], ROUNDS
    results: dict[str, list[Result]] = {s.key: [] for s in everything}
    for number in range(1, rounds + 1):
        for spec in everything:
            print(f"round {number}/{rounds}: {spec.key}", file=sys.stderr, flush=True)
            url = servers[spec.server] + spec.path
            results[spec.key].append(measure(spec.key, url, spec.script, *spec.args))
    base = results[baseline.key]
    return {s.key: Series(s, results[s.key], base) for s in everything}


def slowdown(small: Series, big: Series) -> float:
    """Median over rounds of (small history req/s / big history req/s)."""
    return statistics.median(a / b for a, b in zip(small.rates(), big.rates()))
