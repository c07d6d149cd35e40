"""What the REST speech engines share: WAV bodies, an HTTP client, status handling."""

from __future__ import annotations

import io
import wave

import httpx

from voicebus.engines.cloud._wire import raise_for_response, transport_error
from voicebus.engines.urls import check_resolved


def wav_bytes(pcm16: bytes, sample_rate: int) -> bytes:
    """Mono PCM16LE as a WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm16)
    return buffer.getvalue()


def wav_pcm(data: bytes) -> tuple[bytes, int]:
    """The PCM16 frames and rate of a WAV file (raw PCM16 at rate 0 when not a WAV)."""
    if not data.startswith(b"RIFF"):
        return data, 0
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.readframes(wav.getnframes()), wav.getframerate()


class HttpEngine:
    """An engine speaking to one vendor's REST API.

    Args:
        name: the engine's registered name (errors, breakers).
        base_url: the API root.
        headers: the key's header.
        timeout_s: connect and read budget.
        allow_private: allow loopback/private hosts.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        headers: dict[str, str],
        *,
        timeout_s: float,
        allow_private: bool,
    ) -> None:
        self._engine = name
        self._base_url = base_url
        self._allow_private = allow_private
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
        )

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    async def post_json(self, path: str, **kwargs: object) -> object:
        """POST and parse a JSON answer.

        Raises:
            EngineError: refused, unreachable, or not JSON.
        """
        from voicebus.engines.base import EngineError

        await check_resolved(self._engine, self._base_url, allow_private=self._allow_private)
        try:
            response = await self._client.post(path, **kwargs)  # type: ignore[arg-type]
            await raise_for_response(self._engine, response)
            return response.json()
        except httpx.HTTPError as exc:
            raise transport_error(self._engine, exc) from exc
        except ValueError:
            raise EngineError(
                f"{self._engine}: the vendor sent a malformed answer",
                retryable=True,
                kind="protocol",
            ) from None
