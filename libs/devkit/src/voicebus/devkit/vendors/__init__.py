"""Stand-in servers for cloud engine vendors: their documented wire protocols, on loopback.

One server (:class:`~voicebus.devkit.vendors.server.VendorStandIn`) answers every
vendor's paths, so an engine is pointed at it with its ``base_url``. A path prefix
``/s/<scenario>`` picks how it behaves (:class:`~voicebus.devkit.vendors.scenarios.Scenario`):
normal streaming, a slow start, an error mid-stream, a 401, malformed frames, a
socket closed mid-utterance, or no answer at all.
"""

from voicebus.devkit.vendors.scenarios import Scenario
from voicebus.devkit.vendors.server import VendorStandIn

__all__ = ["Scenario", "VendorStandIn"]
