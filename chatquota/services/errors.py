"""Domain errors raised by services, and which database failures mean "cannot write".

Both are mapped to HTTP by `chatquota.errors`.
"""

import errno
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


class GroupNotFound(NotFound):
    message = "Group not found."


class MembershipNotFound(NotFound):
    message = "This user is not a member of this group."


class WebhookNotFound(NotFound):
    message = "Webhook not found."


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


class AlreadyMember(Conflict):
    message = "This user is already a member of this group."


class InvalidValue(DomainError):
    """A value that passed the schema but breaks a rule needing the database."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Refusal:
    """Why a request is not admitted: the first refusing period of the first refusing subject.

    The subject is the user (`scope` "user") or one of their groups ("group",
    with its uuid and name).
    """

    period: str
    reset_at: str
    remaining: int
    retry_after: int
    scope: str = "user"
    group_uuid: str | None = None
    group_name: str | None = None

    @property
    def detail(self) -> str:
        if self.scope == "group":
            return f"{self.period.capitalize()} token limit of group '{self.group_name}' exceeded."
        return f"{self.period.capitalize()} token limit exceeded."


class QuotaExceeded(DomainError):
    """Raised when admission refuses; nothing has been recorded."""

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.detail)
        self.refusal = refusal


# Why the database refuses writes, and what to tell the caller; the key is the
# `database` state /health/ reports.
STORAGE_DETAILS = {
    "read-only": "The database cannot be written: it is read-only.",
    "full": "The database cannot be written: disk full.",
    "unreachable": "The database cannot be written: its file cannot be opened.",
}
# SQLite primary result codes (the low byte of an extended code).
_SQLITE_STATES = {8: "read-only", 13: "full", 14: "unreachable"}  # READONLY, FULL, CANTOPEN
# PostgreSQL SQLSTATEs: read_only_sql_transaction (a standby, or
# default_transaction_read_only), disk_full.
_SQLSTATE_STATES = {"25006": "read-only", "53100": "full"}
_OS_STATES = {errno.EACCES: "read-only", errno.EPERM: "read-only", errno.EROFS: "read-only",
              errno.ENOSPC: "full", errno.EDQUOT: "full"}


def storage_failure(error: BaseException) -> str | None:
    """Return why `error` says the database cannot be written (a STORAGE_DETAILS key), else None.

    Besides the drivers' errors this recognises failing to open the SQLite
    writer-lock file beside the database (`dialect._exclusive`), which a
    read-only directory or a file owned by another user makes fail first.
    """
    if isinstance(error, OSError):
        named = str(error.filename or "")
        return _OS_STATES.get(error.errno) if named.endswith("-lock") else None
    original = getattr(error, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's
    code = getattr(original, "sqlite_errorcode", None)
    if code is not None:
        return _SQLITE_STATES.get(code & 0xFF)
    return _SQLSTATE_STATES.get(getattr(original, "sqlstate", None))
