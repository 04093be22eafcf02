"""The application factory and its configuration."""

import pytest

from chatquota import create_app
from chatquota.config import ConfigError


def test_config_takes_test_values(tmp_path):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"})
    assert app.testing
    assert app.config["TZ"].key == "UTC"


def test_default_database_lives_in_instance_folder(monkeypatch):
    monkeypatch.delenv("CHATQUOTA_DATABASE_URL", raising=False)
    app = create_app({"SECRET_KEY": "x"})
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("/instance/chatquota.sqlite3")


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("CHATQUOTA_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("CHATQUOTA_DATABASE_URL", f"sqlite:///{tmp_path}/env.db")
    app = create_app()
    assert app.config["TZ"].key == "Europe/Berlin"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/env.db"


def test_secret_key_comes_only_from_the_settings(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path}/x.db"
    monkeypatch.delenv("CHATQUOTA_SECRET_KEY", raising=False)
    assert create_app({"SQLALCHEMY_DATABASE_URI": url}).config["SECRET_KEY"] is None
    monkeypatch.setenv("CHATQUOTA_SECRET_KEY", "from-the-environment")
    assert create_app({"SQLALCHEMY_DATABASE_URI": url}).config["SECRET_KEY"] == "from-the-environment"


@pytest.mark.parametrize(
    "name, value",
    [("CHATQUOTA_TIMEZONE", "Mars/Olympus"), ("CHATQUOTA_MAX_BODY_BYTES", "lots"),
     ("CHATQUOTA_SQLITE_SYNCHRONOUS", "SOMETIMES"), ("CHATQUOTA_SESSION_HOURS", "0"),
     ("CHATQUOTA_DB_POOL_SIZE", "-3"), ("CHATQUOTA_MAX_BODY_BYTES", "10")],
)
def test_bad_settings_fail_fast(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        create_app()


def test_health_needs_no_auth(client):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}
