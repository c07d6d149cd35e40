"""One dev stack shared by the observability tests of this folder (scripted agent, no LLM).

Its services export traces to an OTLP/HTTP receiver of the tests' own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.observe.otlp import OtlpReceiver
from voicebus.devkit.stack import DevStack


@pytest.fixture(scope="package")
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="package")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, otlp: OtlpReceiver
) -> AsyncIterator[DevStack]:
    data_dir = tmp_path_factory.mktemp("stack")
    log = (data_dir / "services.log").open("w")
    env = {
        "VB_RECORDER_DIR": str(data_dir / "rec"),
        # The standard OpenTelemetry name, as an operator would set it.
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
    }
    dev = DevStack(data_dir, out=log, local_llm=False, env=env)
    try:
        await dev.start(ready_timeout=240.0)
        yield dev
    finally:
        await dev.stop()
        log.close()
