"""The baseline: a bare Flask app with one trivial JSON route."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    """Return a small JSON object."""
    return {"status": "ok"}
