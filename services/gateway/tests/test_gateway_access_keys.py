"""API keys in real Redis: what is kept of a key (never the key), checking, listing, revoking;
and `python -m voicebus_gateway keys` making, listing and revoking them."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest
from redis.asyncio import Redis

from voicebus_gateway.__main__ import main
from voicebus_gateway.auth.keys import id_of
from voicebus_gateway.auth.redis_keys import INDEX, KEY_PREFIX, RedisApiKeys
from voicebus_gateway.auth.scopes import Scope

from .conftest import Keys


async def test_only_the_keys_digest_is_kept(api_keys: Keys, redis_url: str) -> None:
    key = await api_keys.key(Scope.CALLS_READ, name="crm sync")
    key_id = id_of(key)
    assert key_id is not None
    redis = Redis.from_url(redis_url, decode_responses=True)
    kept = await redis.hgetall(KEY_PREFIX + key_id)
    await redis.aclose()
    assert key not in json.dumps(kept)
    assert key.split("_", 2)[2] not in json.dumps(kept)  # nor its secret alone
    assert kept["digest"] == hashlib.sha256(key.encode()).hexdigest()
    assert (kept["name"], kept["scopes"]) == ("crm sync", "calls:read")


async def test_a_key_is_known_by_its_record(api_keys: Keys) -> None:
    key = await api_keys.key(Scope.CALLS_READ, Scope.AGENTS_WRITE)
    record = await api_keys.store.verify(key)
    assert record is not None
    assert record.id == id_of(key)
    assert record.scopes == {Scope.CALLS_READ, Scope.AGENTS_WRITE}
    assert record.revoked_at is None
    assert record.allows(Scope.AGENTS_WRITE)
    assert not record.allows(Scope.CALLS_WRITE)


async def test_admin_allows_everything(api_keys: Keys) -> None:
    record = await api_keys.store.verify(await api_keys.key(Scope.ADMIN))
    assert record is not None
    assert all(record.allows(scope) for scope in Scope)


async def test_anything_but_one_of_our_keys_is_unknown(api_keys: Keys) -> None:
    key = await api_keys.key(Scope.CALLS_READ)
    prefix, key_id, secret = key.split("_", 2)
    forged = f"{prefix}_{key_id}_{'A' * len(secret)}"  # the right id, another secret
    unknown_id = f"{prefix}_{'0' * 16}_{secret}"
    for wrong in (forged, unknown_id, key[:-1], key + "x", "", "vb_", key.upper(), f" {key}"):
        assert await api_keys.store.verify(wrong) is None, wrong


async def test_a_revoked_key_says_so_and_stays_listed(api_keys: Keys) -> None:
    key = await api_keys.key(Scope.CALLS_WRITE)
    key_id = id_of(key)
    assert key_id is not None
    revoked = await api_keys.store.revoke(key_id)
    assert revoked is not None
    assert revoked.revoked_at is not None
    record = await api_keys.store.verify(key)
    assert record is not None
    assert record.revoked_at == revoked.revoked_at
    again = await api_keys.store.revoke(key_id)
    assert again is not None
    assert again.revoked_at == revoked.revoked_at  # the first revocation's time stays
    listed = {record.id: record for record in await api_keys.store.all()}
    assert listed[key_id].revoked_at == revoked.revoked_at
    assert await api_keys.store.revoke("0" * 16) is None


# --- the command line -------------------------------------------------------------------------


def keys_command(
    capsys: pytest.CaptureFixture[str], *args: str, exit_code: int = 0
) -> tuple[str, str]:
    """`python -m voicebus_gateway keys ...` run here: what it printed (out, err)."""
    with pytest.raises(SystemExit) as ended:
        main(["keys", *args])
    assert ended.value.code == exit_code
    captured = capsys.readouterr()
    return captured.out, captured.err


def listed(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    out, _ = keys_command(capsys, "list")
    return {line["id"]: line for line in map(json.loads, out.splitlines())}


def forget(redis_url: str, key_id: str) -> None:
    async def delete() -> None:
        redis = Redis.from_url(redis_url)
        await redis.delete(KEY_PREFIX + key_id)
        await redis.srem(INDEX, key_id)
        await redis.aclose()

    asyncio.run(delete())


def verify(redis_url: str, key: str) -> Any:
    async def check() -> Any:
        redis = Redis.from_url(redis_url)
        try:
            return await RedisApiKeys(redis).verify(key)
        finally:
            await redis.aclose()

    return asyncio.run(check())


def test_keys_are_made_listed_and_revoked_from_the_command_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("VOICEBUS_REDIS_URL", redis_url)
    out, err = keys_command(
        capsys, "create", "--name", "ci", "--scope", "calls:read", "--scope", "agents:write"
    )
    key = out.strip()  # alone on stdout: KEY=$(... keys create ...) keeps it
    key_id = id_of(key)
    assert key_id is not None
    try:
        assert f"created API key {key_id}" in err
        record = verify(redis_url, key)
        assert record.scopes == {Scope.CALLS_READ, Scope.AGENTS_WRITE}

        shown = listed(capsys)[key_id]
        assert shown["name"] == "ci"
        assert shown["scopes"] == ["agents:write", "calls:read"]
        assert shown["revoked_at"] is None
        assert key not in json.dumps(shown)

        out, _ = keys_command(capsys, "revoke", key_id)
        assert json.loads(out)["revoked_at"] is not None
        assert listed(capsys)[key_id]["revoked_at"] is not None
        assert verify(redis_url, key).revoked_at is not None
    finally:
        forget(redis_url, key_id)


def test_the_command_line_refuses_what_it_cannot_do(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("VOICEBUS_REDIS_URL", redis_url)
    _, err = keys_command(capsys, "revoke", "0" * 16, exit_code=1)
    assert "no API key 0000000000000000" in err
    _, err = keys_command(capsys, "create", "--name", "x", "--scope", "everything", exit_code=2)
    assert "invalid choice: 'everything'" in err
    _, err = keys_command(capsys, "create", "--name", "x", exit_code=2)
    assert "--scope" in err
