"""``voicebus bench <name|all>``: run benchmarks one after another and write their results."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from voicebus.devkit.bench import report as reports
from voicebus.devkit.bench.registry import BenchOptions, load


async def run_named(
    names: list[str],
    out_dir: Path,
    *,
    quick: bool = False,
    profile: bool = False,
    emit: Callable[[str], None] = print,
) -> int:
    """Run the named benchmarks (``all``: every one); 0 when all ran, 1 otherwise."""
    registry = load()
    chosen = list(registry) if names == ["all"] else names
    unknown = [n for n in chosen if n not in registry]
    if unknown:
        emit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(registry)}")
        return 2
    code = 0
    for name in chosen:
        work = Path(tempfile.mkdtemp(prefix=f"voicebus-bench-{name}-"))
        options = BenchOptions(out_dir=out_dir, work_dir=work, quick=quick, profile=profile)
        emit(f"running {name}…")
        try:
            result = await registry[name](options)
        except Exception as err:  # one failed benchmark must not stop the others
            emit(f"{name} failed: {type(err).__name__}: {err}")
            code = 1
            continue
        finally:
            shutil.rmtree(work, ignore_errors=True)
        paths = reports.write(result, out_dir)
        emit(reports.markdown(result))
        emit("wrote " + ", ".join(str(p) for p in paths))
    return code
