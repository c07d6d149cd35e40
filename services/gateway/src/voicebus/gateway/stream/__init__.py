"""The media WebSockets on a lean server outside ASGI (picows on uvloop).

- ``server.py``: the listening socket, routing ``/ws/<provider>``, the connection cap.
- ``connection.py``: one WebSocket: frames in (synchronous callbacks), caps, the
  start deadline; it is the :class:`~.ports.CallerSocket` the parts write to.
- ``media_call.py``: one call on a connection: start (token, single use, lease,
  ``call.started``), keys, end (``call.ended``).
- ``caller_to_bus.py``, ``bus_to_caller.py``, ``call_control.py``: the three
  parts of a live call, each behind the small protocols of ``ports.py``.
"""
