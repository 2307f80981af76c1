"""GET /api/v1/me (anyone logged in) and user management (admin only):
users, their login locks, unlocking."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import logins
from dashboard.api.auth import AdminDep, UserDep, csrf_token
from dashboard.api.deps import GuardDep, SessionDep
from dashboard.loginguard import LockPublic, address_key, locks
from dashboard.models import GridCell, User
from dashboard.roles import ROLES, permissions_of
from dashboard.schemas import Me, UserCreate, UserPublic, UserUpdate
from dashboard.users import UserError, check_password, create_user, hash_password

router = APIRouter(tags=["users"])


class Unlocked(BaseModel):
    username: str
    was_locked: bool


def _public(user: User) -> UserPublic:
    return UserPublic(username=user.username, role=user.role,
                      display_name=user.display_name, active=user.active,
                      grid_cell=user.grid_cell)


def _grid_cell(session: Session, code: str | None) -> str | None:
    """The grid cell code to keep on a user: None or "" for none, else a known cell."""
    if not code:
        return None
    if session.scalar(select(GridCell.id).where(GridCell.code == code)) is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"no grid cell {code!r}")
    return code


@router.get("/me", response_model=Me)
def me(request: Request, user: UserDep) -> Me:
    """Who is logged in, what they may do, and the CSRF token for changes."""
    return Me(**_public(user).model_dump(), permissions=permissions_of(user.role),
              csrf_token=csrf_token(request))


@router.get("/users", response_model=list[UserPublic])
def list_users(session: SessionDep, _admin: AdminDep) -> list[UserPublic]:
    return [_public(u) for u in session.scalars(select(User).order_by(User.username))]


@router.post("/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def add_user(body: UserCreate, session: SessionDep, _admin: AdminDep) -> UserPublic:
    cell = _grid_cell(session, body.grid_cell)
    try:
        user = create_user(session, body.username, body.password, body.role,
                           body.display_name)
    except UserError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    user.grid_cell = cell
    session.commit()
    return _public(user)


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {username!r}")
    return user


@router.patch("/users/{username}", response_model=UserPublic)
def change_user(username: str, body: UserUpdate, session: SessionDep,
                admin: AdminDep) -> UserPublic:
    """Change role, name, active, grid cell or password; deactivating or a new password
    ends the user's logins.  Admins cannot lock themselves out."""
    user = _user(session, username)
    if user.id == admin.id and (body.active is False or body.role not in (None, "admin")):
        raise HTTPException(status.HTTP_409_CONFLICT,
                            "you cannot deactivate or demote yourself; ask another admin")
    if body.role is not None and body.role not in ROLES:
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            f"role {body.role!r}: one of {', '.join(ROLES)}")
    try:
        if body.password is not None:
            check_password(body.password)
    except UserError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    for field in ("role", "display_name", "active"):
        if getattr(body, field) is not None:
            setattr(user, field, getattr(body, field))
    if body.grid_cell is not None:
        user.grid_cell = _grid_cell(session, body.grid_cell)
    if body.password is not None:
        user.password_hash = hash_password(body.password)
    if body.active is False or body.password is not None:
        logins.end_all(session, user.id)
    session.commit()
    return _public(user)


@router.get("/users/locks", response_model=list[LockPublic])
def list_locks(session: SessionDep, _admin: AdminDep) -> list[LockPublic]:
    """Usernames locked now after failed logins (unknown names too)."""
    return locks(session)


@router.post("/users/{username}/unlock", response_model=Unlocked)
def unlock(username: Annotated[str, Path(max_length=64)], request: Request,
           session: SessionDep, guard: GuardDep, admin: AdminDep) -> Unlocked:
    """Lift the username's login lock and forget its failed logins (audited)."""
    host = request.client.host if request.client else None
    was = guard.unlock(session, username, admin.username, address_key(host))
    return Unlocked(username=username, was_locked=was)
