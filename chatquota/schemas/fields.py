"""Field types shared by every schema: integers, booleans, UUIDs; strings a database can store."""

import re
import uuid as uuidlib

from marshmallow import RAISE, Schema, fields, validate

from ..services.limits import MAX_LIMIT, UNLIMITED

_INTEGRAL_STRING = re.compile(r"^\s*-?\d+(\.0*)?\s*$")


class Integral(fields.Integer):
    """An integer: ints, integral floats (5.0) and numeric strings ("100").

    Unlike marshmallow's Integer it refuses 5.5 (instead of truncating) and
    booleans, as DRF's IntegerField does.
    """

    default_error_messages = {"invalid": "A valid integer is required."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and _INTEGRAL_STRING.match(value):
            try:
                value = int(value.strip().split(".")[0])
            except ValueError:  # beyond Python's int-from-string digit limit
                raise self.make_error("invalid") from None
        if not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Flag(fields.Boolean):
    """A JSON boolean in a request body: only `true` or `false`, as documented.

    marshmallow's Boolean also takes 1, 0.0, "yes" and "off"; a client
    sending those has a bug worth hearing about.
    """

    default_error_messages = {"invalid": "Must be a valid boolean."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def limit_field(description: str) -> Integral:
    """Return a per-period limit field: null, -1 (unlimited) or 0..2**53-1."""
    return Integral(
        allow_none=True,
        validate=validate.Range(min=UNLIMITED, max=MAX_LIMIT),
        metadata={"description": description},
    )


def token_field(**kwargs) -> Integral:
    """Return a token-count field: 0..2**53-1."""
    return Integral(validate=validate.Range(min=0, max=MAX_LIMIT), **kwargs)


_HEX = "[0-9a-fA-F]"
_UUID_TEXT = re.compile(
    rf"^(?:urn:uuid:)?(?P<brace>\{{)?"
    rf"(?:{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}|{_HEX}{{32}})"
    rf"(?(brace)\}})$"
)


class Uuid(fields.UUID):
    """A UUID in a standard textual form, loaded as 32 lowercase hex digits.

    Accepted: 32 hex digits or the 8-4-4-4-12 form, any case, optionally in
    braces or after `urn:uuid:`; hyphens elsewhere are refused.
    """

    default_error_messages = {"invalid_uuid": "Must be a valid UUID."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _UUID_TEXT.match(value.strip()):
            raise self.make_error("invalid_uuid")
        return uuidlib.UUID(value.strip()).hex

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else uuidlib.UUID(str(value)).hex


NUL_MESSAGE = "Null characters are not allowed."
_SURROGATE = re.compile("[\ud800-\udfff]")


def unstorable(value) -> str | None:
    """Return why a string, or any key or value nested in `value`, cannot be stored; else None.

    PostgreSQL text cannot hold NUL, and no UTF-8 database can hold a lone
    UTF-16 surrogate (JSON's "\\ud800" decodes to one: a 500 when the driver
    encodes it), so such input is refused with DRF's messages before it
    reaches a query on either backend.
    """
    if isinstance(value, str):
        if "\x00" in value:
            return NUL_MESSAGE
        surrogate = None if value.isascii() else _SURROGATE.search(value)
        return None if surrogate is None else (
            f"Surrogate characters are not allowed: U+{ord(surrogate.group()):X}.")
    if isinstance(value, dict):
        value = [item for pair in value.items() for item in pair]
    if isinstance(value, (list, tuple)):
        return next(filter(None, map(unstorable, value)), None)
    return None


def unstorable_fields(items) -> dict[str, list[str]]:
    """Return `{name: [message]}` for the (name, value) pairs that cannot be stored."""
    bad = {}
    for name, value in items:
        message = unstorable(name) or unstorable(value)
        if message:
            bad.setdefault(name, [message])
    return bad


class StrictSchema(Schema):
    """A request body: unknown fields are an error, not silently ignored."""

    class Meta:
        unknown = RAISE


