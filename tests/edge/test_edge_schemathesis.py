"""Schemathesis against the edge's own OpenAPI document: no input gives a 5xx.

The owners of the data run (audit, orchestrator, recorder, campaigns), so a 5xx would
be the edge's own fault. Bounded: a few examples per operation, per caller.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from edge_stack import ADMIN, EdgeStack
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

EXAMPLES = 5
STREAMS = {"/api/v1/events/stream"}
"""Responses that never end (the live feed): tested by their own tests, not fuzzed here."""


@pytest.fixture(scope="module")
def tenant_key(edge: EdgeStack) -> Iterator[str]:
    with httpx.Client(base_url=edge.base_url, timeout=30) as http:
        auth = {"Authorization": f"Bearer {ADMIN}"}
        http.post("/tenants", headers=auth, json={"tenant_id": "fuzz", "name": "Fuzz"})
        key = http.post(
            "/tenants/fuzz/keys",
            headers=auth,
            json={"name": "fuzz", "scopes": ["admin"], "rate_limit_per_minute": 1_000_000},
        )
        assert key.status_code == 201, key.text
        yield str(key.json()["token"])


_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _check(case: Case, edge: EdgeStack, token: str, seen: Counter[int]) -> None:
    response = case.call(
        base_url=edge.base_url.removesuffix("/api/v1"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    seen[response.status_code] += 1
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:500]}"
    )


def _fuzz(
    operation: Any, edge: EdgeStack, token: str, mode: GenerationMode, seen: Counter[int]
) -> None:
    @_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case) -> None:
        _check(case, edge, token, seen)

    run()


def test_no_input_gives_a_server_error(edge: EdgeStack, tenant_key: str) -> None:
    schema = schemathesis.openapi.from_url(f"{edge.base_url}/openapi.json")
    operations = [
        operation
        for operation in (result.ok() for result in schema.get_all_operations())
        if operation.path not in STREAMS and f"/api/v1{operation.path}" not in STREAMS
    ]
    assert len(operations) >= 15
    failures: list[str] = []
    seen: Counter[int] = Counter()
    for operation in operations:
        for token, mode in itertools.product((tenant_key, ADMIN), GenerationMode):
            try:
                _fuzz(operation, edge, token, mode, seen)
            except Unsatisfiable:
                # No input to make invalid (DELETE /session takes none): nothing to fuzz.
                assert mode is GenerationMode.NEGATIVE, operation.path
            except AssertionError as failure:
                failures.append(str(failure).splitlines()[0])
    assert not failures, "\n".join(failures)
    # It got past authentication and validation, not only bounced off them.
    assert sum(n for status, n in seen.items() if status < 300) >= 10, seen
    assert seen[422] > 0, seen
