"""POST /v1/auth/login, POST /v1/auth/logout, GET /v1/auth/me: login sessions for people.

A session token acts with its user's role and city limits wherever an API key does (api/deps.py).
Passwords are checked with Argon2id; an unknown user gets the same answer, after the same
Argon2 verification, as a wrong password. After users.LOCKOUT_AFTER failures in a row the account
is locked for users.LOCKOUT_MINUTES (429 with Retry-After), whatever the password.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException

from api.deps import Caller, Conn, SettingsDep, ViewerKey, _presented_key, session_seconds
from api.errors import ERROR_RESPONSES
from pisman import users
from pisman.contract import CallerAnswer, LoginRequest, LogoutAnswer, SessionAnswer

router = APIRouter(prefix="/v1/auth", tags=["auth"], responses=ERROR_RESPONSES)


def caller_answer(caller: Caller) -> CallerAnswer:
    """The answer naming a caller."""
    return CallerAnswer(
        kind="session" if caller.username else "key",
        label=caller.label,
        username=caller.username,
        display_name=caller.display_name,
        role=caller.role,
        cities=list(caller.cities),
        expires_at=caller.expires_at.isoformat() if caller.expires_at else None,
    )


@router.post(
    "/login",
    summary="Log in with a username and password; answers a session token",
    response_model=SessionAnswer,
)
async def login(body: LoginRequest, conn: Conn, settings: SettingsDep) -> SessionAnswer:
    """A session token for the user (401 wrong name or password, 403 disabled, 429 locked)."""
    seconds = session_seconds(settings)
    result = await users.login(conn, body.username, body.password, session_s=seconds)
    if isinstance(result, users.LoginRefused):
        if result.reason == "locked":
            minutes = max(1, -(-result.retry_after_s // 60))
            raise HTTPException(
                429,
                detail=(
                    f"account locked after {users.LOCKOUT_AFTER} failed logins in a row; try again"
                    f" in {minutes} min, or ask an admin (`pisman users enable`)"
                ),
                headers={"Retry-After": str(max(1, result.retry_after_s))},
            )
        if result.reason == "disabled":
            raise HTTPException(403, detail="this account is disabled; ask an admin")
        raise HTTPException(
            401, detail="wrong username or password", headers={"WWW-Authenticate": "Bearer"}
        )
    user = await users.verify_session(conn, result, session_s=seconds)
    if user is None:  # disabled between the two statements
        raise HTTPException(403, detail="this account is disabled; ask an admin")
    caller = Caller(
        f"user {user.username}",
        user.role,
        user.cities,
        user.username,
        user.display_name,
        user.expires_at,
    )
    return SessionAnswer(token=result, user=caller_answer(caller))


@router.get("/me", summary="Who this request acts as", response_model=CallerAnswer)
async def me(caller: ViewerKey) -> CallerAnswer:
    """The caller's kind, role, city limits and (for a session) when it ends."""
    return caller_answer(caller)


@router.post("/logout", summary="End this login session", response_model=LogoutAnswer)
async def logout(
    caller: ViewerKey,
    conn: Conn,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> LogoutAnswer:
    """End the session whose token the request carries (422 for an API key)."""
    token = _presented_key(x_api_key, authorization)
    if caller.username is None or token is None:
        raise HTTPException(
            422,
            detail="logout ends a login session; an API key is revoked with `pisman keys revoke`",
        )
    return LogoutAnswer(ended=await users.logout(conn, token))
