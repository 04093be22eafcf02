"""gunicorn settings for every benchmark server: production's, on a free loopback port.

The project's gunicorn.conf.py is executed here, so workers, worker class,
threads and the start-up hooks (checks, metrics folder) are the ones
`make run` uses; only the listen address is overridden. The bare-Flask
baseline runs with the same settings but starts no webhook deliverer (it has
no chatquota configuration to give one).
"""

import os
from pathlib import Path

_PRODUCTION = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
exec(compile(_PRODUCTION.read_text(), str(_PRODUCTION), "exec"))

bind = os.environ["BENCH_BIND"]

if os.environ.get("BENCH_BASELINE"):

    def post_worker_init(worker):
        """Start nothing: the bare Flask app has no deliverer."""
