"""`GET /health/` and the check behind it."""

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from chatquota import create_app
from chatquota.extensions import db
from chatquota.services.health import database_reachable


def test_reachable_database(session):
    assert database_reachable(session) is True


def test_unreachable_database(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/no-such-folder/db.sqlite3")
    with Session(engine) as session:
        assert database_reachable(session) is False
    engine.dispose()


def test_health_answers_503_when_the_database_is_unreachable(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/no-such-folder/db.sqlite3"})
    response = app.test_client().get("/health/")
    assert response.status_code == 503
    assert response.json == {"status": "error", "database": "unreachable"}
    with app.app_context():
        db.engine.dispose()
