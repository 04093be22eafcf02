"""gunicorn settings, read automatically by `gunicorn wsgi:app` in this folder.

Threaded workers: a request holds a thread, not a process, so concurrent
metering calls of one worker share a ledger transaction (group commit) and
the gateway's open streams leave threads free for the rest of the API.
"""

import os

bind = os.environ.get("CHATQUOTA_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("CHATQUOTA_WORKERS", "4"))
worker_class = "gthread"
threads = int(os.environ.get("CHATQUOTA_THREADS", "64"))
accesslog = os.environ.get("CHATQUOTA_ACCESS_LOG") or None
# Behind nginx: trust X-Forwarded-* from the proxy on this machine only.
forwarded_allow_ips = "127.0.0.1,::1"
# The control socket defaults to one path per machine user; several instances
# (blue/green, tests, benchmarks) would fight over it. chatquota needs none.
control_socket_disable = True
