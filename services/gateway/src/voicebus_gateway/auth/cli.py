"""`python -m voicebus_gateway keys ...`: make, list and revoke API keys in the Redis of
VOICEBUS_REDIS_URL (the gateways' own), from a shell on any machine that reaches it.

A new key is printed once, alone on stdout (`KEY=$(... keys create ...)` keeps it), and is
kept nowhere: only its digest is stored.
"""

from __future__ import annotations

import argparse
import json
import sys

from redis.asyncio import Redis

from voicebus_gateway.auth.keys import ApiKey
from voicebus_gateway.auth.redis_keys import RedisApiKeys
from voicebus_gateway.auth.scopes import Scope


def add_keys_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `keys` command and its own commands, on a parser's subcommands."""
    keys = commands.add_parser("keys", help="make, list and revoke API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key; it is printed once, on stdout")
    create.add_argument("--name", required=True, help="who or what holds it (ci, crm sync)")
    create.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        required=True,
        choices=[scope.value for scope in Scope],
        help="what it may do (repeat for several); admin: everything",
    )
    actions.add_parser("list", help="one JSON line per key (never the key itself)")
    revoke = actions.add_parser("revoke", help="revoke a key at once, on every replica")
    revoke.add_argument("key_id", help="the key's id: the part after vb_ (see keys list)")


def _line(record: ApiKey) -> str:
    return json.dumps(
        {
            "id": record.id,
            "name": record.name,
            "scopes": sorted(record.scopes),
            "created_at": record.created_at.isoformat(),
            "revoked_at": None if record.revoked_at is None else record.revoked_at.isoformat(),
        }
    )


async def run_keys_command(args: argparse.Namespace, *, redis_url: str) -> int:
    """Do what `args` (parsed by the `keys` command) asks; the process's exit status."""
    redis = Redis.from_url(redis_url)
    keys = RedisApiKeys(redis)
    try:
        if args.action == "create":
            made = await keys.create(name=args.name, scopes=[Scope(s) for s in args.scopes])
            print(made.key)
            print(
                f"created API key {made.record.id} ({made.record.name}: "
                f"{' '.join(sorted(made.record.scopes))}); it is shown only now",
                file=sys.stderr,
            )
        elif args.action == "list":
            for record in await keys.all():
                print(_line(record))
        else:
            revoked = await keys.revoke(args.key_id)
            if revoked is None:
                print(f"no API key {args.key_id}", file=sys.stderr)
                return 1
            print(_line(revoked))
    finally:
        await redis.aclose()
    return 0
