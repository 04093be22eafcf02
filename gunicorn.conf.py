"""gunicorn settings, read automatically by `gunicorn wsgi:app` in this folder."""

import os

bind = os.environ.get("CHATQUOTA_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("CHATQUOTA_WORKERS", "4"))
accesslog = os.environ.get("CHATQUOTA_ACCESS_LOG") or None
# Behind nginx: trust X-Forwarded-* from the proxy on this machine only.
forwarded_allow_ips = "127.0.0.1,::1"
# The control socket defaults to one path per machine user; several instances
# (blue/green, tests, benchmarks) would fight over it. chatquota needs none.
control_socket_disable = True
