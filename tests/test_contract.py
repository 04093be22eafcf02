"""Contract tests: schemathesis fuzzes every documented operation of the live WSGI app.

Each operation gets positive and negative cases, sent as staff; every
response must be a non-5xx status the document lists, with a body and
headers matching it. Bounded by MAX_EXAMPLES per operation.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from chatquota import create_app
from chatquota.openapi import document

MAX_EXAMPLES = 40

# Unknown query parameters are ignored, as Django REST Framework does; so
# schemathesis must not count them as invalid. (This also stops it adding
# unknown body fields; tests/test_openapi.py covers those: 400.)
#
# positive_data_acceptance is off: some schema-valid requests are rightly a
# 400 because of rules a schema cannot state (a username already taken, an
# unknown `ordering` term, tokens != input + output). Every response is still
# checked: no 5xx, a documented status, and a body and headers as documented.
CONFIG = {"generation": {"allow-extra-parameters": False},
          "checks": {"positive_data_acceptance": {"enabled": False}}}


def _operations() -> list[tuple[str, str]]:
    app = create_app({"SECRET_KEY": "collect", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    return [(method.upper(), path) for path, item in document(app)["paths"].items()
            for method in item if method != "parameters"]


def _with_known_user(case, uuid: str | None):
    """Point a positive case's `user_uuid` at a real user, so successes get fuzzed too."""
    if uuid is None or case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return case
    for part in (case.query, case.body):
        if isinstance(part, dict) and "user_uuid" in part:
            part["user_uuid"] = uuid
    return case


@pytest.mark.parametrize("method, path", _operations())
def test_operation_keeps_its_contract(app, staff, alice, method, path):
    config = SchemathesisConfig.from_dict(CONFIG)
    operation = schemathesis.openapi.from_wsgi("/api/schema/", app, config=config)[path][method]
    cases = st.one_of(*(operation.as_strategy(mode, headers=staff.headers) for mode in GenerationMode))

    @given(case=cases, user=st.sampled_from([None, staff.uuid, alice.uuid]))
    @settings(max_examples=MAX_EXAMPLES, deadline=2000, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def fuzz(case, user):
        _with_known_user(case, user).call_and_validate()

    fuzz()
