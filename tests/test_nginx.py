"""Debian's nginx with the README's configuration, verbatim, in front of a real gunicorn.

Only what must differ on a test machine is changed: the listen address, the
certificate (a self-signed one made here) and the upstream port. nginx serves
https for real, so `$scheme` is `https` as in production.

Streamed replies of the gateway (`/v1/`) pass through unbuffered: the first
chunk of a slow stream reaches the client while the upstream is still
generating. The README's `proxy_buffering off;` for `/v1/` allows it, and so
does the gateway's own `X-Accel-Buffering: no` header (for an nginx
configured otherwise).
"""

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from chatquota.extensions import db
from chatquota.services import accounts

from .dashboard_helpers import CSRF
from .live import ROOT, LiveServer, free_port
from .upstream import FakeUpstream

NGINX = Path("/usr/sbin/nginx")
HOST = "quota.example.org"

pytestmark = [
    pytest.mark.skipif(not NGINX.exists(), reason="needs Debian's nginx at /usr/sbin/nginx "
                       "(apt-get install -y nginx; .ci/run installs it)"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command "
                       "for a self-signed certificate"),
]


def readme_nginx_block() -> str:
    """Return the first nginx block of the README's production section."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Running in production"):]
    return re.search(r"```nginx\n(.*?)```", section, re.S).group(1)


def for_this_machine(block: str, port: int, upstream: int, cert: Path, key: Path) -> str:
    """Change only the listen address, the certificate and the upstream of the README's block."""
    changes = [
        (r"listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        (r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};"),
        (r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};"),
        (r"proxy_pass http://127\.0\.0\.1:8000;", f"proxy_pass http://127.0.0.1:{upstream};"),
    ]
    for pattern, replacement in changes:
        block, count = re.subn(pattern, replacement, block)
        assert count, f"the README's nginx block has no {pattern!r}"
    return block


def self_signed(folder: Path) -> tuple[Path, Path]:
    """Make a certificate for quota.example.org and 127.0.0.1."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", f"/CN={HOST}", "-keyout", str(key), "-out", str(cert),
                    "-addext", f"subjectAltName=DNS:{HOST},IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def nginx_conf(folder: Path, server_block: str) -> Path:
    """Write a main configuration around the server block, keeping every file in `folder`."""
    temp_paths = "\n".join(f"    {kind}_temp_path {folder / kind};"
                           for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = folder / "nginx.conf"
    conf.write_text(f"""daemon off;
worker_processes 1;
pid {folder / 'nginx.pid'};
{'user root;' if os.geteuid() == 0 else ''}
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp_paths}
{server_block}
}}
""")
    return conf


@pytest.fixture(scope="module")
def front(module_app, module_database_url, tmp_path_factory):
    """nginx (https) in front of gunicorn; yields (https base URL, CA file, staff headers)."""
    with module_app.app_context():
        staff = accounts.create_user(db.session, None, "staff", is_staff=True)
        _token, key = accounts.issue_token(db.session, None, staff)
        for name in ("ann", "bo"):
            accounts.create_user(db.session, None, name)
    folder = tmp_path_factory.mktemp("nginx")
    cert, tls_key = self_signed(folder)
    port = free_port()
    upstream = FakeUpstream(token_seconds=0.5)
    with upstream, LiveServer(module_database_url, workers=2,
                              CHATQUOTA_UPSTREAM_URL=upstream.url) as live:
        block = for_this_machine(readme_nginx_block(), port, live.port, cert, tls_key)
        conf = nginx_conf(folder, block)
        check = subprocess.run([str(NGINX), "-t", "-p", str(folder), "-c", str(conf), "-e", "stderr"],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        nginx = subprocess.Popen([str(NGINX), "-p", str(folder), "-c", str(conf), "-e", "stderr"],
                                 stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(port, nginx)
            yield (f"https://127.0.0.1:{port}", str(cert),
                   {"Authorization": f"Token {key}", "Host": HOST}, upstream)
        finally:
            nginx.terminate()
            nginx.wait(timeout=20)
            nginx.stderr.close()


def _wait_for(port: int, nginx: subprocess.Popen) -> None:
    """Wait until nginx accepts connections on `port`, failing if it exits."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert nginx.poll() is None, nginx.stderr.read()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("nginx did not listen within 20 s")


def test_links_behind_https_are_https(front):
    url, ca, headers, _upstream = front
    response = requests.get(f"{url}/api/users/?page_size=1", headers=headers, verify=ca, timeout=10)
    assert response.status_code == 200 and response.headers["X-Result-Count"] == "3"
    assert f'<https://{HOST}/api/users/?page_size=1&page=2>; rel="next"' in response.headers["Link"]


def test_dashboard_cookies_behind_https_are_secure(front):
    url, ca, headers, _upstream = front
    browser = requests.Session()
    form = browser.get(f"{url}/sign-in/", headers={"Host": HOST}, verify=ca, timeout=10)
    form_cookies = form.raw.headers.getlist("Set-Cookie")
    assert form.status_code == 200 and form_cookies and all("Secure" in c for c in form_cookies)
    form_data = {"token": headers["Authorization"].removeprefix("Token "),
                 "csrf_token": CSRF.search(form.text).group(1)}
    signed_in = browser.post(f"{url}/sign-in/", data=form_data, headers={"Host": HOST}, verify=ca,
                             allow_redirects=False, timeout=10)
    assert signed_in.status_code == 302, signed_in.text  # signed in: on to the users page
    session = next(c for c in signed_in.raw.headers.getlist("Set-Cookie")
                   if c.startswith("chatquota_session="))
    assert "; Secure" in session and "; HttpOnly" in session


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_body_is_refused_by_nginx(front, chunked):
    url, ca, headers, _upstream = front
    body = b'{"user_uuid": "' + b"0" * 100_000 + b'"}'
    data = iter([body]) if chunked else body
    response = requests.post(f"{url}/api/chat-quota/consume/", data=data, verify=ca, timeout=10,
                             headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert "nginx" in response.text  # refused before gunicorn read a byte


def test_the_gateway_lists_models_through_nginx(front):
    url, ca, headers, _upstream = front
    response = requests.get(f"{url}/v1/models", headers=headers, verify=ca, timeout=10)
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == ["tiny", "other"]


def test_a_streamed_reply_arrives_unbuffered(front):
    url, ca, headers, upstream = front
    body = {"model": "tiny", "stream": True, "max_tokens": 6,
            "messages": [{"role": "user", "content": "x" * 100_000}]}  # over the API's 64k
    with requests.post(f"{url}/v1/chat/completions", json=body, stream=True, verify=ca,
                       headers=headers, timeout=30) as response:
        assert response.status_code == 200
        lines = (line for line in response.iter_lines() if line.startswith(b"data:"))
        assert b'"content"' in next(lines)
        # the upstream takes 3 s for six tokens: this arrived while it was still generating
        assert upstream.streams_finished == 0
        rest = list(lines)
    assert rest[-1] == b"data: [DONE]" and upstream.streams_finished == 1
