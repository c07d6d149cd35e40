"""Usage metering: per tenant and day, derived from the tenant's call events."""
