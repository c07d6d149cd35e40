"""Placing the call: the signed inbound webhook, then the media socket the TwiML names."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake

from voicebus.devkit.caller import twilio
from voicebus.devkit.caller.errors import CallerError, CallRejectedError


async def post_inbound_webhook(
    *,
    gateway_url: str,
    public_url: str,
    auth_token: str,
    agent: str,
    context: Mapping[str, str],
    params: Mapping[str, str],
    timeout: float,
) -> twilio.TwimlAnswer:
    """Post Twilio's inbound-call webhook, signed for ``public_url``, to ``gateway_url``.

    Returns:
        The TwiML answer; it always has a stream.

    Raises:
        CallRejectedError: an HTTP error, unreadable TwiML, or no ``<Connect><Stream>``.
        CallerError: the gateway could not be reached.
    """
    query = twilio.context_query(context)
    signed_url = twilio.webhook_url(public_url, agent, query)
    headers = {twilio.SIGNATURE_HEADER: twilio.sign(auth_token, signed_url, params)}
    post_url = twilio.webhook_url(gateway_url, agent, query)
    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            response = await client.post(post_url, data=dict(params), headers=headers)
    except httpx.HTTPError as err:
        raise CallerError(f"cannot reach the gateway at {gateway_url}: {err}") from err
    if response.status_code != httpx.codes.OK:
        raise CallRejectedError(
            f"the gateway answered the webhook with HTTP {response.status_code}",
            status=response.status_code,
            body=response.text,
        )
    try:
        answer = twilio.parse_twiml(response.text)
    except twilio.TwimlError as err:
        raise CallRejectedError(str(err), status=200, body=response.text) from None
    if answer.stream is None:
        raise CallRejectedError(
            f"the gateway did not connect a stream (it said: {' '.join(answer.says)!r})",
            status=200,
            body=response.text,
        )
    return answer


async def open_media_socket(url: str, timeout: float) -> ClientConnection:
    """Open the Media Streams WebSocket (no compression, no proxy, unbounded receive queue).

    Raises:
        CallerError: the socket could not be opened.
    """
    try:
        return await connect(
            url, open_timeout=timeout, compression=None, proxy=None, max_queue=None
        )
    except (OSError, InvalidHandshake, TimeoutError) as err:
        raise CallerError(f"cannot open the media socket {url}: {err}") from err
