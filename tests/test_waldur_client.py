"""Wire compatibility: the published Waldur Python client against chatquota under real gunicorn."""

from uuid import UUID

import pytest
from waldur_api_client import errors
from waldur_api_client.api.chat_quota import chat_quota_set_quota, chat_quota_usage_retrieve
from waldur_api_client.client import AuthenticatedClient
from waldur_api_client.models.set_token_quota_request import SetTokenQuotaRequest
from waldur_api_client.types import UNSET

from .live import LiveServer


@pytest.fixture
def server(app, staff, support, alice, bob):
    """A real gunicorn serving the test database on a free loopback port."""
    with LiveServer(app.config["SQLALCHEMY_DATABASE_URI"], workers=2) as live:
        yield live.url


def _client(url: str, account) -> AuthenticatedClient:
    return AuthenticatedClient(base_url=url, token=account.key, timeout=10)


def test_usage_retrieve_parses_into_the_waldur_model(server, alice):
    with _client(server, alice) as client:
        quota = chat_quota_usage_retrieve.sync(client=client, user_uuid=UUID(alice.uuid))
    assert quota.daily_limit is None and quota.daily_usage == 0
    assert quota.daily_system_default == -1 and quota.daily_remaining is None
    assert quota.monthly_reset_at.tzinfo is not None
    assert quota.additional_properties == {}  # no field the client does not know


def test_set_quota_then_usage_shows_it(server, support, alice):
    with _client(server, support) as client:
        body = SetTokenQuotaRequest(user_uuid=UUID(alice.uuid), daily_limit=1000, weekly_limit=-1)
        response = chat_quota_set_quota.sync_detailed(client=client, body=body)
        assert response.status_code == 200
        assert response.content == b""
        quota = chat_quota_usage_retrieve.sync(client=client, user_uuid=UUID(alice.uuid))
    assert (quota.daily_limit, quota.weekly_limit, quota.monthly_limit) == (1000, -1, None)
    assert quota.daily_remaining == 1000 and quota.weekly_remaining is None


def test_set_quota_null_resets_and_omitted_keeps(server, staff, bob):
    with _client(server, staff) as client:
        first = SetTokenQuotaRequest(user_uuid=UUID(bob.uuid), daily_limit=5, weekly_limit=50)
        assert chat_quota_set_quota.sync_detailed(client=client, body=first).status_code == 200
        second = SetTokenQuotaRequest(user_uuid=UUID(bob.uuid), daily_limit=None, weekly_limit=UNSET)
        assert chat_quota_set_quota.sync_detailed(client=client, body=second).status_code == 200
        quota = chat_quota_usage_retrieve.sync(client=client, user_uuid=UUID(bob.uuid))
    assert (quota.daily_limit, quota.weekly_limit) == (None, 50)


def test_unknown_user_is_the_404_the_client_expects(server, staff):
    with _client(server, staff) as client:
        with pytest.raises(errors.UnexpectedStatus) as raised:
            chat_quota_usage_retrieve.sync(client=client, user_uuid=UUID(int=1))
    assert raised.value.status_code == 404


def test_ordinary_user_cannot_set_quota(server, alice):
    with _client(server, alice) as client:
        body = SetTokenQuotaRequest(user_uuid=UUID(alice.uuid), daily_limit=10)
        with pytest.raises(errors.UnexpectedStatus) as raised:
            chat_quota_set_quota.sync_detailed(client=client, body=body)
    assert raised.value.status_code == 403
