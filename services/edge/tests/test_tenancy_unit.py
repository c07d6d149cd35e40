"""Unit tests of the tenancy primitives: API keys, credential encryption, limits, uploads."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError

from voicebus.edge.api.ratelimit import KeyRateLimiter
from voicebus.edge.api.uploads import LineTooLongError, line_chunks
from voicebus.edge.settings import EdgeSettings
from voicebus.edge.tenancy import keys
from voicebus.edge.tenancy.credentials import CredentialCipher, fernet_keys
from voicebus.edge.tenancy.errors import CredentialsError
from voicebus.runtime.tenant_keys import generate_keys

pytestmark = pytest.mark.unit
SIGNING_KEY, PUBLIC_KEY = generate_keys()


def test_a_new_key_verifies_against_its_hash_and_nothing_else() -> None:
    new = keys.new_key()
    parsed = keys.parse_token(new.token)
    assert parsed is not None
    key_id, secret = parsed
    assert key_id == new.key_id
    assert secret not in new.hash  # only the argon2 hash is stored
    assert new.hash.startswith("$argon2id$")
    assert keys.verify(new.hash, secret)
    assert not keys.verify(new.hash, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert not keys.verify("not-a-hash", secret)


@pytest.mark.parametrize(
    "token",
    ["", "vb_", "vb_0123456789ab_short", "xx_0123456789ab_" + "a" * 43, "vb_XYZ_" + "a" * 43],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    assert keys.parse_token(token) is None


def test_admin_scope_implies_every_scope() -> None:
    assert keys.allows(frozenset({"admin"}), keys.Scope.CALLS_WRITE)
    assert keys.allows(frozenset({"calls:read"}), keys.Scope.CALLS_READ)
    assert not keys.allows(frozenset({"calls:read"}), keys.Scope.CALLS_WRITE)


def test_credentials_round_trip_and_hold_no_plaintext() -> None:
    cipher = CredentialCipher(fernet_keys(Fernet.generate_key().decode()))
    token = cipher.encrypt({"auth_token": "s3cret-value-91"}, {"account_sid": "AC1"})
    assert b"s3cret-value-91" not in token
    assert b"auth_token" not in token
    assert cipher.decrypt(token) == ({"auth_token": "s3cret-value-91"}, {"account_sid": "AC1"})


def test_keys_rotate_new_first_old_still_decrypts() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored = CredentialCipher(fernet_keys(old)).encrypt({"k": "v"}, {})
    rotated = CredentialCipher(fernet_keys(f"{new},{old}"))
    assert rotated.decrypt(stored) == ({"k": "v"}, {})
    with pytest.raises(CredentialsError):
        CredentialCipher(fernet_keys(new)).decrypt(stored)


def test_a_malformed_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="VB_EDGE_CREDENTIALS_KEY") as info:
        fernet_keys("not-a-fernet-key-but-long-enough")
    assert "not-a-fernet-key" not in str(info.value)


def test_rate_limit_moving_window_per_key() -> None:
    limiter = KeyRateLimiter()
    assert [limiter.hit("a", 3) for _ in range(3)] == [None, None, None]
    wait = limiter.hit("a", 3)
    assert wait is not None
    assert 1.0 <= wait <= 60.0
    assert KeyRateLimiter.retry_after(wait) == str(int(wait) + (wait % 1 > 0))
    assert limiter.hit("b", 3) is None  # another key has its own window


def test_line_chunks_cut_at_line_ends_and_number_lines() -> None:
    body = b"".join(f"line-{i}\n".encode() for i in range(1, 101))
    pieces = list(line_chunks(body, max_bytes=64))
    assert b"".join(p for _, p in pieces) == body
    assert all(p.endswith(b"\n") and len(p) <= 64 for _, p in pieces)
    for first_line, piece in pieces:
        assert piece.startswith(f"line-{first_line}\n".encode())


def test_a_line_longer_than_a_chunk_is_named() -> None:
    with pytest.raises(LineTooLongError) as info:
        list(line_chunks(b"ok\n" + b"x" * 100 + b"\n", max_bytes=50))
    assert info.value.line == 2


def test_production_refuses_placeholder_edge_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VB_ENVIRONMENT", "production")
    monkeypatch.setenv("VB_RPC_TENANT_SIGNING_KEY", SIGNING_KEY)  # the edge's signatures
    real = {
        "admin_token": SecretStr("a-real-admin-token-5e8a1c"),
        "credentials_key": SecretStr(Fernet.generate_key().decode()),
        "session_secret": SecretStr("a-real-session-secret-0d9c4e7b1a"),
    }
    for name, variable in (
        ("admin_token", "VB_EDGE_ADMIN_TOKEN"),
        ("credentials_key", "VB_EDGE_CREDENTIALS_KEY"),
        ("session_secret", "VB_EDGE_SESSION_SECRET"),
    ):
        with pytest.raises(ValidationError, match=variable):
            EdgeSettings(**{**real, name: SecretStr("dev-secret")})
    EdgeSettings(**real)
