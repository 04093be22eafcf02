"""chatquota: per-user LLM token quotas with daily, weekly and monthly limits."""

from pathlib import Path

from flask import Flask

from . import api, cli, config, dashboard, docs, errors, openapi, security
from .dialect import configure_engine, engine_options
from .extensions import db, migrate, release_connection

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(test_config: dict | None = None) -> Flask:
    """Create and configure the application."""
    app = Flask(__name__, instance_relative_config=True)
    config.load(app, test_config)
    app.config.update(
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(app.config["SQLALCHEMY_DATABASE_URI"], app.config),
    )
    app.json.sort_keys = False

    db.init_app(app)
    app.teardown_appcontext(release_connection)
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    with app.app_context():
        configure_engine(db.engine, app.config)

    smorest = openapi.init_app(app)
    api.register(smorest)
    app.register_blueprint(docs.bp)
    errors.register(app)
    security.init_app(app)
    cli.init_app(app)
    dashboard.register(app)
    return app
