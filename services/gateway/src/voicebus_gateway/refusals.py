"""What is wrong with a message a caller's client sent, said so the client can fix it."""

from __future__ import annotations

from pydantic import ValidationError


def problems_of(invalid: ValidationError, *, skip_loc: int = 0) -> str:
    """`field.path: what is wrong` for each error, joined; `skip_loc` drops leading location
    parts that name no field (a discriminated union's tag)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'][skip_loc:])}: {error['msg']}"
        for error in invalid.errors(include_url=False, include_input=False)
    )
