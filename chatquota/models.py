"""Database models: accounts, groups, limits, usage, reservations, weights, settings, audit,
alerts.

Usage is stored twice on purpose: one row per event (the record) and one
running total per user and local day (`UsageDay`), and per group and local
day (`GroupUsageDay`), kept in the same transaction. Reads and admission
only touch the day totals, so their cost does not grow with history.
"""

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db

# Autoincrement keys: BIGINT on PostgreSQL, INTEGER (the rowid) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Stores naive UTC on every backend and returns aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


class User(db.Model):
    """An account: a person or a machine (service) that calls the API."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(32), unique=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    is_support: Mapped[bool] = mapped_column(Boolean, default=False)
    is_service: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    quota: Mapped["Quota"] = relationship(back_populates="user", lazy="joined")


class Quota(db.Model):
    """A user's own limits; null means "use the system default".

    Every user has exactly one row. Admission locks it (FOR UPDATE) on
    PostgreSQL, which serialises metering per user.
    """

    __tablename__ = "quotas"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    daily_limit: Mapped[int | None] = mapped_column(BigInteger)
    weekly_limit: Mapped[int | None] = mapped_column(BigInteger)
    monthly_limit: Mapped[int | None] = mapped_column(BigInteger)

    user: Mapped[User] = relationship(back_populates="quota")


class ApiToken(db.Model):
    """An API key; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(150), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class Setting(db.Model):
    """A system-wide integer setting, e.g. `daily_default` or `group_daily_default`."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class UsageEvent(db.Model):
    """One recorded usage: tokens a user spent at a moment.

    The table grows without bound, so it carries only the indexes a query
    needs: per user by time (the events list), by time (the deployment-wide
    list, pruning), and idempotency keys where there is one. Its uuid is
    time-ordered and random in its other 74 bits; nothing looks an event up by it.
    """

    __tablename__ = "usage_events"
    __table_args__ = (
        Index("uq_usage_events_user_key", "user_id", "idempotency_key", unique=True,
              sqlite_where=text("idempotency_key IS NOT NULL"),
              postgresql_where=text("idempotency_key IS NOT NULL")),
        Index("ix_usage_events_user_created", "user_id", "created_at"),
        Index("ix_usage_events_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    tokens: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    model: Mapped[str | None] = mapped_column(String(200))
    # What counts against quotas: `tokens` weighted by the model's weights.
    charged_tokens: Mapped[int] = mapped_column(BigInteger)
    enforced: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # Only with an idempotency key: what tells a retry from a reuse of the key.
    request_hash: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship()

    @property
    def user_uuid(self) -> str:
        return self.user.uuid


class UsageDay(db.Model):
    """Running total of a user's charged tokens on one local day."""

    __tablename__ = "usage_days"
    __table_args__ = (Index("ix_usage_days_day", "day"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)


class Reservation(db.Model):
    """Tokens held for a streamed reply until committed, released or expired.

    Only active holds are indexed per user: the sum of a user's live holds
    reads those, however many ended ones are kept for late commits.
    """

    __tablename__ = "reservations"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_reservations_user_key"),
        Index("ix_reservations_live", "user_id", "expires_at",
              sqlite_where=text("state = 'active'"), postgresql_where=text("state = 'active'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    tokens: Mapped[int] = mapped_column(BigInteger)
    model: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # The event a commit recorded and what the commit asked, so that a retried
    # commit returns the first result. No foreign key: pruning events must not
    # have to look through reservations.
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    commit_hash: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship()

    @property
    def user_uuid(self) -> str:
        return self.user.uuid


class Group(db.Model):
    """A team, project or department: limits shared by its members.

    Admission locks its row (FOR UPDATE) on PostgreSQL after the members'
    quota rows, which serialises metering per group.
    """

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(150), unique=True)
    daily_limit: Mapped[int | None] = mapped_column(BigInteger)
    weekly_limit: Mapped[int | None] = mapped_column(BigInteger)
    monthly_limit: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Membership(db.Model):
    """A user's membership of a group, since `created_at`."""

    __tablename__ = "memberships"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GroupUsageDay(db.Model):
    """Running total of the tokens charged to a group on one local day."""

    __tablename__ = "group_usage_days"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)


class ReservationGroup(db.Model):
    """A live hold counted against a group it was admitted against.

    The hold's tokens and expiry are copied here and the row is deleted when
    the hold ends, so a group's live holds are one index range, however many
    reservations are kept (an expired one's row goes when it is purged).
    """

    __tablename__ = "reservation_groups"
    __table_args__ = (Index("ix_reservation_groups_live", "group_id", "expires_at"),)

    reservation_id: Mapped[int] = mapped_column(
        ForeignKey("reservations.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    tokens: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ModelWeight(db.Model):
    """How much an input and an output token of a model count against quotas.

    Weights are exact decimals stored as text (e.g. `0.25`): SQLite has no
    exact decimal type, and text reads back the same on every backend.
    """

    __tablename__ = "model_weights"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    input_weight: Mapped[str] = mapped_column(String(32))
    output_weight: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(db.Model):
    """Who changed what, when, from which value to which."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_created", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(150))
    action: Mapped[str] = mapped_column(String(64))
    target_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    target: Mapped[str] = mapped_column(String(200))
    field: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)


class WebSession(db.Model):
    """A signed-in browser of the dashboard; only the cookie's SHA-256 is stored.

    It rides on the API token it was opened with: revoking that token or
    deactivating the user ends the session at once (checked on every request).
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[int] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Alert(db.Model):
    """A threshold of a limited period that a subject's usage crossed: the alerts' outbox.

    Written by metering in the ledger's transaction that recorded the usage
    (services/alerts.py), at most once per subject, period, period start and
    threshold. `dispatched_at` is set when the deliverer has made its
    deliveries, one per webhook subscribed at that moment.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("subject", "subject_id", "period", "period_start", "threshold",
                         name="uq_alerts_crossing"),
        Index("ix_alerts_undispatched", "id", sqlite_where=text("dispatched_at IS NULL"),
              postgresql_where=text("dispatched_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(32), unique=True)  # the event id receivers see
    subject: Mapped[str] = mapped_column(String(8))  # "user" or "group"
    subject_id: Mapped[int] = mapped_column(BigInteger)
    subject_uuid: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[date] = mapped_column(Date)  # local date
    threshold: Mapped[int] = mapped_column(Integer)  # percent
    usage: Mapped[int] = mapped_column(BigInteger)  # after the event that crossed
    effective_limit: Mapped[int] = mapped_column(BigInteger)
    reset_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Webhook(db.Model):
    """Where alerts are sent: a URL, the secret deliveries are signed with, a body format."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(32), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))  # needed to sign: stored, never shown
    format: Mapped[str] = mapped_column(String(8))  # "json" or "slack"
    events: Mapped[str] = mapped_column(String(200))  # event types subscribed, comma-separated
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def event_types(self) -> list[str]:
        return [name for name in self.events.split(",") if name]


class WebhookDelivery(db.Model):
    """One event for one webhook: pending until sent with a 2xx answer, or failed.

    A pending delivery is due at `next_attempt_at`. A deliverer claims it by
    setting `claimed_until` (its lease) and moving `next_attempt_at` to the
    same instant, so a delivery whose deliverer died is due again when the
    lease ends. A test event has no alert and is never pending.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "webhook_id", name="uq_webhook_deliveries_alert_webhook"),
        Index("ix_webhook_deliveries_due", "next_attempt_at",
              sqlite_where=text("state = 'pending'"), postgresql_where=text("state = 'pending'")),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    event_uuid: Mapped[str] = mapped_column(String(32))
    event_type: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeliveryAttempt(db.Model):
    """One try at sending a delivery: its HTTP status or error, and how long it took.

    An attempt whose deliverer died before it learnt the outcome is recorded
    when the delivery is claimed again, without a status or a duration.
    """

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int | None] = mapped_column(Integer)
