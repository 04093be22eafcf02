"""The write path of metering: one transaction, one commit, for many callers at once.

Every write that admits or records tokens (consume, reserve, commit,
release) is an operation handed to the ledger of its database. Callers that
arrive while a transaction is being written queue up; when it is done, one
of them (the leader) takes everything queued and applies it in the next
transaction, one operation after another, then commits once. That is group
commit: under load one fsync covers many admissions, and the time spent
holding the write lock is the time SQL takes, not Python's request handling,
which happens before and after in each caller's own thread.

Why it never overshoots or loses anything:

- SQLite: a transaction takes the writer flock and `BEGIN IMMEDIATE`, so
  transactions of every process run one at a time; PostgreSQL: it first locks
  the quota rows of every user its operations touch, in ascending id order,
  then the rows of every group those users belong to, in ascending id order,
  so transactions touching a user or a group run one at a time. Everything
  else that takes these locks (limit and membership changes) takes them in
  the same order, users before groups: no deadlocks. A membership change
  locks the user's row too, so the groups read after the users' locks are
  the groups the users belong to until the commit.
- Inside a transaction, operations run in turn and each reads the state
  after the previous one's writes: every admission sees every earlier one.
- An operation that refuses (a DomainError) raises before writing anything;
  the others in its batch go on. Any other error rolls the whole batch back
  and its operations are retried one per transaction, so one bad operation
  cannot fail its neighbours.
- A caller hears its result only after COMMIT returned: an acknowledged
  operation is durable; a crash before that acknowledges nothing.
"""

import os
import threading
import time
import weakref
from typing import Protocol

from sqlalchemy import any_, bindparam, literal, select
from sqlalchemy.engine import Engine

from .. import metrics
from ..dialect import Raw, lock_for_update, prepare, writer_lock
from ..models import Group, Membership, Quota
from .errors import DomainError

MAX_BATCH = 64  # operations per transaction; more wait for the next one

# PostgreSQL only (SQLite's write lock covers everything); one statement locks
# the rows in id order.
_LOCK_USERS = prepare(
    select(literal(1)),
    select(Quota.user_id).where(Quota.user_id == any_(bindparam("ids")))
    .order_by(Quota.user_id).with_for_update(),
)
_LOCK_GROUPS = prepare(
    select(literal(1)),
    select(Group.id).where(Group.id.in_(
        select(Membership.group_id).where(Membership.user_id == any_(bindparam("ids")))))
    .order_by(Group.id).with_for_update(),
)


class Operation(Protocol):
    """A unit of metering work applied inside the ledger's transaction."""

    def user_id(self, raw: Raw) -> int | None:
        """Return the id of the user whose quota row this operation needs locked."""

    def apply(self, raw: Raw):
        """Read, decide and write on `raw`; raise a DomainError only before writing anything."""


class _Job:
    """One caller's operation, its outcome, and the event its thread waits on."""

    __slots__ = ("op", "result", "error", "finished", "wake")

    def __init__(self, op: Operation):
        self.op, self.result, self.error, self.finished = op, None, None, False
        self.wake = threading.Event()

    def finish(self, result=None, error: BaseException | None = None) -> None:
        self.result, self.error, self.finished = result, error, True
        self.wake.set()

    def outcome(self):
        if self.error is not None:
            raise self.error
        return self.result


class Ledger:
    """The group-commit writer of one database in this process."""

    def __init__(self, engine: Engine):
        # Weakly: the registry below must not keep a disposed app's engine alive.
        self._engine = weakref.ref(engine)
        self._mutex = threading.Lock()
        self._queue: list[_Job] = []
        self._busy = False

    def run(self, op: Operation):
        """Apply `op` in a transaction shared with concurrent callers; return its result."""
        job = _Job(op)
        with self._mutex:
            self._queue.append(job)
            leading, self._busy = not self._busy, True
        if not leading:
            job.wake.wait()  # until its batch is done, or it is made the next leader
            if job.finished:
                return job.outcome()
        with self._mutex:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        try:
            self._write(batch)
        finally:
            with self._mutex:
                if self._queue:
                    self._queue[0].wake.set()  # its thread leads the next batch
                else:
                    self._busy = False
        return job.outcome()

    def _write(self, batch: list[_Job]) -> None:
        """Apply and commit a batch; every job in it is finished afterwards."""
        try:
            engine = self._engine()
            waiting = time.monotonic()
            with writer_lock(engine), Raw.checkout(engine) as raw:
                metrics.lock_wait(time.monotonic() - waiting)
                self._apply(raw, batch)
        except BaseException as error:  # e.g. no connection: nobody may wait forever
            for job in batch:
                if not job.finished:
                    job.finish(error=error)
            if not isinstance(error, Exception):
                raise

    def _apply(self, raw: Raw, batch: list[_Job]) -> None:
        outcomes = []
        try:
            raw.begin_write()
            if raw.is_postgresql:
                ids = list({job.op.user_id(raw) for job in batch} - {None})
                lock_for_update(raw, _LOCK_USERS, ids)
                lock_for_update(raw, _LOCK_GROUPS, ids)  # the users' groups, after the users
            for job in batch:
                try:
                    outcomes.append((job, job.op.apply(raw), None))
                except DomainError as refused:
                    outcomes.append((job, None, refused))
            raw.commit()
        except Exception as error:
            raw.rollback()
            if len(batch) == 1:
                batch[0].finish(error=error)
                return
            for job in batch:  # find the one that fails; the others still commit
                self._apply(raw, [job])
            return
        for job, result, error in outcomes:
            job.finish(result, error)


_LEDGERS: "weakref.WeakKeyDictionary[Engine, tuple[int, Ledger]]" = weakref.WeakKeyDictionary()
_LEDGERS_MUTEX = threading.Lock()


def ledger_for(engine: Engine) -> Ledger:
    """Return this process's ledger of `engine` (a forked child makes its own)."""
    with _LEDGERS_MUTEX:
        pid, ledger = _LEDGERS.get(engine, (None, None))
        if pid != os.getpid():
            ledger = Ledger(engine)
            _LEDGERS[engine] = (os.getpid(), ledger)
        return ledger
