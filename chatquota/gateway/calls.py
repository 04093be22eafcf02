"""One proxied call's hold: taken before the upstream is asked, settled when the reply ends.

A call is a client of metering like any chat backend: a reservation for the
request's bound, then a commit of what the reply cost (the upstream's
reported usage, or else what the gateway counted), or a release when the
upstream did not answer or refused.
"""

import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from ..services import reservations
from ..services.reservations import ReservationRecord
from .estimate import Learned, Plan

log = logging.getLogger(__name__)


@dataclass
class Call:
    """A call admitted with a hold of `held.tokens`; settled or cancelled exactly once."""

    engine: Engine
    tz: ZoneInfo
    held: ReservationRecord
    plan: Plan
    model: str
    learned: Learned
    finished: bool = False

    def settle(self, usage: tuple[int, int] | None, counted: int) -> None:
        """Commit what the reply cost: its reported usage, else the prompt's charge and `counted`.

        Counted completion tokens are capped at what the upstream was allowed
        to generate. Errors are logged, not raised: the reply has been sent.
        """
        if self._finish():
            return
        if usage is not None:
            prompt, completion = usage
            self.learned.observe(self.model, self.plan, prompt)
        else:
            prompt = self.learned.prompt_charge(self.model, self.plan)
            completion = min(counted, self.plan.cap * self.plan.choices)
        try:
            reservations.commit(self.engine, self.tz, self.held.uuid, tokens=prompt + completion,
                                input_tokens=prompt, output_tokens=completion)
        except Exception:  # the hold expires by itself; the log says what was lost
            log.exception("Could not commit %s (%s + %s tokens) of reservation %s",
                          self.model, prompt, completion, self.held.uuid)

    def cancel(self) -> None:
        """Release the hold: the upstream did not produce a reply, nothing is charged."""
        if self._finish():
            return
        try:
            reservations.release(self.engine, self.held.uuid)
        except Exception:
            log.exception("Could not release reservation %s", self.held.uuid)

    def _finish(self) -> bool:
        """Mark the call finished; return whether it already was."""
        done, self.finished = self.finished, True
        return done
