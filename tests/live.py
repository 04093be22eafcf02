"""A real gunicorn serving chatquota on a free loopback port, for multi-process tests."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from chatquota.extensions import db
from chatquota.services import accounts, limits

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """Run `gunicorn wsgi:app` with the project's gunicorn.conf.py; stop on exit."""

    def __init__(self, database_url: str, workers: int = 4, log_path: Path | None = None, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, "CHATQUOTA_DATABASE_URL": database_url,
                    "CHATQUOTA_BIND": f"127.0.0.1:{self.port}",
                    "CHATQUOTA_WORKERS": str(workers), "CHATQUOTA_SECRET_KEY": "live-test", **env}
        self.process = None

    def __enter__(self):
        self.log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app"], cwd=ROOT, env=self.env,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/health/", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError("gunicorn did not come up within 30 s")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.log_path:
            self.log.close()


def seed(app, users: int, daily_limit: int):
    """Add a service account and `users` users limited per day to the app's (empty) database.

    Returns (service key, user uuids).
    """
    with app.app_context():
        service = accounts.create_user(db.session, None, "backend", is_service=True)
        _token, key = accounts.issue_token(db.session, None, service)
        uuids = []
        for i in range(users):
            user = accounts.create_user(db.session, None, f"user{i}")
            limits.set_quota(db.session, None, user.uuid, {"daily_limit": daily_limit})
            uuids.append(user.uuid)
    return key, uuids
