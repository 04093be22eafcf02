"""The README's systemd unit passes `systemd-analyze verify` (syntax, keys, executables)."""

import re
import shutil
import subprocess

import pytest

from .live import ROOT

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def readme_unit() -> str:
    """Return the README's systemd unit (the ini block of its systemd section)."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### systemd"):]
    return re.search(r"```ini\n(.*?)```", section, re.S).group(1)


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="needs systemd-analyze (Debian's systemd package; "
                    ".ci/run installs it)")
def test_the_readme_unit_verifies(tmp_path):
    # The unit names /srv/chatquota; here the checkout is ROOT (its .venv exists).
    unit = tmp_path / "chatquota.service"
    unit.write_text(readme_unit().replace("/srv/chatquota", str(ROOT)))
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout == ""


def test_the_readme_unit_runs_gunicorn_from_the_venv_with_hardening():
    unit = readme_unit()
    for line in ("ExecStart=/srv/chatquota/.venv/bin/gunicorn wsgi:app",
                 "WorkingDirectory=/srv/chatquota", "Restart=on-failure", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ReadWritePaths=/srv/chatquota/instance"):
        assert line in unit.splitlines()
