"""``python -m voicebus.devkit.vendors --port N``: the stand-in vendors as their own process."""

from __future__ import annotations

import argparse
import asyncio

from voicebus.devkit.vendors.server import VendorStandIn


async def _serve(port: int, speed: float) -> None:
    async with VendorStandIn(port=port, speed=speed):
        await asyncio.Event().wait()


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description="stand-in vendor APIs on loopback")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--speed",
        type=float,
        default=10.0,
        help="synthesized audio sent this many times faster than real time",
    )
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.speed))


if __name__ == "__main__":
    main()
