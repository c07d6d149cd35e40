# ruff: noqa: E501  # a PromQL query reads best on one line
"""voicebus's Grafana dashboards as code: this script writes ``dashboards/*.json``.

    python infra/grafana/build.py          # regenerate the checked-in JSON
    python infra/grafana/build.py --check  # exit 1 if the JSON differs from what this builds

It also writes ``infra/k8s/monitoring/grafana-dashboards.yaml``: the same dashboards as
ConfigMaps for the Grafana sidecar (label ``grafana_dashboard: "1"``), checked the same way.

Standard library only. Each panel is one or more PromQL queries over metrics the
services export (bounded labels only); tests start a real Prometheus against a dev
stack and evaluate every query here, so a panel that would stay empty fails a test.
Rare events (errors, failovers, dead letters) add ``or vector(0)``: none is a zero.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
K8S_OUT = Path(__file__).resolve().parents[1] / "k8s" / "monitoring" / "grafana-dashboards.yaml"
SIDECAR_LABEL = "grafana_dashboard"
FOLDER = "voicebus"
RATE = "$__rate_interval"
FAILED_REASONS = "failed|provider_error|gateway_lost|timeout|error"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel and its legend."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """A time series (or stat) panel."""

    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""
    width: int = 12


@dataclass(frozen=True)
class Dashboard:
    """A dashboard: a title, a stable uid and its panels, laid out two per row."""

    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)


def q(expr: str, legend: str = "") -> Query:
    return Query(" ".join(expr.split()), legend)


def quantiles(metric: str, by: str = "") -> tuple[Query, ...]:
    """p50, p95 and p99 of a histogram (summed over instances, kept apart by ``by``)."""
    keep = f"{by}, le" if by else "le"
    prefix = "{{" + by + "}} " if by else ""
    return tuple(
        q(
            f"histogram_quantile({p}, sum by ({keep}) (rate({metric}_bucket[{RATE}])))",
            f"{prefix}p{round(p * 100)}",
        )
        for p in (0.5, 0.95, 0.99)
    )


def p95(metric: str, by: str) -> Query:
    legend = " ".join("{{" + label.strip() + "}}" for label in by.split(","))
    return q(f"histogram_quantile(0.95, sum by ({by}, le) (rate({metric}_bucket[{RATE}])))", legend)


def calls_overview() -> Dashboard:
    ended = "voicebus_gateway_calls_ended_total"
    return Dashboard(
        "voicebus-calls",
        "voicebus / Calls overview",
        "Calls on the gateways: active, started and ended by provider and reason, failures, "
        "provider webhooks, media WebSocket traffic and outbound dials.",
        (
            Panel(
                "Active calls",
                (q("sum(voicebus_gateway_calls_active)", "active"),),
                kind="stat",
                width=6,
            ),
            Panel(
                "Ready instances",
                (q("sum by (service) (voicebus_service_ready)", "{{service}}"),),
                kind="stat",
                width=18,
            ),
            Panel(
                "Active calls by provider",
                (q("sum by (provider) (voicebus_gateway_calls_active)", "{{provider}}"),),
            ),
            Panel(
                "Calls started by provider",
                (
                    q(
                        f"sum by (provider) (rate(voicebus_gateway_calls_started_total[{RATE}]))",
                        "{{provider}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Calls ended by reason",
                (q(f"sum by (reason) (rate({ended}[{RATE}]))", "{{reason}}"),),
                unit="reqps",
            ),
            Panel(
                "Call failure ratio by provider",
                (
                    q(
                        f"""sum by (provider) (rate({ended}{{reason=~"{FAILED_REASONS}"}}[{RATE}]))
                        / (sum by (provider) (rate({ended}[{RATE}])) > 0)
                        or sum by (provider) (rate({ended}[{RATE}])) * 0""",
                        "{{provider}}",
                    ),
                ),
                unit="percentunit",
                description="Ended calls whose reason is a failure (" + FAILED_REASONS + ").",
            ),
            Panel(
                "Provider webhook latency p95",
                (p95("voicebus_gateway_webhook_seconds", "provider, kind"),),
                unit="s",
            ),
            Panel(
                "Provider webhooks by result",
                (
                    q(
                        f"sum by (provider, result) (rate(voicebus_gateway_webhook_seconds_count[{RATE}]))",
                        "{{provider}} {{result}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Media WebSocket messages",
                (
                    q(
                        f"sum by (provider) (rate(voicebus_gateway_ws_messages_in_total[{RATE}]))",
                        "in {{provider}}",
                    ),
                    q(
                        f"sum by (provider) (rate(voicebus_gateway_ws_messages_out_total[{RATE}]))",
                        "out {{provider}}",
                    ),
                    q(
                        f"sum by (provider) (rate(voicebus_gateway_ws_messages_ignored_total[{RATE}])) or vector(0)",
                        "ignored {{provider}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Outbound dials by result",
                (
                    q(
                        f"sum by (provider, result) (rate(voicebus_gateway_dials_total[{RATE}]))",
                        "{{provider}} {{result}}",
                    ),
                ),
                unit="reqps",
            ),
        ),
    )


def voice_quality() -> Dashboard:
    stage = "voicebus_media_stage_seconds"
    return Dashboard(
        "voicebus-voice-quality",
        "voicebus / Voice quality",
        "What callers experience: turn latency (caller end of speech to the reply's first "
        "audio sent), its stages by engine, interruptions, engine errors and failovers.",
        (
            Panel(
                "Turn latency", quantiles("voicebus_media_turn_latency_seconds"), unit="s", width=24
            ),
            Panel(
                "End-of-turn wait p95",
                (
                    q(
                        f'histogram_quantile(0.95, sum by (engine, le) (rate({stage}_bucket{{stage="end_of_turn"}}[{RATE}])))',
                        "{{engine}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Speech to text p95",
                (
                    q(
                        f'histogram_quantile(0.95, sum by (engine, le) (rate({stage}_bucket{{stage="stt"}}[{RATE}])))',
                        "{{engine}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "LLM first token p95",
                (p95("voicebus_orchestrator_llm_first_token_seconds", "engine"),),
                unit="s",
            ),
            Panel(
                "TTS first audio p95",
                (
                    q(
                        f'histogram_quantile(0.95, sum by (engine, le) (rate({stage}_bucket{{stage="tts_first_audio"}}[{RATE}])))',
                        "{{engine}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Tool latency p95", (p95("voicebus_orchestrator_tool_seconds", "kind"),), unit="s"
            ),
            Panel(
                "Interruptions (barge-in)",
                (q(f"sum(rate(voicebus_media_interruptions_total[{RATE}]))", "interruptions"),),
                unit="reqps",
            ),
            Panel(
                "Engine errors and failovers",
                (
                    q(
                        f"sum by (role, engine) (rate(voicebus_engine_failures_total[{RATE}])) or vector(0)",
                        "errors {{role}} {{engine}}",
                    ),
                    q(
                        f"sum by (role, engine) (rate(voicebus_engine_failovers_total[{RATE}])) or vector(0)",
                        "failover {{role}} {{engine}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Turns by result",
                (
                    q(
                        f"sum by (result) (rate(voicebus_orchestrator_turns_total[{RATE}]))",
                        "{{result}}",
                    ),
                ),
                unit="reqps",
            ),
        ),
    )


def bus_and_storage() -> Dashboard:
    return Dashboard(
        "voicebus-bus-storage",
        "voicebus / Bus and storage",
        "JetStream consumer lag of the durable consumers, bus traffic by subject pattern, "
        "audit ingest, dead letters and recordings.",
        (
            Panel(
                "Consumer lag (not yet delivered)",
                (q("max by (consumer) (voicebus_jetstream_consumer_pending)", "{{consumer}}"),),
            ),
            Panel(
                "Unacknowledged and redelivered",
                (
                    q(
                        "max by (consumer) (voicebus_jetstream_consumer_ack_pending)",
                        "ack pending {{consumer}}",
                    ),
                    q(
                        "max by (consumer) (voicebus_jetstream_consumer_redelivered)",
                        "redelivered {{consumer}}",
                    ),
                ),
            ),
            Panel(
                "Audit ingest",
                (
                    q(
                        f"sum by (new) (rate(voicebus_audit_events_stored_total[{RATE}]))",
                        "new={{new}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Audit batch size p95",
                (
                    q(
                        f"histogram_quantile(0.95, sum by (le) (rate(voicebus_audit_batch_events_bucket[{RATE}])))",
                        "events per batch",
                    ),
                ),
            ),
            Panel(
                "Bus messages consumed by subject pattern",
                (
                    q(
                        f"sum by (handler) (rate(faststream_received_messages_total[{RATE}]))",
                        "{{handler}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Dead letters",
                (
                    q(
                        f"sum by (service, reason) (rate(voicebus_dead_letters_total[{RATE}])) or vector(0)",
                        "{{service}} {{reason}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Recordings finalized",
                (
                    q(
                        f"sum by (result) (rate(voicebus_recorder_recordings_total[{RATE}]))",
                        "{{result}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Calls owned per service",
                (q("sum by (service) (voicebus_calls_owned)", "{{service}}"),),
            ),
        ),
    )


def campaigns() -> Dashboard:
    return Dashboard(
        "voicebus-campaigns",
        "voicebus / Campaigns",
        "Outbound campaigns: dial decisions (dialed, DNC, window deferrals), dial results, "
        "call outcomes, do-not-call requests and the decision outbox.",
        (
            Panel(
                "Dial decisions (dialed, DNC, outside window)",
                (
                    q(
                        f"sum by (decision) (rate(voicebus_campaigns_dial_decisions_total[{RATE}]))",
                        "{{decision}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Dials by result",
                (q(f"sum by (result) (rate(voicebus_gateway_dials_total[{RATE}]))", "{{result}}"),),
                unit="reqps",
            ),
            Panel(
                "Call outcomes",
                (
                    q(
                        f"sum by (reason) (rate(voicebus_campaigns_call_outcomes_total[{RATE}])) or vector(0)",
                        "{{reason}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Do-not-call requests",
                (q(f"sum(rate(voicebus_campaigns_dnc_requests_total[{RATE}]))", "DNC requests"),),
                unit="reqps",
            ),
            Panel(
                "Decision outbox backlog", (q("sum(voicebus_campaigns_outbox_backlog)", "staged"),)
            ),
            Panel(
                "Decision events published",
                (q(f"sum(rate(voicebus_campaigns_outbox_published_total[{RATE}]))", "published"),),
                unit="reqps",
            ),
            Panel(
                "Campaign consumer lag",
                (
                    q(
                        'max by (consumer) (voicebus_jetstream_consumer_pending{consumer=~"campaigns-.*"})',
                        "{{consumer}}",
                    ),
                ),
            ),
        ),
    )


DASHBOARDS = (calls_overview, voice_quality, bus_and_storage, campaigns)


def render(board: Dashboard) -> dict[str, Any]:
    """The Grafana JSON model of ``board`` (schema 39), panels laid out left to right."""
    panels: list[dict[str, Any]] = []
    x = y = row_h = 0
    for pid, panel in enumerate(board.panels, start=1):
        height = 4 if panel.kind == "stat" else 8
        if x + panel.width > 24:
            x, y, row_h = 0, y + row_h, 0
        panels.append(
            {
                "id": pid,
                "type": panel.kind,
                "title": panel.title,
                "description": panel.description,
                "datasource": DATASOURCE,
                "gridPos": {"h": height, "w": panel.width, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [
                    {
                        "datasource": DATASOURCE,
                        "expr": query.expr,
                        "legendFormat": query.legend,
                        "refId": chr(ord("A") + i),
                    }
                    for i, query in enumerate(panel.queries)
                ],
            }
        )
        x, row_h = x + panel.width, max(row_h, height)
    return {
        "uid": board.uid,
        "title": board.title,
        "description": board.description,
        "tags": ["voicebus"],
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "timezone": "utc",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "panels": panels,
    }


def built() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {
        f"{board.uid}.json": json.dumps(render(board), indent=2, sort_keys=True) + "\n"
        for board in (make() for make in DASHBOARDS)
    }


def configmaps(files: dict[str, str]) -> str:
    """The dashboards as ConfigMaps the Grafana sidecar picks up (one per dashboard).

    Written by hand (standard library only): each JSON document is a literal block,
    so the YAML carries it byte for byte.
    """
    docs = [
        "# Generated by infra/grafana/build.py from the same builder as infra/grafana/dashboards;\n"
        "# do not edit. Grafana's dashboard sidecar (kube-prometheus-stack: sidecar.dashboards.\n"
        f'# enabled) loads every ConfigMap labelled {SIDECAR_LABEL}: "1", into the folder named\n'
        "# by the grafana_folder annotation when folderAnnotation is set to it.\n"
    ]
    for name, text in sorted(files.items()):
        body = "".join(f"    {line}\n" if line else "\n" for line in text.splitlines())
        docs.append(
            "apiVersion: v1\n"
            "kind: ConfigMap\n"
            "metadata:\n"
            f"  name: grafana-dashboard-{name.removesuffix('.json')}\n"
            "  labels:\n"
            f'    {SIDECAR_LABEL}: "1"\n'
            "  annotations:\n"
            f"    grafana_folder: {FOLDER}\n"
            "data:\n"
            f"  {name}: |\n{body}"
        )
    return docs[0] + "---\n".join(docs[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the JSON is stale")
    args = parser.parse_args(argv)
    files = built()
    maps = configmaps(files)
    if args.check:
        on_disk = {p.name: p.read_text() for p in OUT.glob("*.json")}
        if K8S_OUT.is_file():
            on_disk[K8S_OUT.name] = K8S_OUT.read_text()
        files = {**files, K8S_OUT.name: maps}
        if on_disk != files:
            stale = sorted(
                set(on_disk) ^ set(files) | {n for n in files if on_disk.get(n) != files[n]}
            )
            print(f"dashboards out of date: {', '.join(stale)}; run: python infra/grafana/build.py")
            return 1
        return 0
    OUT.mkdir(exist_ok=True)
    for stale in set(p.name for p in OUT.glob("*.json")) - set(files):
        (OUT / stale).unlink()
    for name, text in files.items():
        (OUT / name).write_text(text)
    K8S_OUT.parent.mkdir(exist_ok=True)
    K8S_OUT.write_text(maps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
