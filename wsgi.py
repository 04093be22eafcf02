"""WSGI entry point: `gunicorn wsgi:app`."""

from chatquota import create_app

app = create_app()
