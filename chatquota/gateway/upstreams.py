"""Upstream servers: which one serves a model, and one HTTP client per upstream per process.

The default upstream is `CHATQUOTA_UPSTREAM_URL` (with `CHATQUOTA_UPSTREAM_KEY`)
and serves every model. More can be listed in a TOML file
(`CHATQUOTA_UPSTREAMS_FILE`, default `instance/upstreams.toml` when it
exists), each serving the models its patterns match:

    [[upstream]]
    name = "vllm"
    url = "http://10.0.0.5:8000/v1"
    key = "..."                          # optional
    models = ["meta-llama/*", "qwen*"]   # shell-style patterns

The first upstream whose patterns match a model serves it; the default one
serves the rest.
"""

import fnmatch
import os
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

import httpx

from ..config import ConfigError

CONNECT_TIMEOUT = 10.0  # seconds to open a connection to an upstream


@dataclass(frozen=True)
class Upstream:
    """One OpenAI-compatible server: its base URL (ending in /v1, say), key and models."""

    name: str
    url: str
    key: str | None
    models: tuple[str, ...] = ()  # patterns; none: every model

    def serves(self, model: str) -> bool:
        return not self.models or any(fnmatch.fnmatchcase(model, p) for p in self.models)

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


def load(config: dict, instance_path: str) -> list[Upstream]:
    """Return the configured upstreams, most specific first; none when the gateway is off."""
    listed = []
    path = config.get("UPSTREAMS_FILE") or os.path.join(instance_path, "upstreams.toml")
    if config.get("UPSTREAMS_FILE") or os.path.exists(path):
        listed = _read_file(Path(path))
    if config.get("UPSTREAM_URL"):
        listed.append(Upstream("default", _base(config["UPSTREAM_URL"], "CHATQUOTA_UPSTREAM_URL"),
                               config.get("UPSTREAM_KEY")))
    return listed


def _read_file(path: Path) -> list[Upstream]:
    try:
        entries = tomllib.loads(path.read_text()).get("upstream", [])
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the upstreams file ({error}).") from None
    upstreams = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}, upstream {number}"
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ConfigError(f"{where}: needs a url, e.g. url = \"http://127.0.0.1:8080/v1\".")
        models = entry.get("models", [])
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise ConfigError(f"{where}: models must be a list of model name patterns.")
        key = entry.get("key")
        if key is not None and not isinstance(key, str):
            raise ConfigError(f"{where}: key must be text.")
        upstreams.append(Upstream(str(entry.get("name", number)), _base(entry["url"], where),
                                  key, tuple(models)))
    return upstreams


def _base(url: str, where: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: an upstream URL starts with http:// or https://, got {url!r}.")
    return url.rstrip("/")


class Router:
    """Picks the upstream of a model and keeps one pooled HTTP client per upstream."""

    def __init__(self, upstreams: list[Upstream], read_timeout: float):
        self.upstreams = upstreams
        self._timeout = httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT)
        self._clients: dict[Upstream, httpx.Client] = {}
        self._pid = os.getpid()
        self._mutex = threading.Lock()

    def for_model(self, model: str) -> Upstream | None:
        """Return the upstream that serves `model`, or None."""
        return next((u for u in self.upstreams if u.serves(model)), None)

    def client(self, upstream: Upstream) -> httpx.Client:
        """Return this process's client of `upstream` (made after a fork, not inherited)."""
        with self._mutex:
            if self._pid != os.getpid():
                self._clients, self._pid = {}, os.getpid()
            client = self._clients.get(upstream)
            if client is None:
                client = httpx.Client(timeout=self._timeout, headers=upstream.headers(),
                                      limits=httpx.Limits(max_connections=None))
                self._clients[upstream] = client
            return client

    def close(self) -> None:
        """Close this process's connections to the upstreams."""
        with self._mutex:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()
