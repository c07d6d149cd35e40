"""Tenants, their API keys and their provider credentials (schema ``edge``)."""
