"""Refusals of identity and access, with stable codes like the ledger's."""

from __future__ import annotations

from timebank.errors import TimebankError


class AuthError(TimebankError):
    """Who is asking, or whether they may, refused the request."""

    code = "unauthenticated"
    title = "Authentication is required"


class Unauthenticated(AuthError):
    """No credentials, or credentials that do not hold (bad, expired, revoked)."""

    code = "unauthenticated"
    title = "Authentication is required"


class Forbidden(AuthError):
    """Known caller, not allowed to do this here."""

    code = "forbidden"
    title = "Not allowed"


class WeakPassword(AuthError):
    """A new password that is too short or too long."""

    code = "validation_error"
    title = "The password is not acceptable"


class RateLimited(AuthError):
    """Too many failed attempts for this account or address; wait and retry."""

    code = "rate_limited"
    title = "Too many attempts; retry later"


class InvitationInvalid(AuthError):
    """An invitation's token that cannot be used: unknown, used, revoked or
    expired, or its person has a password already (all answered alike)."""

    code = "invitation_invalid"
    title = "This invitation cannot be used"
