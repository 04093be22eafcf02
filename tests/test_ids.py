"""Time-ordered uuids for events and reservations."""

import uuid

from chatquota.ids import time_ordered_uuid


def test_is_a_version_7_rfc_uuid_in_hex():
    value = time_ordered_uuid()
    parsed = uuid.UUID(value)
    assert (parsed.version, parsed.variant, parsed.hex) == (7, uuid.RFC_4122, value)


def test_later_ids_sort_after_earlier_ones_and_never_repeat():
    ids = [time_ordered_uuid() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    prefixes = [i[:12] for i in ids]  # the millisecond timestamp
    assert prefixes == sorted(prefixes)
