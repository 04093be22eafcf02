"""Start-up checks: what an operator can fix, reported in one line that names it.

The `chatquota` command runs them before a command, gunicorn's master before it
forks a worker (gunicorn.conf.py): a bad setting, a database file or folder
the service cannot write, or a listen address already taken stops the start
with a message instead of a traceback per worker.
"""

import errno
import getpass
import os
import socket
from pathlib import Path


class StartupError(Exception):
    """Something outside the code stops chatquota from starting; the message says what."""


def check_database(app) -> None:
    """Raise StartupError unless the app's SQLite database can be created and written."""
    from .extensions import db

    with app.app_context():
        url = db.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database).absolute()
    folder = path.parent
    user = _user()
    hint = "or set CHATQUOTA_DATABASE_URL"
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise StartupError(f"The database folder {folder} {what}: create it ({hint}).")
    # SQLite writes a -wal and a -shm file beside the database, chatquota a -lock file.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StartupError(f"The database folder {folder} is not writable by user {user}: "
                           f"chown or chmod it ({hint}).")
    for file in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-lock"))):
        if file.exists() and not os.access(file, os.R_OK | os.W_OK):
            raise StartupError(f"The database file {file} is not writable by user {user}: "
                               f"chown or chmod it ({hint}).")


def check_listen_addresses(addresses: list[str]) -> None:
    """Raise StartupError if another program already listens on a host:port to bind."""
    for address in addresses:
        host, _, port = address.rpartition(":")
        if address.startswith(("unix:", "fd://")) or not port.isdigit():
            continue
        host = host.strip("[]") or "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
            try:
                probe.bind((host, int(port)))
            except OSError as err:
                if err.errno != errno.EADDRINUSE:
                    raise StartupError(f"Cannot listen on {address}: {err.strerror} "
                                       "(set CHATQUOTA_BIND to an address of this machine).")
                raise StartupError(f"{address} is already in use by another program: stop it, "
                                   f"or set CHATQUOTA_BIND to a free address, e.g. {host}:{int(port) + 1}.")


def before_serving(addresses: list[str]) -> None:
    """Check settings, database and listen addresses in gunicorn's master; exit with one line."""
    from . import create_app
    from .extensions import db

    try:
        app = create_app(http=False)
        check_database(app)
        with app.app_context():
            db.engine.dispose()  # the workers open their own connections
        # Re-executed (USR2) or socket-activated: the sockets are already ours.
        if not (os.environ.get("GUNICORN_FD") or os.environ.get("LISTEN_FDS")):
            check_listen_addresses(addresses)
    except Exception as error:
        message = operator_message(error)
        if message is None:
            raise
        raise SystemExit(f"Error: {message}") from None


def operator_message(error: BaseException) -> str | None:
    """Return a one-line explanation of an error an operator can fix, or None for a bug."""
    from sqlalchemy.exc import OperationalError

    from .config import ConfigError

    if isinstance(error, (ConfigError, StartupError)):
        return str(error)
    if isinstance(error, OperationalError):
        cause = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        return (f"The database cannot be used: {cause} (check CHATQUOTA_DATABASE_URL, "
                "that the database server runs, and the permissions of its files).")
    return None


def _user() -> str:
    """Return the name of the user this process runs as."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
