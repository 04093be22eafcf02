"""What an operator sees when something outside the code is wrong: one line that names the fix.

From the `chatquota` command and from gunicorn's start: bad settings, a database
folder or file that cannot be written, a database server that does not
answer, a listen address already in use.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo

from chatquota import checks, cli

from .live import ROOT, free_port

CHATQUOTA = Path(sys.executable).with_name("chatquota")


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """Assert a failed start that printed exactly one error line; return it."""
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines()
              if line.strip() and "[INFO] Starting gunicorn" not in line]
    assert len(errors) == 1 and errors[0].startswith("Error: "), result.stderr
    return errors[0]


def run_command(tmp_path, *args, **env):
    """Run the installed `chatquota` command from a folder outside the project."""
    environment = {**os.environ, "CHATQUOTA_DATABASE_URL": f"sqlite:///{tmp_path}/cq.sqlite3", **env}
    return subprocess.run([str(CHATQUOTA), *args], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=120)


def start_gunicorn(tmp_path, **env):
    """Start gunicorn as `make run` does, expecting it to stop by itself."""
    environment = {**os.environ, "CHATQUOTA_DATABASE_URL": f"sqlite:///{tmp_path}/cq.sqlite3",
                   "CHATQUOTA_BIND": f"127.0.0.1:{free_port()}", "CHATQUOTA_WORKERS": "1", **env}
    return subprocess.run([sys.executable, "-m", "gunicorn", "wsgi:app"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


# Every setting is checked by the same code (test_factory.py tries each); one
# per kind of message shows that it reaches the operator as one line.
TIMEZONE = ({"CHATQUOTA_TIMEZONE": "Mars/Olympus"},
            "CHATQUOTA_TIMEZONE: unknown time zone 'Mars/Olympus' (use an IANA name")


@pytest.mark.parametrize("env, message", [
    TIMEZONE,
    ({"CHATQUOTA_MAX_BODY_BYTES": "lots"}, "CHATQUOTA_MAX_BODY_BYTES must be a whole number, got 'lots'"),
    ({"CHATQUOTA_SESSION_HOURS": "0"}, "CHATQUOTA_SESSION_HOURS must be at least 1, got 0"),
])
def test_bad_settings_stop_a_command_in_one_line(tmp_path, env, message):
    assert message in one_line_error(run_command(tmp_path, "init-db", **env))


@pytest.mark.parametrize("env, message", [
    TIMEZONE,
    ({"CHATQUOTA_WORKERS": "four"}, "CHATQUOTA_WORKERS must be a whole number of at least 1, got 'four'"),
])
def test_bad_settings_stop_gunicorn_in_one_line(tmp_path, env, message):
    assert message in one_line_error(start_gunicorn(tmp_path, **env))


def test_a_missing_database_folder_is_named(tmp_path):
    url = f"sqlite:///{tmp_path}/no-such-folder/cq.sqlite3"
    expected = f"Error: The database folder {tmp_path}/no-such-folder does not exist: create it"
    assert one_line_error(run_command(tmp_path, "init-db", CHATQUOTA_DATABASE_URL=url)).startswith(expected)
    assert one_line_error(start_gunicorn(tmp_path, CHATQUOTA_DATABASE_URL=url)).startswith(expected)
    (tmp_path / "a-file").write_text("")
    url = f"sqlite:///{tmp_path}/a-file/cq.sqlite3"
    assert "is not a folder" in one_line_error(run_command(tmp_path, "usage", "x", CHATQUOTA_DATABASE_URL=url))


@pytest.mark.parametrize("unwritable, named", [("folder", "The database folder"),
                                               ("file", "The database file")])
def test_an_unwritable_database_is_named(tmp_path, monkeypatch, unwritable, named):
    """Through the `chatquota` command in process (root writes anything, so access is denied by hand)."""
    database = tmp_path / "cq.sqlite3"
    database.write_bytes(b"")
    denied = tmp_path if unwritable == "folder" else database
    real_access = os.access
    monkeypatch.setattr(checks.os, "access", lambda path, mode: Path(path) != denied and real_access(path, mode))
    monkeypatch.setenv("CHATQUOTA_DATABASE_URL", f"sqlite:///{database}")
    result = CliRunner().invoke(cli.commands, ["init-db"], obj=ScriptInfo(create_app=cli._app_for_command))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: {named} {denied} is not writable by user {checks._user()}: chown or chmod it "
        "(or set CHATQUOTA_DATABASE_URL)."]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a read-only file")
def test_a_read_only_database_file_stops_the_command(tmp_path):
    assert run_command(tmp_path, "init-db").returncode == 0
    (tmp_path / "cq.sqlite3").chmod(0o444)
    assert "is not writable by user" in one_line_error(run_command(tmp_path, "create-user", "ann"))


def test_a_database_server_that_does_not_answer_is_one_line(tmp_path):
    url = f"postgresql+psycopg://chatquota@127.0.0.1:{free_port()}/chatquota?connect_timeout=5"
    line = one_line_error(run_command(tmp_path, "usage", "ann", CHATQUOTA_DATABASE_URL=url))
    assert line.startswith("Error: The database cannot be used: connection failed")
    assert line.endswith("(check CHATQUOTA_DATABASE_URL, that the database server runs, "
                         "and the permissions of its files).")


def test_a_port_in_use_stops_gunicorn_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(start_gunicorn(tmp_path, CHATQUOTA_BIND=f"127.0.0.1:{port}"))
    assert line == (f"Error: 127.0.0.1:{port} is already in use by another program: stop it, "
                    f"or set CHATQUOTA_BIND to a free address, e.g. 127.0.0.1:{port + 1}.")


def test_ensure_admin_says_how_to_get_a_new_token(runner, staff):
    result = runner.invoke(args=["ensure-admin"])
    assert result.exit_code == 0 and result.stdout == ""
    assert "Lost its token? `chatquota create-token admin` prints a new one" in result.stderr
