"""Limit resolution, remaining, and the admission rule, without HTTP."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from chatquota.periods import windows
from chatquota.services.admission import admit
from chatquota.services.errors import QuotaExceeded
from chatquota.services.limits import effective_limit, remaining
from chatquota.services.usage import PeriodUsage, QuotaReport

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def report(limits, usage=(0, 0, 0), held=0, defaults=(-1, -1, -1)):
    periods = tuple(
        PeriodUsage(w, lim, d, u)
        for w, lim, d, u in zip(windows(NOW, UTC_ZONE), limits, defaults, usage)
    )
    return QuotaReport(periods, held, UTC_ZONE, NOW)


def refusal(r, tokens, at_least=None):
    """Return admit's refusal, or None when it admits `tokens`."""
    try:
        assert admit(r, tokens, at_least) == tokens
    except QuotaExceeded as refused:
        return refused.refusal
    return None


@pytest.mark.parametrize("limit, default, expected", [(None, 50, 50), (10, 50, 10),
                                                      (-1, 50, -1), (0, 50, 0), (None, -1, -1)])
def test_effective_limit(limit, default, expected):
    assert effective_limit(limit, default) == expected


def test_remaining_is_none_when_unlimited_and_never_negative():
    assert remaining(-1, 10**9) is None
    assert remaining(100, 30) == 70
    assert remaining(100, 130) == 0


def test_admits_up_to_the_limit_exactly():
    assert refusal(report((100, None, None), usage=(60, 60, 60)), 40) is None
    denied = refusal(report((100, None, None), usage=(60, 60, 60)), 41)
    assert (denied.period, denied.remaining) == ("daily", 40)


def test_zero_limit_admits_nothing_not_even_zero_tokens():
    assert refusal(report((0, None, None)), 0).period == "daily"


def test_full_period_refuses_zero_tokens():
    assert refusal(report((100, None, None), usage=(100, 100, 100)), 0) is not None
    assert refusal(report((100, None, None), usage=(99, 99, 99)), 0) is None


def test_holds_count_against_every_period():
    r = report((None, 100, None), usage=(0, 50, 50), held=40)
    assert refusal(r, 10) is None
    denied = refusal(r, 11)
    assert (denied.period, denied.remaining) == ("weekly", 10)


def test_unlimited_and_default_resolution():
    r = report((-1, None, None), usage=(10**12, 10**12, 10**12), defaults=(5, 5, -1))
    assert refusal(r, 1).period == "weekly"


def test_first_refusing_period_named_and_retry_after_is_latest_reset():
    denied = refusal(report((10, 10, 10), usage=(10, 10, 10)), 1)
    assert denied.period == "daily"
    assert denied.detail == "Daily token limit exceeded."
    # Monthly resets at Dec 1 00:00 (12 h), weekly at Dec 7 00:00: the latest wins.
    assert denied.retry_after == 6 * 86400 + 12 * 3600
    assert denied.reset_at == "2026-12-01T00:00:00Z"


def test_a_flexible_request_gets_the_most_that_fits_in_every_period():
    r = report((100, 70, None), usage=(60, 30, 30), held=5)
    assert admit(r, 1000, at_least=1) == 35  # daily room 35, weekly room 35
    assert admit(r, 20, at_least=1) == 20  # less than the room: all of it
    assert admit(report((None, None, None)), 10**9, at_least=1) == 10**9  # unlimited


def test_a_flexible_request_is_refused_below_its_minimum():
    r = report((100, None, None), usage=(90, 90, 90))
    assert admit(r, 50, at_least=10) == 10
    with pytest.raises(QuotaExceeded) as refused:
        admit(r, 50, at_least=11)
    assert (refused.value.refusal.period, refused.value.refusal.remaining) == ("daily", 10)
    with pytest.raises(QuotaExceeded):
        admit(report((100, None, None), usage=(100, 0, 0)), 50, at_least=0)  # a full period
