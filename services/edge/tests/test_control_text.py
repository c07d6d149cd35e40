"""REST bodies with control characters: a 422 naming the field, as the contracts refuse them."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


def test_rest_bodies_refuse_control_characters_as_the_contracts_do() -> None:
    """So the edge answers 422 naming the field, not 500 when a contract model refuses it."""
    from pydantic import ValidationError

    from voicebus.edge.api.routes_campaigns import DncBody
    from voicebus.edge.api.schemas import TenantCreate

    with pytest.raises(ValidationError, match=r"numbers\[0\]: U\+0085"):
        DncBody(numbers=["+1415\x85"])
    with pytest.raises(ValidationError, match="name: U\\+0000"):
        TenantCreate(tenant_id="acme", name="Acme\x00")
    assert DncBody(numbers=["+14155550100"], reason="asked\tnicely").reason == "asked\tnicely"
