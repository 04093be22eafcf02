"""Model weights: how many quota tokens an input and an output token of a model count as.

`charge` is the arithmetic, exact: weights are decimals (never floats), the
product is rounded up once. A model without weights weighs 1 both ways. The
ledger reads a model's weights inside its transaction (`weights_of`, one
indexed read), so a change applies to every event recorded after it commits
and never to one recorded before.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Context, Decimal

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from .. import clock
from ..dialect import Raw, insert, lock_rows, prepare, write_transaction
from ..models import ModelWeight
from . import audit
from .audit import Actor
from .paging import Page, paginate

MAX_WEIGHT = Decimal(1_000_000)
PLACES = 6  # decimal places a weight may have
# Enough digits for 2**53 tokens times the largest weight, twice over: never rounded.
_EXACT = Context(prec=60)

_weights = ModelWeight.__table__
_WEIGHTS_OF = prepare(select(_weights.c.input_weight, _weights.c.output_weight)
                      .where(_weights.c.model == bindparam("model")))
_LOCK = select(ModelWeight).where(ModelWeight.model == bindparam("model")).with_for_update()


@dataclass(frozen=True)
class Weights:
    """What one input token and one output token of a model are charged."""

    input: Decimal
    output: Decimal


UNIT = Weights(Decimal(1), Decimal(1))


def charge(weights: Weights, tokens: int, input_tokens: int | None = None,
           output_tokens: int | None = None) -> int:
    """Return the tokens charged: ceil(input * w_in + output * w_out).

    A report with only `tokens` (no input/output split) is charged at the
    higher of the two weights, so leaving the split out never costs less.
    """
    if input_tokens is None and output_tokens is None:
        exact = _EXACT.multiply(Decimal(tokens), max(weights.input, weights.output))
    else:
        exact = _EXACT.add(_EXACT.multiply(Decimal(input_tokens or 0), weights.input),
                           _EXACT.multiply(Decimal(output_tokens or 0), weights.output))
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


def weight_text(value: Decimal) -> str:
    """Format a weight as plain decimal text without trailing zeros: `0.25`, `4`."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def weights_of(raw: Raw, model: str | None) -> Weights:
    """Return a model's weights as stored now (inside the ledger); 1 and 1 if it has none."""
    if model is None:
        return UNIT
    row = raw.one(_WEIGHTS_OF, {"model": model})
    return UNIT if row is None else Weights(Decimal(row[0]), Decimal(row[1]))


@dataclass(frozen=True)
class WeightRecord:
    """A model's weights as the API shows them."""

    model: str
    input_weight: str
    output_weight: str
    updated_at: datetime


def _record(row: ModelWeight) -> WeightRecord:
    return WeightRecord(row.model, row.input_weight, row.output_weight, row.updated_at)


def set_weights(session: Session, actor: Actor | None, model: str, input_weight: Decimal,
                output_weight: Decimal) -> tuple[WeightRecord, bool]:
    """Set a model's two weights; return them and whether the model had none before.

    Each weight that changes is audited (`model_weight.update`, from and to
    as decimal text; from null when the model weighed 1 by default).
    """
    new = {"input_weight": weight_text(input_weight), "output_weight": weight_text(output_weight)}
    now = clock.now()
    with write_transaction(session):
        # Inserted unless the model has weights; a concurrent insert of the same model waits.
        created = session.execute(
            insert(session.get_bind().dialect.name, ModelWeight)
            .values(model=model, updated_at=now, **new)
            .on_conflict_do_nothing(index_elements=["model"])
            .returning(ModelWeight.model)).first() is not None
        lock_rows(session, _LOCK, {"model": model})
        row = session.get(ModelWeight, model, populate_existing=True)
        for field, value in new.items():
            old = None if created else getattr(row, field)
            if old != value:
                audit.record(session, actor, "model_weight.update", model, field, old, value)
                setattr(row, field, value)
        row.updated_at = now
    return _record(row), created


def list_weights(session: Session, offset: int = 0, limit: int = 10) -> Page:
    """Return one page of the models that have weights, by name."""
    page = paginate(session, select(ModelWeight).order_by(ModelWeight.model), offset, limit)
    return Page([_record(row) for row in page.items], page.total)
