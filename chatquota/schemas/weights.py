"""Marshmallow schemas of model weights: exact decimals in, decimal text out."""

import re
from decimal import Decimal

from marshmallow import Schema, fields, validate

from ..services.weights import MAX_WEIGHT, PLACES
from .fields import StrictSchema

_DECIMAL_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")
_QUANTUM = Decimal(1).scaleb(-PLACES)


class Weight(fields.Field):
    """A weight: a JSON number or a decimal string, 0..1000000, at most 6 decimal places.

    Loaded as an exact Decimal (a number is read from its shortest text, so
    0.1 is 0.1); a string must be plain digits with an optional fraction
    (`"0.25"`); booleans, NaN and infinities are refused.
    """

    default_error_messages = {
        "invalid": "A valid number is required.",
        "range": f"Ensure this value is between 0 and {MAX_WEIGHT}.",
        "places": f"Ensure that there are no more than {PLACES} decimal places.",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
            raise self.make_error("invalid")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self.make_error("invalid")
        number = Decimal(str(value))
        if not number.is_finite():
            raise self.make_error("invalid")
        if not 0 <= number <= MAX_WEIGHT:
            raise self.make_error("range")
        if number != number.quantize(_QUANTUM):
            raise self.make_error("places")
        return number


def _weight(which: str) -> Weight:
    return Weight(required=True, metadata={
        "description": f"What one {which} token counts as, e.g. 0.25 or \"4\" (0..1000000, "
                       f"at most {PLACES} decimal places).",
        "oneOf": [{"type": "number", "minimum": 0, "maximum": int(MAX_WEIGHT)},
                  {"type": "string", "pattern": "^" + _DECIMAL_TEXT.pattern + "$"}]})


class ModelWeightRequestSchema(StrictSchema):
    """Set a model's weights; they apply to events recorded from now on."""

    model = fields.String(required=True, validate=validate.Length(min=1, max=200), metadata={
        "description": "The model name as chat backends report it (may contain `/`)."})
    input_weight = _weight("input")
    output_weight = _weight("output")


class ModelWeightSchema(Schema):
    """A model's weights, as decimal text (exact)."""

    model = fields.String()
    input_weight = fields.String(metadata={"format": "decimal", "example": "0.25"})
    output_weight = fields.String(metadata={"format": "decimal", "example": "4"})
    updated_at = fields.DateTime()
