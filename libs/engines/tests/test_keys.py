"""Engine keys: the tenant's own first, and the operator's never sent where a tenant points."""

from __future__ import annotations

import pytest

from voicebus.engines.keys import EnvKeyResolver, shared_key_allowed

pytestmark = pytest.mark.unit

ENV = {
    "VB_ENGINE_KEY_DEEPGRAM__ACME": "acme-own",
    "VB_ENGINE_KEY_DEEPGRAM": "operator-shared",
    "OPENAI_API_KEY": "operator-openai",
}


async def test_the_tenants_own_key_comes_first_then_the_shared_one() -> None:
    keys = EnvKeyResolver(ENV)
    assert await keys.resolve("acme", "deepgram") == "acme-own"
    assert await keys.resolve("globex", "deepgram") == "operator-shared"
    assert await keys.resolve("globex", "openai") == "operator-openai"
    assert "operator" not in repr(keys)


async def test_without_the_shared_key_only_the_tenants_own_is_given() -> None:
    keys = EnvKeyResolver(ENV)
    assert await keys.resolve("acme", "deepgram", shared=False) == "acme-own"
    assert await keys.resolve("globex", "deepgram", shared=False) is None
    assert await keys.resolve("globex", "openai", shared=False) is None


@pytest.mark.parametrize(
    ("options", "template", "allowed"),
    [
        ({"model": "nova-3"}, False, True),
        ({"base_url": "https://evil.example"}, False, False),
        ({"url": "wss://evil.example"}, False, False),
        ({"base_url": "https://proxy.internal"}, True, True),
    ],
)
def test_a_tenant_pointing_its_engine_elsewhere_gets_no_shared_key(
    options: dict[str, str], template: bool, allowed: bool
) -> None:
    assert shared_key_allowed(options, template=template) is allowed
