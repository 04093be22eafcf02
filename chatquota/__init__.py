"""chatquota: per-user LLM token quotas with daily, weekly and monthly limits."""

from flask import Flask
from flask_smorest import Api

from . import admin, api, cli, config, errors
from .dialect import configure_engine, engine_options
from .extensions import db


def create_app(test_config: dict | None = None) -> Flask:
    """Create and configure the application."""
    app = Flask(__name__, instance_relative_config=True)
    config.load(app, test_config)
    app.config.update(
        API_TITLE="chatquota",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(app.config["SQLALCHEMY_DATABASE_URI"], app.config),
    )
    app.json.sort_keys = False

    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine, app.config)

    smorest = Api(app)
    api.register(smorest)
    errors.register(app, smorest)
    cli.init_app(app)
    admin.register(app)
    return app
