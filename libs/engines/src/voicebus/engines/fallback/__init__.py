"""Fallback between engines of one role, with a circuit breaker per engine."""
