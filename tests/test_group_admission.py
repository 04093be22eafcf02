"""Admission over a user and their groups, and the charge of model weights, without HTTP."""

from decimal import Decimal

import pytest

from chatquota.services.admission import admit
from chatquota.services.errors import QuotaExceeded
from chatquota.services.usage import GroupReport
from chatquota.services.weights import UNIT, Weights, charge, weight_text

from .test_limits import report


def group(gid, name, limits, usage=(0, 0, 0), held=0, defaults=(-1, -1, -1)):
    return GroupReport(gid, f"{gid:032x}", name, report(limits, usage, held, defaults))


def refusal(user, groups, tokens, at_least=None):
    """Return the refusal, or None when `tokens` (or with `at_least`, some) are admitted."""
    try:
        admit(user, tokens, at_least, groups)
    except QuotaExceeded as refused:
        return refused.refusal
    return None


FREE = report((None, None, None))


def test_a_group_limit_refuses_and_names_the_group():
    physics = group(7, "physics", (100, None, None), usage=(60, 60, 60))
    assert refusal(FREE, [physics], 40) is None
    denied = refusal(FREE, [physics], 41)
    assert (denied.scope, denied.group_uuid, denied.group_name) == ("group", f"{7:032x}", "physics")
    assert (denied.period, denied.remaining) == ("daily", 40)
    assert denied.detail == "Daily token limit of group 'physics' exceeded."


@pytest.mark.parametrize("limits, defaults, admitted", [
    ((None, None, None), (-1, -1, -1), True),      # null: the group default, unlimited
    ((None, None, None), (45, -1, -1), False),     # null: the group default, 45 a day
    ((-1, -1, -1), (50, 50, 50), True),            # -1: unlimited whatever the default
    ((0, None, None), (-1, -1, -1), False),        # 0: nothing
])
def test_group_limits_null_minus_one_and_zero(limits, defaults, admitted):
    team = group(1, "team", limits, usage=(40, 40, 40), defaults=defaults)
    assert (refusal(FREE, [team], 10) is None) is admitted


def test_a_zero_group_limit_admits_not_even_zero_tokens():
    assert refusal(FREE, [group(1, "team", (None, None, 0))], 0).period == "monthly"


def test_the_users_own_limit_is_named_before_any_group():
    user = report((10, None, None), usage=(10, 10, 10))
    denied = refusal(user, [group(1, "team", (5, None, None), usage=(5, 5, 5))], 1)
    assert (denied.scope, denied.group_uuid) == ("user", None)
    assert denied.detail == "Daily token limit exceeded."


def test_a_user_in_several_groups_is_held_to_the_tightest():
    roomy = group(1, "roomy", (1000, None, None), usage=(100, 100, 100))
    tight = group(2, "tight", (None, 300, None), usage=(0, 250, 250), held=20)
    assert refusal(FREE, [roomy, tight], 30) is None
    denied = refusal(FREE, [roomy, tight], 31)
    assert (denied.group_name, denied.period, denied.remaining) == ("tight", "weekly", 30)


def test_groups_are_named_in_id_order_and_retry_after_waits_for_every_refusal():
    daily = group(1, "a", (10, None, None), usage=(10, 10, 10))
    monthly = group(2, "b", (None, None, 10), usage=(10, 10, 10))
    denied = refusal(FREE, [daily, monthly], 1)
    assert (denied.group_name, denied.period) == ("a", "daily")
    # Daily resets in 12 h, monthly on Dec 1 00:00 too (the test clock is Nov 30, 12:00).
    assert denied.retry_after == 12 * 3600


def test_group_holds_count_against_the_group():
    team = group(1, "team", (100, None, None), usage=(50, 50, 50), held=45)
    assert refusal(FREE, [team], 5) is None
    assert refusal(FREE, [team], 6).remaining == 5


def test_a_flexible_request_gets_the_least_room_over_user_and_groups():
    user = report((100, None, None), usage=(10, 10, 10))  # room 90
    first = group(1, "first", (None, 500, None), usage=(0, 440, 440))  # room 60
    second = group(2, "second", (None, None, 1000), usage=(0, 0, 975))  # room 25
    assert admit(user, 1000, at_least=1, groups=[first, second]) == 25
    assert admit(user, 1000, at_least=1, groups=[first]) == 60
    denied = refusal(user, [first, second], 1000, at_least=26)
    assert (denied.group_name, denied.period, denied.remaining) == ("second", "monthly", 25)


@pytest.mark.parametrize("weights, tokens, split, charged", [
    (UNIT, 10, (None, None), 10),
    (UNIT, 10, (3, 7), 10),
    (Weights(Decimal("0.25"), Decimal(4)), 110, (100, 10), 65),            # 25 + 40
    (Weights(Decimal("0.25"), Decimal(4)), 3, (3, None), 1),               # 0.75 -> 1
    (Weights(Decimal("0.25"), Decimal(4)), 3, (None, None), 12),           # higher weight: 4
    (Weights(Decimal("0.1"), Decimal("0.2")), 30, (10, 20), 5),            # exactly 5, not 5.000001
    (Weights(Decimal("0.333333"), Decimal(1)), 3, (3, 0), 1),              # 0.999999 -> 1
    (Weights(Decimal("0.000001"), Decimal(0)), 1, (1, 0), 1),              # any fraction rounds up
    (Weights(Decimal(0), Decimal(0)), 100, (50, 50), 0),                   # a free model
    (Weights(Decimal("1000000"), Decimal("1000000")), 2**53 - 1, (None, None),
     (2**53 - 1) * 10**6),                                                 # exact past 28 digits
    (Weights(Decimal("0.999999"), Decimal(1)), 2**53 - 1, (2**53 - 1, 0),
     -(-(2**53 - 1) * 999999 // 10**6)),
])
def test_charge_is_exact_and_rounds_up_once(weights, tokens, split, charged):
    assert charge(weights, tokens, *split) == charged


@pytest.mark.parametrize("value, text", [(Decimal("0.2500"), "0.25"), (Decimal("4"), "4"),
                                         (Decimal("4.000000"), "4"), (Decimal("1E+1"), "10"),
                                         (Decimal("0"), "0"), (Decimal("0.000001"), "0.000001")])
def test_weights_are_shown_as_plain_decimal_text(value, text):
    assert weight_text(value) == text
