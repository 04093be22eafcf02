"""chatquota: per-user LLM token quotas with daily, weekly and monthly limits.

The factory imports its parts when it is called, not when the package is
imported: the `chatquota` command lists its commands without loading any of
them, and builds an app without the HTTP layer for commands that need none.
"""

from pathlib import Path

from flask import Flask
from flask.sessions import SessionInterface

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class ChatQuotaFlask(Flask):
    """Flask, asking once per function, not on every request, whether it is a coroutine.

    Flask passes every hook (before, after, teardown: a dozen per request
    here) and the view through `ensure_sync`, which inspects the function
    each time: a tenth of a quota check's own time.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync: dict = {}

    def ensure_sync(self, func):
        try:
            return self._sync[func]
        except KeyError:
            sync = super().ensure_sync(func)
            if len(self._sync) < 4096:  # hooks and views are few; never grow without bound
                self._sync[func] = sync
            return sync
        except TypeError:  # an unhashable callable: ask every time
            return super().ensure_sync(func)


class NoCookieSession(SessionInterface):
    """Flask's `session` is never opened: a request that wrote to it would raise."""

    def open_session(self, app, request):
        return None  # Flask then uses a null session

    def save_session(self, app, session, response):
        return None


def create_app(test_config: dict | None = None, *, http: bool = True) -> Flask:
    """Create and configure the application (`http=False`: database and CLI only)."""
    from . import cli, config
    from .dialect import configure_engine, engine_options
    from .extensions import db, migrate, release_connection

    app = ChatQuotaFlask(__name__, instance_relative_config=True)
    config.load(app, test_config)
    app.config.update(
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(app.config["SQLALCHEMY_DATABASE_URI"], app.config),
    )
    app.json.sort_keys = False
    # Nothing uses Flask's signed-cookie session (the dashboard keeps its own,
    # server-side): without this, every request would build a signer for it.
    app.session_interface = NoCookieSession()

    db.init_app(app)
    app.teardown_appcontext(release_connection)
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    with app.app_context():
        configure_engine(db.engine, app.config)
    if http:
        _add_http(app)
    cli.init_app(app)  # after smorest, whose own `openapi` command ours replaces
    return app


def _add_http(app: Flask) -> None:
    """Add what serves HTTP: API, document, dashboard, metrics, gateway, error handlers, deliverer."""
    from . import api, dashboard, deliverer, docs, errors, gateway, openapi, scrape, security

    smorest = openapi.init_app(app)
    api.register(smorest)
    app.register_blueprint(docs.bp)
    app.register_blueprint(scrape.bp)
    errors.register(app)
    security.init_app(app)
    dashboard.register(app)
    gateway.register(app)
    deliverer.init_app(app)
