"""Wire compatibility: the published Waldur Python client against chatquota under real gunicorn."""

import importlib.util
import sys
from types import ModuleType, SimpleNamespace
from uuid import UUID

import pytest


def _models_package_without_its_index() -> None:
    """Let `waldur_api_client.models.<name>` load without the package's `__init__`.

    That `__init__` imports all 3,252 generated models (about 7 s); these tests
    need two, which import nothing from the package itself.
    """
    spec = importlib.util.find_spec("waldur_api_client.models")
    package = ModuleType(spec.name)
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules.setdefault(spec.name, package)


_models_package_without_its_index()

from waldur_api_client import errors  # noqa: E402 (after the models package is in place)
from waldur_api_client.api.chat_quota import chat_quota_set_quota, chat_quota_usage_retrieve  # noqa: E402
from waldur_api_client.client import AuthenticatedClient  # noqa: E402
from waldur_api_client.models.set_token_quota_request import SetTokenQuotaRequest  # noqa: E402
from waldur_api_client.types import UNSET  # noqa: E402

from chatquota.extensions import db
from chatquota.services import accounts

from .live import LiveServer


@pytest.fixture(scope="module")
def server(module_app, module_database_url):
    """One gunicorn for the module; returns its URL and an account per role and test.

    The tests share the database, so each test that changes a quota has a user of its own.
    """
    keys = {}
    with module_app.app_context():
        for name, roles in (("staff", {"is_staff": True}), ("support", {"is_support": True}),
                            ("alice", {}), ("bob", {}), ("carol", {})):
            user = accounts.create_user(db.session, None, name, **roles)
            keys[name] = SimpleNamespace(uuid=user.uuid, key=accounts.issue_token(db.session, None, user)[1])
    with LiveServer(module_database_url, workers=2) as live:
        yield SimpleNamespace(url=live.url, **keys)


def _client(url: str, account) -> AuthenticatedClient:
    """A Waldur client signed in with the account's key."""
    return AuthenticatedClient(base_url=url, token=account.key, timeout=10)


def test_usage_retrieve_parses_into_the_waldur_model(server):
    alice = server.alice
    with _client(server.url, alice) as client:
        quota = chat_quota_usage_retrieve.sync(client=client, user_uuid=UUID(alice.uuid))
    assert quota.daily_limit is None and quota.daily_usage == 0
    assert quota.daily_system_default == -1 and quota.daily_remaining is None
    assert quota.monthly_reset_at.tzinfo is not None
    assert quota.additional_properties == {}  # no field the client does not know


def test_set_quota_then_usage_shows_it(server):
    carol = server.carol
    with _client(server.url, server.support) as client:
        body = SetTokenQuotaRequest(user_uuid=UUID(carol.uuid), daily_limit=1000, weekly_limit=-1)
        response = chat_quota_set_quota.sync_detailed(client=client, body=body)
        assert response.status_code == 200
        assert response.content == b""
        quota = chat_quota_usage_retrieve.sync(client=client, user_uuid=UUID(carol.uuid))
    assert (quota.daily_limit, quota.weekly_limit, quota.monthly_limit) == (1000, -1, None)
    assert quota.daily_remaining == 1000 and quota.weekly_remaining is None


def test_set_quota_null_resets_and_omitted_keeps(server):
    bob = server.bob
    with _client(server.url, server.staff) as client:
        first = SetTokenQuotaRequest(user_uuid=UUID(bob.uuid), daily_limit=5, weekly_limit=50)
        assert chat_quota_set_quota.sync_detailed(client=client, body=first).status_code == 200
        second = SetTokenQuotaRequest(user_uuid=UUID(bob.uuid), daily_limit=None, weekly_limit=UNSET)
        assert chat_quota_set_quota.sync_detailed(client=client, body=second).status_code == 200
        quota = chat_quota_usage_retrieve.sync(client=client, user_uuid=UUID(bob.uuid))
    assert (quota.daily_limit, quota.weekly_limit) == (None, 50)


def test_unknown_user_is_the_404_the_client_expects(server):
    with _client(server.url, server.staff) as client:
        with pytest.raises(errors.UnexpectedStatus) as raised:
            chat_quota_usage_retrieve.sync(client=client, user_uuid=UUID(int=1))
    assert raised.value.status_code == 404


def test_ordinary_user_cannot_set_quota(server):
    alice = server.alice
    with _client(server.url, alice) as client:
        body = SetTokenQuotaRequest(user_uuid=UUID(alice.uuid), daily_limit=10)
        with pytest.raises(errors.UnexpectedStatus) as raised:
            chat_quota_set_quota.sync_detailed(client=client, body=body)
    assert raised.value.status_code == 403
