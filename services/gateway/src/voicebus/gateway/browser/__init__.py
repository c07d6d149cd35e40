"""Browser calls: a page served by the gateway, talking to an agent over ``WS /ws/browser``."""
