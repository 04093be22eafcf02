"""Reading the limit forms: per period a choice (default / unlimited / a number) and a number.

Numbers are checked by the same marshmallow field as the API's token
counts, so the browser and the API accept exactly the same values.
"""

import re
from dataclasses import dataclass, field

from marshmallow import ValidationError

from ..periods import PERIODS
from ..schemas.fields import token_field
from ..services.limits import UNLIMITED

DEFAULT, UNLIMITED_MODE, NUMBER = "default", "unlimited", "number"
_GROUPED = re.compile(r"^\d{1,3}(,\d{3})+$")


@dataclass
class LimitsForm:
    """A submitted (or initial) limits form: its choices, numbers and errors per period."""

    modes: dict[str, str]
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


def initial(limits: dict[str, int | None]) -> LimitsForm:
    """Return the form showing stored limits (period -> value, None = system default)."""
    modes, values = {}, {}
    for period, value in limits.items():
        if value is None:
            modes[period], values[period] = DEFAULT, ""
        elif value == UNLIMITED:
            modes[period], values[period] = UNLIMITED_MODE, ""
        else:
            modes[period], values[period] = NUMBER, str(value)
    return LimitsForm(modes, values)


def parse(form, allow_default: bool) -> tuple[LimitsForm, dict[str, int | None]]:
    """Read a submitted form; return it (with errors) and period -> new limit."""
    allowed = (DEFAULT, UNLIMITED_MODE, NUMBER) if allow_default else (UNLIMITED_MODE, NUMBER)
    submitted = LimitsForm({p: form.get(f"{p}_mode", "") for p in PERIODS},
                           {p: form.get(f"{p}_value", "").strip() for p in PERIODS})
    limits = {}
    for period in PERIODS:
        mode = submitted.modes[period]
        if mode not in allowed:
            submitted.errors[period] = "Choose one of the options."
        elif mode == DEFAULT:
            limits[period] = None
        elif mode == UNLIMITED_MODE:
            limits[period] = UNLIMITED
        else:
            try:
                limits[period] = _number(submitted.values[period])
            except ValidationError as err:
                submitted.errors[period] = err.messages[0]
    return submitted, limits


def _number(text: str) -> int:
    if not text:
        raise ValidationError("Enter a number of tokens.")
    if _GROUPED.match(text):  # "10,000" as the pages show numbers
        text = text.replace(",", "")
    return token_field().deserialize(text)
