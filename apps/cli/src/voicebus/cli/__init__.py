"""The ``voicebus`` operator command.

It talks only to the REST edge (``/api/v1``) with an API key or the operator token,
so it works against any deployment the operator can reach and needs neither NATS
nor the database. When the developer's kit is installed, its commands (``dev``,
``demo``, ``call``, ``bench``, ...) join through the ``voicebus.cli`` entry point.
"""
