"""One dev stack shared by the observability tests of this folder (scripted agent, no LLM)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from voicebus.devkit.stack import DevStack


@pytest.fixture(scope="package")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevStack]:
    data_dir = tmp_path_factory.mktemp("stack")
    log = (data_dir / "services.log").open("w")
    dev = DevStack(
        data_dir, out=log, local_llm=False, env={"VB_RECORDER_DIR": str(data_dir / "rec")}
    )
    try:
        await dev.start(ready_timeout=240.0)
        yield dev
    finally:
        await dev.stop()
        log.close()
