"""The one admission rule: how many tokens a request may use now, or why none.

Every path that admits tokens decides here: `check` (read-only), `consume`,
reservations and the gateway (through reservations). Pure: it reads the
reports of the user and of every group the user belongs to, taken under the
caller's lock discipline, and decides, nothing else.
"""

from collections.abc import Sequence

from .errors import QuotaExceeded, Refusal
from .limits import UNLIMITED
from .usage import GroupReport, QuotaReport
from ..periods import seconds_until


def admit(report: QuotaReport, wanted: int, at_least: int | None = None,
          groups: Sequence[GroupReport] = ()) -> int:
    """Return how many of `wanted` tokens are admitted now, or raise QuotaExceeded.

    A request for `n` tokens is admitted when, for the user and for every
    group in `groups`, in every limited period, usage + holds + n <= limit
    and usage + holds < limit (so a limit of 0 admits nothing, not even 0
    tokens). Without `at_least` it is all or nothing; with it (the gateway
    lowering a reply's cap) the answer is the most that fits every subject,
    if that is at least `at_least`. A refusal names the user's own limit
    first, then the groups' in id order.
    """
    needed = wanted if at_least is None else min(at_least, wanted)
    granted, refusing = wanted, []
    for group, subject in [(None, report), *((g, g.report) for g in groups)]:
        for p in subject.periods:
            limit = p.effective
            if limit == UNLIMITED:
                continue
            room = limit - (p.usage + subject.held)
            if room <= 0 or room < needed:
                refusing.append((group, p, max(0, room)))
            granted = min(granted, room)
    if refusing:
        raise QuotaExceeded(_refusal(report, refusing))
    return granted


def _refusal(report: QuotaReport, refusing: list) -> Refusal:
    """Name the first refusing period; Retry-After waits for the latest reset among them all."""
    group, first, left = refusing[0]
    latest_reset = max(p.window.reset_at for _, p, _ in refusing)
    return Refusal(
        period=first.window.period,
        reset_at=report.fields()[f"{first.window.period}_reset_at"],
        remaining=left,
        retry_after=seconds_until(latest_reset, report.now),
        **({} if group is None else {"scope": "group", "group_uuid": group.uuid,
                                     "group_name": group.name}),
    )
