"""The checked-in Grafana dashboards are what infra/grafana/build.py makes, and the compose
monitoring profile scrapes every service on the port compose gives it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "infra" / "grafana"


def test_checked_in_dashboards_are_built_by_the_builder() -> None:
    done = subprocess.run(
        [sys.executable, str(GRAFANA / "build.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_panel_has_a_query_and_unique_ids() -> None:
    boards = [json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))]
    assert {b["uid"] for b in boards} == {
        "voicebus-calls",
        "voicebus-voice-quality",
        "voicebus-bus-storage",
        "voicebus-campaigns",
    }
    for board in boards:
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), board["uid"]
        for panel in board["panels"]:
            assert panel["targets"], panel["title"]
            assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_prometheus_scrapes_every_compose_service_on_its_port() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    config = yaml.safe_load((ROOT / "infra" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]
    }
    services = {
        name: svc
        for name, svc in compose["services"].items()
        if f"VB_{name.upper()}_HTTP_PORT" in (svc.get("environment") or {})
    }
    assert set(targets) == set(services)
    for name, svc in services.items():
        assert targets[name] == f"{name}:{svc['environment'][f'VB_{name.upper()}_HTTP_PORT']}"
    assert compose["services"]["prometheus"]["profiles"] == ["monitoring"]
    assert compose["services"]["grafana"]["profiles"] == ["monitoring"]
