"""The SSRF guard of tools' outbound requests: the runtime kit's, shared with the edge."""

from voicebus.runtime.ssrf import TargetPolicy, TargetRefusedError, check_target

__all__ = ["TargetPolicy", "TargetRefusedError", "check_target"]
