"""voicebus edge: the REST API, tenants and their credentials, the browser page."""
