"""Settings: defaults, then `instance/config.py`, then `CHATQUOTA_*` variables.

Every environment variable the application reads is listed in ENVIRONMENT
once, with its default. More are read elsewhere, before or outside the
application: `CHATQUOTA_ADMIN_TOKEN` (the key `chatquota ensure-admin` gives the
first staff user; cli/accounts.py) and `CHATQUOTA_BIND`, `CHATQUOTA_WORKERS`,
`CHATQUOTA_ACCESS_LOG`, `CHATQUOTA_FORWARDED_ALLOW_IPS` (gunicorn's settings;
gunicorn.conf.py), and prometheus_client's `PROMETHEUS_MULTIPROC_DIR`
(gunicorn.conf.py sets it; metrics.py). The README's configuration table
lists all of them.

`CHATQUOTA_SECRET_KEY` becomes Flask's SECRET_KEY, unset by default: nothing
signs anything with it today (dashboard sessions are random server-side
values), it is there for a Flask extension that would.
"""

import ipaddress
import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def ip_networks(text: str) -> tuple:
    """Parse a comma-separated list of IP addresses and networks (`127.0.0.1,10.0.0.0/8`)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())


def flag(text: str) -> bool:
    """Parse a yes/no setting: true/false, yes/no, on/off, 1/0 (any case)."""
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0", ""):
        return False
    raise ValueError(text)


# name -> (config key, default, parser); a default of None: computed or unset.
ENVIRONMENT = {
    "CHATQUOTA_DATABASE_URL": ("SQLALCHEMY_DATABASE_URI", None, str),
    "CHATQUOTA_TIMEZONE": ("TIMEZONE", "UTC", str),
    "CHATQUOTA_SECRET_KEY": ("SECRET_KEY", None, str),
    "CHATQUOTA_MAX_BODY_BYTES": ("MAX_CONTENT_LENGTH", 65536, int),
    "CHATQUOTA_SQLITE_BUSY_TIMEOUT_MS": ("SQLITE_BUSY_TIMEOUT_MS", 30000, int),
    "CHATQUOTA_SQLITE_SYNCHRONOUS": ("SQLITE_SYNCHRONOUS", "FULL", str),
    "CHATQUOTA_DB_POOL_SIZE": ("DB_POOL_SIZE", 5, int),
    "CHATQUOTA_DB_MAX_OVERFLOW": ("DB_MAX_OVERFLOW", 5, int),
    "CHATQUOTA_SESSION_HOURS": ("SESSION_HOURS", 12, int),
    "CHATQUOTA_METRICS_ALLOW": ("METRICS_ALLOW", "127.0.0.1,::1", ip_networks),
    "CHATQUOTA_METRICS_TOKEN": ("METRICS_TOKEN", None, str),
    # Threads per gunicorn worker (gunicorn.conf.py reads it too); also how
    # many SQLite connections a worker keeps.
    "CHATQUOTA_THREADS": ("THREADS", 128, int),
    # The gateway (chatquota/gateway/): on when an upstream URL is set.
    "CHATQUOTA_UPSTREAM_URL": ("UPSTREAM_URL", None, str),
    "CHATQUOTA_UPSTREAM_KEY": ("UPSTREAM_KEY", None, str),
    "CHATQUOTA_UPSTREAMS_FILE": ("UPSTREAMS_FILE", None, str),
    "CHATQUOTA_UPSTREAM_TIMEOUT": ("UPSTREAM_TIMEOUT", 300, int),
    "CHATQUOTA_GATEWAY_USER_HEADER": ("GATEWAY_USER_HEADER", "X-Chatquota-User", str),
    "CHATQUOTA_GATEWAY_CREATE_USERS": ("GATEWAY_CREATE_USERS", False, flag),
    "CHATQUOTA_GATEWAY_MAX_TOKENS": ("GATEWAY_MAX_TOKENS", 4096, int),
    "CHATQUOTA_GATEWAY_PROMPT_OVERHEAD": ("GATEWAY_PROMPT_OVERHEAD", 64, int),
    "CHATQUOTA_GATEWAY_HOLD_SECONDS": ("GATEWAY_HOLD_SECONDS", 3600, int),
    "CHATQUOTA_GATEWAY_MAX_BODY_BYTES": ("GATEWAY_MAX_BODY_BYTES", 16 * 2**20, int),
    "CHATQUOTA_GATEWAY_RESERVED_THREADS": ("GATEWAY_RESERVED_THREADS", 16, int),
    # Alerts' webhooks (chatquota/deliverer.py): whether this process delivers,
    # how long a receiver may take, and retries: doubling from the base, for hours.
    "CHATQUOTA_WEBHOOK_DELIVERY": ("WEBHOOK_DELIVERY", True, flag),
    "CHATQUOTA_WEBHOOK_TIMEOUT_SECONDS": ("WEBHOOK_TIMEOUT_SECONDS", 10, int),
    "CHATQUOTA_WEBHOOK_RETRY_BASE_SECONDS": ("WEBHOOK_RETRY_BASE_SECONDS", 10, int),
    "CHATQUOTA_WEBHOOK_RETRY_HOURS": ("WEBHOOK_RETRY_HOURS", 24, int),
}

# How an error message names what a parser expects.
EXPECTED = {
    int: "a whole number",
    flag: "true or false",
    ip_networks: "a comma-separated list of IP addresses or networks, e.g. 127.0.0.1,10.0.0.0/8",
}

_SYNCHRONOUS = {"OFF", "NORMAL", "FULL", "EXTRA"}


class ConfigError(ValueError):
    """A setting has a value the application cannot run with."""


def load(app, test_config: dict | None) -> None:
    """Fill `app.config` and validate it."""
    for _name, (key, default, _parser) in ENVIRONMENT.items():
        if default is not None:
            app.config[key] = default
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(
        Path(app.instance_path) / "chatquota.sqlite3"
    )
    app.config.from_pyfile("config.py", silent=True)
    for name, (key, _default, parser) in ENVIRONMENT.items():
        if name in os.environ:
            app.config[key] = _parse(name, parser, os.environ[name])
    if test_config:
        app.config.update(test_config)
    _finish(app)


def _parse(name: str, parser, value: str):
    try:
        return parser(value)
    except ValueError:
        raise ConfigError(f"{name} must be {EXPECTED.get(parser, 'text')}, got {value!r}") from None


def _finish(app) -> None:
    try:
        app.config["TZ"] = ZoneInfo(app.config["TIMEZONE"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"CHATQUOTA_TIMEZONE: unknown time zone {app.config['TIMEZONE']!r} "
                          "(use an IANA name such as UTC or Europe/Berlin)") from None
    sync = str(app.config["SQLITE_SYNCHRONOUS"]).upper()
    if sync not in _SYNCHRONOUS:
        raise ConfigError(f"CHATQUOTA_SQLITE_SYNCHRONOUS must be one of {sorted(_SYNCHRONOUS)}, "
                          f"got {app.config['SQLITE_SYNCHRONOUS']!r}")
    app.config["SQLITE_SYNCHRONOUS"] = sync
    if isinstance(app.config["METRICS_ALLOW"], str):  # the default, or instance/config.py
        app.config["METRICS_ALLOW"] = _parse("CHATQUOTA_METRICS_ALLOW", ip_networks,
                                             app.config["METRICS_ALLOW"])
    for name, minimum in (("MAX_CONTENT_LENGTH", 1024), ("SQLITE_BUSY_TIMEOUT_MS", 0),
                          ("DB_POOL_SIZE", 1), ("DB_MAX_OVERFLOW", 0), ("SESSION_HOURS", 1),
                          ("THREADS", 1), ("UPSTREAM_TIMEOUT", 1), ("GATEWAY_MAX_TOKENS", 1),
                          ("GATEWAY_PROMPT_OVERHEAD", 0), ("GATEWAY_HOLD_SECONDS", 60),
                          ("GATEWAY_MAX_BODY_BYTES", 1024), ("GATEWAY_RESERVED_THREADS", 0),
                          ("WEBHOOK_TIMEOUT_SECONDS", 1), ("WEBHOOK_RETRY_BASE_SECONDS", 1),
                          ("WEBHOOK_RETRY_HOURS", 1)):
        if app.config[name] < minimum:
            variable = next(v for v, (key, *_r) in ENVIRONMENT.items() if key == name)
            raise ConfigError(f"{variable} must be at least {minimum}, got {app.config[name]}")
