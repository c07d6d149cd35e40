"""The public REST API ``/api/v1``: auth, rate limits, request ids, routes, docs."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from voicebus.edge.api.docs import install_docs
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import install_error_handlers
from voicebus.edge.api.request_id import RequestIdMiddleware
from voicebus.edge.api.routes_agents import agents_router
from voicebus.edge.api.routes_browser import browser_sessions_router
from voicebus.edge.api.routes_call_control import call_control_router
from voicebus.edge.api.routes_callers import callers_router
from voicebus.edge.api.routes_calls import calls_router
from voicebus.edge.api.routes_campaigns import campaigns_router
from voicebus.edge.api.routes_events import events_router
from voicebus.edge.api.routes_knowledge import knowledge_router
from voicebus.edge.api.routes_memory import memory_router
from voicebus.edge.api.routes_replay import replay_router
from voicebus.edge.api.routes_session import session_router
from voicebus.edge.api.routes_supervise import supervise_router
from voicebus.edge.api.routes_tenants import tenants_router
from voicebus.edge.api.routes_tools import tools_router

PREFIX = "/api/v1"

__all__ = ["PREFIX", "Edge", "install_api"]


def install_api(app: FastAPI, edge: Edge) -> None:
    """Add the ``/api/v1`` routes, their error bodies, request ids and the docs page."""
    api = APIRouter(prefix=PREFIX)
    for router in (
        tenants_router(edge),
        calls_router(edge),
        call_control_router(edge),
        agents_router(edge),
        tools_router(edge),
        campaigns_router(edge),
        memory_router(edge),
        callers_router(edge),
        knowledge_router(edge),
        browser_sessions_router(edge),
        session_router(edge),
        events_router(edge),
        replay_router(edge),
        supervise_router(edge),
    ):
        api.include_router(router)
    app.include_router(api)
    install_error_handlers(app)
    install_docs(app)
    app.add_middleware(RequestIdMiddleware)
