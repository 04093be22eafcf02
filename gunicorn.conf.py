"""gunicorn settings, read automatically by `gunicorn wsgi:app` in this folder.

Every value comes from a CHATQUOTA_* variable (README, Configuration). A bad
value, a database the service cannot write or a listen address in use stops
the start with one line naming what to fix, before any worker starts.

Threaded workers: a request holds a thread, not a process, so concurrent
metering calls of one worker share a ledger transaction (group commit) and
the gateway's open streams leave threads free for the rest of the API.
Each worker also runs the alerts' webhook deliverer, a thread started once
the worker has loaded the app (chatquota/deliverer.py): no process to add.
"""

import os
import shutil
import tempfile


def _whole_number(name: str, default: int) -> int:
    """Read a setting that must be a whole number of at least 1, or stop naming it."""
    value = os.environ.get(name, str(default))
    if not value.strip().isdigit() or int(value) < 1:
        raise SystemExit(f"Error: {name} must be a whole number of at least 1, got {value!r}.")
    return int(value)


bind = os.environ.get("CHATQUOTA_BIND", "127.0.0.1:8000")
workers = _whole_number("CHATQUOTA_WORKERS", 4)
worker_class = "gthread"
threads = _whole_number("CHATQUOTA_THREADS", 128)  # as config.py
accesslog = os.environ.get("CHATQUOTA_ACCESS_LOG") or None
# The proxies whose X-Forwarded-Proto gunicorn believes (https links, Secure
# cookies): nginx on this machine unless set, e.g. to nginx's address.
forwarded_allow_ips = os.environ.get("CHATQUOTA_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# The control socket defaults to one path per machine user; several instances
# (blue/green, tests, benchmarks) would fight over it. chatquota needs none.
control_socket_disable = True


def on_starting(server):
    """Check settings, database and listen address; give the metrics a fresh folder."""
    from chatquota import checks

    checks.before_serving(server.cfg.bind)
    # Each worker writes its metrics to files in this folder and /metrics adds
    # them up. Unless the operator chose one, a folder of this run's own.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        server.metrics_dir = tempfile.mkdtemp(prefix="chatquota-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = server.metrics_dir
    from chatquota import metrics  # only now: prometheus_client reads the folder on import

    metrics.clear_multiprocess_dir()


def post_worker_init(worker):
    """Start this worker's webhook deliverer, so pending deliveries resume without a request."""
    from chatquota import deliverer

    deliverer.start(worker.wsgi)


def worker_exit(server, worker):
    """Stop this worker's deliverer, giving an attempt under way a moment to be recorded."""
    from chatquota import deliverer

    deliverer.stop()


def child_exit(server, worker):
    """Let the metrics forget a worker that ended."""
    from chatquota import metrics

    metrics.worker_exited(worker.pid)


def on_exit(server):
    """Remove the metrics folder made at start."""
    if getattr(server, "metrics_dir", None):
        shutil.rmtree(server.metrics_dir, ignore_errors=True)
