"""Browser calls: started by the edge's page or API, carried on ``WS /ws/browser``."""
