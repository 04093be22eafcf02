"""Domain errors raised by services and mapped to HTTP by `chatquota.errors`."""

from dataclasses import dataclass


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    message = "Error."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message


class NotFound(DomainError):
    message = "Not found."


class UserNotFound(NotFound):
    message = "User not found."


class TokenNotFound(NotFound):
    message = "Token not found."


class ReservationNotFound(NotFound):
    message = "Reservation not found."


class Forbidden(DomainError):
    message = "You do not have permission to perform this action."


class UserInactive(Forbidden):
    """Metering refuses to admit tokens for a deactivated user."""

    message = "This user is deactivated; nothing is admitted for them."


class Conflict(DomainError):
    message = "Conflict."


class IdempotencyConflict(Conflict):
    message = "This idempotency_key was already used with a different request."


class ReservationClosed(Conflict):
    message = "Reservation is already closed."


class InvalidValue(DomainError):
    """A value that passed the schema but breaks a rule needing the database."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Refusal:
    """Why a request is not admitted: the first refusing period."""

    period: str
    reset_at: str
    remaining: int
    retry_after: int

    @property
    def detail(self) -> str:
        return f"{self.period.capitalize()} token limit exceeded."


class QuotaExceeded(DomainError):
    """Raised when admission refuses; nothing has been recorded."""

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.detail)
        self.refusal = refusal
