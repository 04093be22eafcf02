"""Run service calls in threads that meet just before committing, to expose races.

Two transactions that both reach COMMIT have each done all their reads and
writes without seeing the other's: if the code lets them, they raced. When
the code serialises them (a row lock, SQLite's write lock), the second waits
inside its transaction, the first waits here in vain until MEET_SECONDS pass
and commits alone, and the second goes on after it.
"""

import threading
from contextlib import contextmanager

from sqlalchemy import event

from chatquota.extensions import db

MEET_SECONDS = 2


@contextmanager
def meeting_before_commit(engine, parties: int):
    """Hold each thread's first COMMIT until `parties` threads are committing (or time is up)."""
    barrier = threading.Barrier(parties, timeout=MEET_SECONDS)
    held = set()

    def hold(_conn):
        me = threading.get_ident()
        if me in held:
            return
        held.add(me)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:  # the others are blocked: serialised
            pass

    event.listen(engine, "commit", hold)
    try:
        yield
    finally:
        event.remove(engine, "commit", hold)


def run_together(app, *calls) -> list:
    """Run each `call(session)` in its own thread and app context; return results or errors."""
    results: list = [None] * len(calls)

    def run(i, call):
        with app.app_context():
            try:
                results[i] = call(db.session)
            except Exception as error:  # the caller asserts on it
                results[i] = error

    with app.app_context():
        engine = db.engine
    with meeting_before_commit(engine, len(calls)):
        threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racing call never finished"
    return results
