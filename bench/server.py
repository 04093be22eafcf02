"""Start and stop gunicorn on a free loopback port with the production settings."""

import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "bench" / "gunicorn.conf.py"
BASELINE_APP = "bench.baseline:app"
API = "/api/chat-quota"
READY_TIMEOUT = 60
# What the project's gunicorn.conf.py chooses (CHATQUOTA_WORKERS, CHATQUOTA_THREADS).
_PRODUCTION = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
WORKERS, THREADS, WORKER_CLASS = (_PRODUCTION["workers"], _PRODUCTION["threads"],
                                  _PRODUCTION["worker_class"])


@contextmanager
def scratch(prefix: str):
    """Yield a temporary folder for a run's databases and logs; remove it after (BENCH_KEEP=1 keeps it)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def standalone(section, name: str) -> int:
    """Run one section of the benchmark alone; print its Markdown; return 1 if requests failed."""
    started = time.monotonic()
    with scratch(f"chatquota-bench-{name}-") as work:
        markdown, failed = section(work)
    print(markdown)
    print(f"{name} bench took {time.monotonic() - started:.0f}s", file=sys.stderr)
    if failed:
        print(f"{failed} requests failed", file=sys.stderr)
    return 1 if failed else 0


def app_env(url: str, **extra: str) -> dict:
    """Return the environment of a chatquota server on the database at `url`."""
    return {"CHATQUOTA_DATABASE_URL": url, "CHATQUOTA_SECRET_KEY": "bench",
            "CHATQUOTA_TIMEZONE": "UTC", **extra}


def free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer {url} within {READY_TIMEOUT}s")


@contextmanager
def gunicorn(app: str, ready_path: str, workdir: Path, env: dict | None = None):
    """Run `gunicorn app` until the block ends; yield its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(workdir / f"gunicorn-{port}.log", "w")
    extra = {"BENCH_BIND": f"127.0.0.1:{port}"}
    if app == BASELINE_APP:
        extra["BENCH_BASELINE"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(CONFIG), app],
        cwd=ROOT,
        env={**os.environ, **(env or {}), **extra},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(base + ready_path, process)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
