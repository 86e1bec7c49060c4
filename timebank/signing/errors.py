"""Refusals of signatures and keys, as named errors with stable codes (mapped to
HTTP in timebank/api/problems.py like every other code)."""

from __future__ import annotations

from timebank.errors import TimebankError


class SignatureRefused(TimebankError):
    """A signature, a signed document or a key was refused; nothing was written."""

    code = "signature_invalid"
    title = "The signature was refused"


class SignatureMalformed(SignatureRefused):
    """The signed document is not strict canonical JSON of the expected shape."""

    code = "signature_malformed"
    title = "The signed document is malformed"


class IntentWrongLedger(SignatureRefused):
    """The intent names another community's ledger."""

    code = "intent_wrong_ledger"
    title = "The intent was signed for another ledger"


class IntentExpired(SignatureRefused):
    """The intent's not_after has passed."""

    code = "intent_expired"
    title = "The intent has expired"


class IntentMismatch(SignatureRefused):
    """The intent says something other than the transaction does."""

    code = "intent_mismatch"
    title = "The intent does not match the transaction"


class SignatureInvalid(SignatureRefused):
    """The signature does not verify with the named key."""

    code = "signature_invalid"
    title = "The signature does not verify"


class KeyUnknown(SignatureRefused):
    """No key with this id is registered in the community."""

    code = "key_unknown"
    title = "No such key in this community"


class KeyRevoked(SignatureRefused):
    """The key was revoked; signatures made with it from then on are refused."""

    code = "key_revoked"
    title = "The key was revoked"


class KeyNotAllowed(SignatureRefused):
    """The key belongs to someone who may not sign for this account."""

    code = "key_not_allowed"
    title = "This key may not sign for this account"


class SignatureRequired(SignatureRefused):
    """The community's policy requires a signed intent for this transaction."""

    code = "signature_required"
    title = "A signed intent is required"


SIGNATURE_ERRORS: dict[str, type[SignatureRefused]] = {
    error.code: error
    for error in (
        SignatureMalformed,
        IntentWrongLedger,
        IntentExpired,
        IntentMismatch,
        SignatureInvalid,
        KeyUnknown,
        KeyRevoked,
        KeyNotAllowed,
        SignatureRequired,
    )
}
