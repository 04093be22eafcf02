"""gunicorn settings for every benchmark run, the baseline's included."""

import os

bind = os.environ["BENCH_BIND"]
workers = int(os.environ["BENCH_WORKERS"])
worker_class = "sync"
accesslog = None
errorlog = os.environ.get("BENCH_ERRORLOG", "-")
loglevel = "warning"
