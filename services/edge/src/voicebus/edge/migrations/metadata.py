"""The edge's tables: one metadata shared by the tenancy, usage and webhooks modules."""

from __future__ import annotations

from sqlalchemy import MetaData, Table

from voicebus.edge.tenancy.tables import METADATA
from voicebus.edge.usage.tables import USAGE_ITEMS
from voicebus.edge.webhooks.tables import ATTEMPTS, DELIVERIES, WEBHOOKS

# Importing a table module adds its tables to METADATA; naming them keeps those imports.
LOADED: tuple[Table, ...] = (USAGE_ITEMS, WEBHOOKS, DELIVERIES, ATTEMPTS)


def target_metadata() -> MetaData:
    """The metadata with every edge table loaded."""
    return METADATA
