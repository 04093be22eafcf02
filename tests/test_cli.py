"""The command line: through Flask's test runner, and as the installed `chatquota` command."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from chatquota import cli, docs
from chatquota.extensions import db
from chatquota.models import AuditEntry
from chatquota.services import accounts


def invoke(runner, *args, **env):
    return runner.invoke(args=list(args), env=env or None)


def test_create_user_prints_only_the_uuid(app, runner):
    result = invoke(runner, "create-user", "dana", "--support")
    assert result.exit_code == 0
    assert re.fullmatch(r"[0-9a-f]{32}\n", result.stdout)
    with app.app_context():
        user = accounts.get_user(db.session, result.stdout.strip())
        assert user.username == "dana" and user.is_support and not user.is_staff


def test_create_user_with_given_uuid_and_duplicates(runner):
    result = invoke(runner, "create-user", "erin", "--uuid", "A1B2C3D4-E5F6-7890-ABCD-EF1234567890")
    assert result.stdout == "a1b2c3d4e5f67890abcdef1234567890\n"
    again = invoke(runner, "create-user", "erin")
    assert again.exit_code == 1
    assert again.stderr == "Error: A user with this username already exists.\n"
    same_uuid = invoke(runner, "create-user", "frank", "--uuid", "a1b2c3d4e5f67890abcdef1234567890")
    assert "uuid already exists" in same_uuid.stderr
    bad = invoke(runner, "create-user", "gina", "--uuid", "nope")
    assert bad.exit_code == 1 and bad.stderr == "Error: uuid: Must be a valid UUID.\n"
    long = invoke(runner, "create-user", "x" * 151)
    assert long.exit_code == 1 and long.stderr.startswith("Error: username: ")


def test_create_token_prints_a_working_key(runner, client):
    invoke(runner, "create-user", "hal")
    result = invoke(runner, "create-token", "hal")
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert result.stdout == key + "\n"
    response = client.get("/api/chat-quota/usage/", headers={"Authorization": f"Token {key}"})
    assert response.status_code == 200


def test_create_token_for_unknown_user_fails(runner):
    result = invoke(runner, "create-token", "nobody")
    assert result.exit_code == 1
    assert result.stderr == "Error: User 'nobody' not found.\n"


def test_set_default_and_quota_and_usage(runner, app):
    invoke(runner, "create-user", "ivy")
    assert invoke(runner, "set-default", "weekly", "500").exit_code == 0
    assert invoke(runner, "set-quota", "ivy", "--daily", "100", "--monthly", "-1").exit_code == 0
    assert invoke(runner, "set-quota", "ivy", "--daily", "default").exit_code == 0
    body = json.loads(invoke(runner, "usage", "ivy").stdout)
    assert (body["daily_limit"], body["weekly_system_default"], body["monthly_limit"]) == (None, 500, -1)
    with app.app_context():
        actors = db.session.scalars(db.select(AuditEntry.actor)).all()
    assert actors and set(actors) == {"cli"}


def test_cli_rejects_bad_limits_without_changing_anything(runner):
    invoke(runner, "create-user", "jo")
    for args in (["set-quota", "jo", "--daily", "-5"], ["set-quota", "jo", "--daily", "1.5"],
                 ["set-quota", "jo"], ["set-default", "daily", "lots"], ["set-default", "daily", "default"],
                 ["set-default", "hourly", "5"], ["set-quota", "nobody", "--daily", "5"]):
        result = invoke(runner, *args)
        assert result.exit_code != 0, args
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and result.stderr.endswith(errors[0] + "\n"), result.stderr
    body = json.loads(invoke(runner, "usage", "jo").stdout)
    assert body["daily_limit"] is None and body["daily_system_default"] == -1


def test_ensure_admin_creates_once_with_the_given_token(runner, client):
    key = "my-own-admin-token-of-some-length"
    first = invoke(runner, "ensure-admin", CHATQUOTA_ADMIN_TOKEN=key)
    assert first.exit_code == 0 and first.stdout == key + "\n"
    second = invoke(runner, "ensure-admin")
    assert second.exit_code == 0 and second.stdout == ""
    response = client.get("/api/chat-quota/usage/", headers={"Authorization": f"Token {key}"})
    assert response.status_code == 200


def test_ensure_admin_refuses_a_weak_chosen_token(runner):
    result = invoke(runner, "ensure-admin", CHATQUOTA_ADMIN_TOKEN="short-token-20-chars")
    assert result.exit_code == 1
    assert result.stderr == "Error: A key must have at least 32 characters.\n"
    retry = invoke(runner, "ensure-admin", CHATQUOTA_ADMIN_TOKEN="a-long-enough-admin-token-of-40-chars..")
    assert retry.exit_code == 0 and retry.stdout.startswith("a-long-enough")  # nothing half-made


def test_groups_and_weights_from_the_command_line(runner, app):
    invoke(runner, "create-user", "lea")
    invoke(runner, "create-user", "max")
    created = invoke(runner, "create-group", "physics", "--daily", "100")
    assert created.exit_code == 0 and re.fullmatch(r"[0-9a-f]{32}\n", created.stdout)
    for args in (["add-member", "physics", "lea"], ["add-member", "physics", "max"],
                 ["remove-member", "physics", "max"],
                 ["set-group-quota", "physics", "--weekly", "700", "--daily", "default"],
                 ["set-group-default", "daily", "50"],
                 ["set-model-weight", "org/big-model", "0.25", "4"]):
        result = invoke(runner, *args)
        assert result.exit_code == 0 and result.stdout == "", (args, result.stderr)
    body = json.loads(invoke(runner, "group-usage", "physics").stdout)
    assert (body["daily_limit"], body["daily_system_default"], body["weekly_limit"]) == (
        None, 50, 700)
    with app.app_context():
        from chatquota.services import groups, weights

        group = groups.get_group_by_name(db.session, "physics")
        members = groups.list_members(db.session, group).items
        listed = weights.list_weights(db.session).items
        actors = set(db.session.scalars(db.select(AuditEntry.actor)))
    assert [m.username for m in members] == ["lea"]
    assert [(w.model, w.input_weight, w.output_weight) for w in listed] == [
        ("org/big-model", "0.25", "4")]
    assert actors == {"cli"}


def test_group_commands_fail_in_one_line_without_changing_anything(runner):
    invoke(runner, "create-user", "ned")
    invoke(runner, "create-group", "chem")
    for args, message in [
        (["create-group", "chem"], "A group with this name already exists."),
        (["create-group", " "], "name: Length must be between 1 and 150."),
        (["create-group", "bio", "--daily", "-2"], "daily_limit: Must be greater than or equal "
                                                   "to -1 and less than or equal to "
                                                   "9007199254740991."),
        (["add-member", "nope", "ned"], "Group 'nope' not found."),
        (["add-member", "chem", "nobody"], "User 'nobody' not found."),
        (["remove-member", "chem", "ned"], "This user is not a member of this group."),
        (["set-group-quota", "chem"], "Give at least one of --daily, --weekly, --monthly."),
        (["set-group-default", "daily", "default"], "LIMIT must be an integer >= -1."),
        (["set-model-weight", "m", "lots", "1"], "input_weight: A valid number is required."),
        (["set-model-weight", "m", "1", "0.0000001"],
         "output_weight: Ensure that there are no more than 6 decimal places."),
    ]:
        result = invoke(runner, *args)
        assert result.exit_code == 1, args
        assert result.stderr == f"Error: {message}\n", (args, result.stderr)
    invoke(runner, "add-member", "chem", "ned")
    again = invoke(runner, "add-member", "chem", "ned")
    assert again.stderr == "Error: This user is already a member of this group.\n"
    body = json.loads(invoke(runner, "group-usage", "chem").stdout)
    assert body["daily_limit"] is None and body["daily_system_default"] == -1


def test_every_command_has_help(runner):
    for command in ("init-db", "create-user", "create-token", "set-default", "set-quota",
                    "usage", "ensure-admin", "create-group", "add-member", "remove-member",
                    "set-group-quota", "set-group-default", "group-usage", "set-model-weight",
                    "set-alert-thresholds", "add-webhook"):
        result = invoke(runner, command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.stdout


CHATQUOTA = Path(sys.executable).with_name("chatquota")


def test_the_chatquota_command_works_without_the_venv_on_path(tmp_path):
    """`make` installs .venv/bin/chatquota; it runs from anywhere, PATH untouched."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "CHATQUOTA_DATABASE_URL": f"sqlite:///{tmp_path}/cq.sqlite3"}

    def run(*args):
        result = subprocess.run([str(CHATQUOTA), *args], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    listed = run("--help")
    assert "create-user" in listed and "db" in listed
    run("init-db")
    assert re.fullmatch(r"[0-9a-f]{32}\n", run("create-user", "kim", "--service"))
    assert json.loads(run("usage", "kim"))["daily_limit"] is None
    assert "(head)" in run("db", "current")


def loaded_modules(*args: str) -> set[str]:
    """Run `chatquota ARGS` in a fresh interpreter; return the heavy modules it imported."""
    code = ("import sys; from chatquota.cli import main; sys.argv = ['chatquota', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = ('sqlalchemy', 'alembic', 'marshmallow', 'flask_smorest', 'apispec', 'webargs',"
            " 'yaml', 'prometheus_client')\n"
            "print(' '.join(m for m in heavy if m in sys.modules), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "CHATQUOTA_DATABASE_URL": "sqlite://"})
    return set(result.stderr.splitlines()[-1].split())


def test_commands_import_what_they_need_when_they_need_it():
    assert loaded_modules("--help") == set()
    assert loaded_modules("usage", "--help") == set()
    # A command reads the database, not the HTTP layer.
    assert loaded_modules("usage", "nobody") == {"sqlalchemy", "alembic"}
    assert loaded_modules("group-usage", "nobody") == {"sqlalchemy", "alembic"}


def test_openapi_formats_are_the_documents_formats():
    assert set(cli.operations.openapi.params[0].type.choices) == set(docs.FORMATS)
