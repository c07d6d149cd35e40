"""Batched pulls from a durable JetStream consumer: the runtime kit's, shared with the edge."""

from voicebus.runtime.puller import Puller

__all__ = ["Puller"]
