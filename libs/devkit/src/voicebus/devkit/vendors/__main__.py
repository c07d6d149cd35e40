"""``python -m voicebus.devkit.vendors --port N``: the stand-in vendors as their own process."""

from __future__ import annotations

import argparse
import asyncio

from voicebus.devkit.vendors.server import VendorStandIn


async def _serve(port: int) -> None:
    async with VendorStandIn(port=port):
        await asyncio.Event().wait()


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description="stand-in vendor APIs on loopback")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
