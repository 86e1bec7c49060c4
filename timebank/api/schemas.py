"""The bodies the API reads and writes, as pydantic models. Numbers that are
amounts or limits are strict integers: a float, a string or a boolean is refused,
never rounded. Unknown fields in a request are refused."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    StrictBool,
    StrictInt,
    Tag,
    model_validator,
)

from timebank.auth.access import Role, Scope
from timebank.auth.client_ids import CLIENT_ID_PATTERN
from timebank.ledger.models import (
    AMOUNT_MAX,
    BATCH_SIZE_MAX,
    CATEGORY_LENGTH_MAX,
    FLOW_PERIODS_MAX,
    INACTIVE_DAYS_MAX,
    INACTIVE_PAGE_MAX,
    LIMIT_ABSOLUTE_MAX,
    MEMO_LENGTH_MAX,
    NEAR_LIMITS_PAGE_MAX,
    NEAR_LIMITS_SHARE_BPS_MAX,
    POSTINGS_PER_TRANSACTION_MAX,
    STATEMENT_PAGE_SIZE_DEFAULT,
    STATEMENT_PAGE_SIZE_MAX,
    AccountStatus,
    TransactionKind,
    TransactionState,
)

SLUG_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
UNIT_CODE_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,15}$"
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$"
NAME_LENGTH_MAX = 200
SEARCH_LENGTH_MAX = 100
CURSOR_LENGTH_MAX = 400

Amount = Annotated[
    StrictInt,
    Field(ge=1, le=AMOUNT_MAX, description="A positive amount in the unit's smallest step."),
]
SignedAmount = Annotated[
    StrictInt,
    Field(
        ge=-AMOUNT_MAX,
        le=AMOUNT_MAX,
        description="Credit (positive) or debit (negative), never zero.",
    ),
]
MinBalance = Annotated[StrictInt, Field(ge=-LIMIT_ABSOLUTE_MAX, le=0)]
MaxBalance = Annotated[StrictInt, Field(ge=0, le=LIMIT_ABSOLUTE_MAX)]
# Names are one line of printable text; free texts hold no NUL (PostgreSQL cannot).
PRINTABLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f]+$"
NO_NUL_PATTERN = r"^[^\x00]*$"
Name = Annotated[
    str, Field(min_length=1, max_length=NAME_LENGTH_MAX, pattern=PRINTABLE_LINE_PATTERN)
]
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
UnitCode = Annotated[str, Field(pattern=UNIT_CODE_PATTERN)]
Memo = Annotated[str, Field(max_length=MEMO_LENGTH_MAX, pattern=NO_NUL_PATTERN)]
Category = Annotated[
    str, Field(min_length=1, max_length=CATEGORY_LENGTH_MAX, pattern=PRINTABLE_LINE_PATTERN)
]
PageSize = Annotated[int, Field(ge=1, le=STATEMENT_PAGE_SIZE_MAX)]
Cursor = Annotated[str, Field(min_length=1, max_length=CURSOR_LENGTH_MAX)]
# Kinds a client may post; reversals come from /reverse.
PostableKind = Literal[
    "exchange",
    "transfer",
    "donation",
    "grant",
    "fee",
    "levy",
    "demurrage",
    "issuance",
    "reconversion",
    "adjustment",
]
EventType = Literal[
    "transaction.posted",
    "transaction.pending",
    "transaction.voided",
    "transaction.expired",
    "transaction.reversed",
    "member.joined",
    "pool.grant_paid",
    "pool.request_opened",
    "pool.request_resolved",
    "policy.changed",
]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    model_config = ConfigDict(extra="ignore")


# Communities and units.


class CommunityCreate(Request):
    slug: Slug
    name: Name


class UnitCreate(Request):
    code: UnitCode
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=PRINTABLE_LINE_PATTERN)]
    kind: Literal["time", "currency"]
    decimals: Annotated[StrictInt, Field(ge=0, le=6)] = 0
    default_min_balance: MinBalance = 0
    default_max_balance: MaxBalance


class UnitOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    kind: Literal["time", "currency"]
    decimals: int
    default_min_balance: int
    default_max_balance: int


class Policies(BaseModel):
    pending_expiry_default_s: int
    pending_expiry_max_s: int
    signatures: Literal["optional", "required"]


class CommunityOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    created_at: datetime
    units: list[UnitOut]
    policies: Policies


# Members, organizations, clients.


class AccountRefOut(BaseModel):
    id: uuid.UUID
    unit: str
    purpose: str


class MemberCreate(Request):
    email: Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)]
    display_name: Name
    password: Annotated[str, Field(min_length=10, max_length=1024)] | None = None
    role: Role = Role.MEMBER


class InvitationCreate(Request):
    email: Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)]
    display_name: Name
    role: Role = Role.MEMBER


class InvitationCreated(BaseModel):
    party_id: uuid.UUID = Field(description="The member, added now or earlier.")
    email: str
    display_name: str
    has_password: bool = Field(
        description="They have a password already (a member elsewhere): they log in with "
        "it, and there is no invitation."
    )
    invitation: uuid.UUID | None = None
    expires_at: datetime | None = None
    link: str | None = Field(
        default=None, description="The one-time link, in this answer only: hand it over."
    )
    email_sent: bool = Field(description="The link went out by email (SMTP configured).")


class InvitationOut(BaseModel):
    id: uuid.UUID
    party_id: uuid.UUID
    email: str
    display_name: str
    created_at: datetime
    expires_at: datetime
    state: Literal["pending", "used", "revoked", "expired"]


class InvitationList(BaseModel):
    items: list[InvitationOut]


class InvitationAccept(Request):
    token: Annotated[str, Field(min_length=1, max_length=200)]
    password: Annotated[str, Field(min_length=10, max_length=1024)]


class InvitationAccepted(BaseModel):
    email: str = Field(description="Log in with it and the password just chosen.")


class MemberOut(BaseModel):
    party_id: uuid.UUID
    display_name: str
    role: Role
    joined_at: datetime
    accounts: list[AccountRefOut]
    # Only for the member themselves, treasurers and admins.
    email: str | None = None


class MembersQuery(Query):
    q: Annotated[str, Field(min_length=1, max_length=SEARCH_LENGTH_MAX)] | None = Field(
        default=None, description="Part of the display name, case-insensitive."
    )
    cursor: Cursor | None = Field(default=None, description="next_cursor of the previous page.")
    limit: PageSize = STATEMENT_PAGE_SIZE_DEFAULT


class MembersPage(BaseModel):
    items: list[MemberOut]
    next_cursor: str | None


class OrganizationCreate(Request):
    name: Name
    kind: Literal["association", "business", "public_body"]


class OrganizationOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    created_at: datetime
    agents: list[uuid.UUID] = Field(description="Party ids of the members who act for it.")
    accounts: list[AccountRefOut]


class OrganizationList(BaseModel):
    items: list[OrganizationOut]


class AgentAdd(Request):
    member: uuid.UUID = Field(description="The member's party id.")


class ClientCreate(Request):
    name: Name
    organization: uuid.UUID | None = Field(
        default=None, description="Acts for this organization; else for the community itself."
    )
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(Scope))]


class ClientOut(BaseModel):
    client_id: str = Field(
        pattern=CLIENT_ID_PATTERN,
        description="What the client sends to /v1/auth/token with its secret, and names "
        "it in /clients/{client_id}: `<community id>.<client id>`. (A client made before "
        "this form may still use its bare `<client id>`.)",
    )
    name: str
    party_id: uuid.UUID
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None


class ClientCreated(ClientOut):
    client_secret: str = Field(description="Shown once; keep it safe.")


class ClientList(BaseModel):
    items: list[ClientOut]


# Accounts.


class AccountOut(BaseModel):
    id: uuid.UUID
    community: str
    unit: str
    owner: OwnerOut
    purpose: str
    status: AccountStatus
    balance: int
    available: int = Field(description="balance - pending_debits: what can still be spent.")
    pending_debits: int
    pending_credits: int
    min_balance: int
    max_balance: int


class NearLimitsQuery(Query):
    share_bps: Annotated[int, Field(ge=1, le=NEAR_LIMITS_SHARE_BPS_MAX)] = Field(
        default=1000,
        description="How near, per 10,000 of the limit: within 10% by default.",
    )
    limit: Annotated[int, Field(ge=1, le=NEAR_LIMITS_PAGE_MAX)] = 100


class NearLimitsOut(BaseModel):
    items: list[AccountOut]
    truncated: bool = Field(description="More accounts are near their limits than listed.")


class InactiveQuery(Query):
    days: Annotated[int, Field(ge=1, le=INACTIVE_DAYS_MAX)] = Field(
        default=90, description="Without an exchange for at least so many days."
    )
    limit: Annotated[int, Field(ge=1, le=INACTIVE_PAGE_MAX)] = 100


class InactiveMemberOut(BaseModel):
    party_id: uuid.UUID
    display_name: str
    joined_at: datetime
    last_exchange_at: datetime | None = Field(description="Their latest posting; null: never.")


class InactiveMembersOut(BaseModel):
    items: list[InactiveMemberOut]
    truncated: bool = Field(description="More members are inactive than listed.")


class AccountPatch(Request):
    min_balance: MinBalance | None = None
    max_balance: MaxBalance | None = None
    status: AccountStatus | None = None

    @model_validator(mode="after")
    def something_to_change(self) -> AccountPatch:
        if self.min_balance is None and self.max_balance is None and self.status is None:
            raise ValueError("give min_balance, max_balance or status")
        return self


class EntriesQuery(Query):
    cursor: Cursor | None = None
    limit: PageSize = STATEMENT_PAGE_SIZE_DEFAULT
    from_: datetime | None = Field(
        default=None, alias="from", description="Postings at or after this instant."
    )
    to: datetime | None = Field(default=None, description="Postings before this instant.")


class EntryOut(BaseModel):
    seq: int
    transaction_id: uuid.UUID
    kind: TransactionKind
    memo: str
    category: str | None
    amount: int
    balance_after: int
    posted_at: datetime


class EntriesPage(BaseModel):
    account: AccountOut
    items: list[EntryOut]
    next_cursor: str | None


# Transactions.


class PostingIn(Request):
    account: uuid.UUID
    amount: SignedAmount


class TransferIn(Request):
    """`amount` moves from one account to another."""

    id: uuid.UUID = Field(description="Chosen by the client; a retry with it is never doubled.")
    community: Slug
    unit: UnitCode
    from_: uuid.UUID = Field(alias="from")
    to: uuid.UUID
    amount: Amount
    kind: PostableKind = "exchange"
    memo: Memo = ""
    category: Category | None = None
    pending: StrictBool = False
    expires_in: Annotated[StrictInt, Field(ge=1)] | None = Field(
        default=None, description="Seconds a pending transaction waits for confirmation."
    )
    signed: SignedIntent | None = Field(
        default=None,
        description="The payer's signed intent (required when the community's policy says so).",
    )


class PostingsTransactionIn(Request):
    """Any number of postings (2 to 64) that sum to zero per unit."""

    id: uuid.UUID
    community: Slug
    unit: UnitCode | None = None
    postings: Annotated[
        list[PostingIn], Field(min_length=2, max_length=POSTINGS_PER_TRANSACTION_MAX)
    ]
    kind: PostableKind = "transfer"
    memo: Memo = ""
    category: Category | None = None
    pending: StrictBool = False
    expires_in: Annotated[StrictInt, Field(ge=1)] | None = None


def _transaction_shape(value: Any) -> str:
    """Which of the two shapes a transaction has: with `postings`, or a transfer.
    Deciding first gives errors about the intended shape only."""
    if isinstance(value, dict):
        return "postings" if "postings" in value else "transfer"
    return "postings" if isinstance(value, PostingsTransactionIn) else "transfer"


TransactionIn = Annotated[
    Annotated[TransferIn, Tag("transfer")] | Annotated[PostingsTransactionIn, Tag("postings")],
    Discriminator(_transaction_shape),
]


class TransactionBody(RootModel[TransactionIn]):
    """A transfer, or a balanced set of postings."""


class OwnerOut(BaseModel):
    id: uuid.UUID
    kind: Literal["member", "organization", "pool", "community"]
    display_name: str


class PostingOut(BaseModel):
    account: uuid.UUID
    amount: int
    balance_after: int | None = Field(
        default=None, description="The account's balance after it; only on reads of posted ones."
    )
    owner: OwnerOut | None = Field(
        default=None,
        description="Who holds the account (their kind and name), on reads of one transaction.",
    )


class TransactionOut(BaseModel):
    id: uuid.UUID
    community: str
    kind: TransactionKind
    state: TransactionState
    memo: str
    category: str | None
    reverses: uuid.UUID | None = None
    reversed_by: uuid.UUID | None = None
    postings: list[PostingOut]
    created_at: datetime
    expires_at: datetime | None
    resolved_at: datetime | None
    signatures: list[SignatureOut] = Field(
        default_factory=list, description="Signed intent and acknowledgement, on reads."
    )
    intent_amount: int | None = Field(
        default=None,
        description=(
            "On reads of a pending transfer: the amount the payer's signed intent must"
            " name to confirm it (before what a pool takes)."
        ),
    )


class BatchIn(Request):
    atomic: StrictBool = Field(description="All or nothing; else each on its own.")
    # At most BATCH_SIZE_MAX, refused as batch_too_large by the handler (the body
    # size limit bounds what is parsed before).
    transactions: Annotated[
        list[TransactionIn], Field(min_length=1, json_schema_extra={"maxItems": BATCH_SIZE_MAX})
    ]


class BatchItemOut(BaseModel):
    index: int
    status: int = Field(description="201 written, 200 already there, else the problem's status.")
    transaction: TransactionOut | None = None
    problem: dict[str, object] | None = None


class BatchOut(BaseModel):
    atomic: bool
    items: list[BatchItemOut]


class ReverseIn(Request):
    id: uuid.UUID | None = Field(
        default=None, description="The reversal's id; derived from the original's when absent."
    )
    memo: Memo = ""


class TransactionQuery(Query):
    community: Slug | None = Field(
        default=None, description="Needed only when you belong to several communities."
    )


class JournalQuery(Query):
    account: uuid.UUID | None = None
    kind: TransactionKind | None = None
    state: TransactionState | None = None
    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None
    cursor: Cursor | None = None
    limit: PageSize = STATEMENT_PAGE_SIZE_DEFAULT


class JournalPage(BaseModel):
    items: list[TransactionOut]
    next_cursor: str | None


class UnitBalanceOut(BaseModel):
    unit: str
    kind: Literal["time", "currency"]
    account_count: int
    sum_of_balances: int = Field(description="Always 0 in a sound ledger.")
    total_positive_balances: int
    total_negative_balances: int
    pending_transactions: int


class TrialBalanceOut(BaseModel):
    community: str
    as_of: datetime
    units: list[UnitBalanceOut]
    balanced: bool


# Me.


class MyAccountOut(BaseModel):
    id: uuid.UUID
    unit: str
    owner: OwnerOut
    balance: int
    available: int
    pending_debits: int
    pending_credits: int
    min_balance: int
    max_balance: int
    status: AccountStatus


class MembershipOut(BaseModel):
    community: str
    community_id: uuid.UUID
    name: str
    role: Role
    party_id: uuid.UUID
    accounts: list[MyAccountOut]


class MeOut(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    is_operator: bool
    memberships: list[MembershipOut]


# Webhooks.


class WebhookCreate(Request):
    url: Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2000)]
    events: Annotated[list[EventType], Field(min_length=1, max_length=20)]


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Signs each delivery (HMAC-SHA256); shown once.")


class WebhookList(BaseModel):
    items: list[WebhookOut]


class DeliveryOut(BaseModel):
    event_id: int
    type: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


class DeliveryQuery(Query):
    limit: PageSize = STATEMENT_PAGE_SIZE_DEFAULT


# Authentication (RFC 6749 token endpoint; the body may also be a form).

TokenField = Annotated[str, Field(min_length=1, max_length=1024)]


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    grant_type: Literal["password", "client_credentials", "refresh_token"]
    username: TokenField | None = Field(default=None, description="The person's email.")
    email: TokenField | None = None
    password: TokenField | None = None
    client_id: TokenField | None = Field(
        default=None, description="An API client's `<community id>.<client id>`."
    )
    client_secret: TokenField | None = None
    refresh_token: TokenField | None = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds the access token lives.")
    refresh_token: str | None = Field(default=None, description="Absent for API clients.")


class LogoutRequest(BaseModel):
    refresh_token: TokenField


class Jwk(BaseModel):
    model_config = ConfigDict(extra="allow")

    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class Jwks(BaseModel):
    keys: list[Jwk]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unreachable"] | None = None


# The log.

LeafIndex = Annotated[int, Field(ge=0, le=2**62)]
TreeSize = Annotated[int, Field(ge=1, le=2**62)]
LOG_ENTRIES_PAGE_MAX = 1_000


class CheckpointOut(BaseModel):
    origin: str
    tree_size: int
    root_hash: str = Field(description="Base64 (standard) of the 32-byte root.")
    note: str = Field(description="The checkpoint as a C2SP signed note, exactly as signed.")
    created_at: datetime
    cosignatures: list[str] = Field(
        default_factory=list, description="Witnesses' signature lines for this checkpoint."
    )


class LogKeysOut(BaseModel):
    keys: list[str] = Field(description="Verifier keys: <name>+<hex key id>+<base64 key>.")


class LogEntriesQuery(Query):
    start: LeafIndex = 0
    end: LeafIndex | None = Field(
        default=None, description="Exclusive; at most 1,000 entries after start."
    )


class LogEntriesOut(BaseModel):
    start: int
    entries: list[str] = Field(description="Each entry's exact bytes, as UTF-8 text.")


class InclusionQuery(Query):
    index: LeafIndex
    size: TreeSize


class InclusionOut(BaseModel):
    leaf_index: int
    tree_size: int
    hashes: list[str] = Field(description="RFC 9162 inclusion path, base64 (standard).")


class ConsistencyQuery(Query):
    first: TreeSize
    second: TreeSize


class ConsistencyOut(BaseModel):
    first: int
    second: int
    hashes: list[str] = Field(description="RFC 9162 consistency proof, base64 (standard).")


# Keys and signatures.

Base64Url = Annotated[str, Field(min_length=1, max_length=8192, pattern=r"^[A-Za-z0-9_-]+$")]


class KeyCreate(Request):
    community: Slug
    algorithm: Literal["ed25519", "p256"]
    public_key: Base64Url = Field(
        description="base64url: 32 raw bytes (Ed25519) or the 65-byte uncompressed point (P-256)."
    )
    label: Annotated[str, Field(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""


class KeyOut(BaseModel):
    key_id: str
    community: str
    party_id: uuid.UUID
    algorithm: Literal["ed25519", "p256"]
    public_key: str
    label: str
    registered_at: datetime
    revoked_at: datetime | None


class KeyList(BaseModel):
    items: list[KeyOut]


class KeysQuery(Query):
    community: Slug | None = None


class SignedIntent(Request):
    """The payer's transfer intent: its exact RFC 8785 bytes and the signature."""

    intent: Base64Url
    signature: Base64Url


class SignedAck(Request):
    """The payee's acknowledgement: its exact RFC 8785 bytes and the signature."""

    ack: Base64Url
    signature: Base64Url


class ResolveIn(Request):
    signed: SignedAck | SignedIntent | None = Field(
        default=None,
        description="The payee's signed acknowledgement of a payer's signed intent, or,"
        " when the payer confirms what the payee proposed, the payer's signed transfer"
        " intent (the same document as a signed post's).",
    )


class CommunityPatch(Request):
    signatures: Literal["optional", "required"] = Field(
        description="Whether member-initiated transfers must carry a signed intent."
    )


class SignatureOut(BaseModel):
    purpose: Literal["intent", "ack"]
    key_id: str
    signed: str = Field(description="The exact signed bytes, base64url.")
    signature: str


# Treasurers' reports.


class PeriodQuery(Query):
    from_: datetime | None = Field(default=None, alias="from", description="Inclusive.")
    to: datetime | None = Field(default=None, description="Exclusive.")


class FlowsQuery(PeriodQuery):
    unit: UnitCode | None = None


class FlowOut(BaseModel):
    unit: str
    category: str | None
    kind: TransactionKind
    transactions: int
    total: int = Field(description="What moved: the sum of the transactions' credits.")


class FlowsOut(BaseModel):
    community: str
    items: list[FlowOut]


class FlowsOverTimeQuery(Query):
    period: Literal["week", "month"] = Field(
        default="month", description="UTC weeks (from Monday) or calendar months."
    )
    periods: Annotated[int, Field(ge=1, le=FLOW_PERIODS_MAX)] = Field(
        default=12, description="How many, up to and including the current one."
    )
    unit: UnitCode | None = None


class FlowPointOut(BaseModel):
    unit: str
    starts_at: datetime = Field(description="The period's first instant (UTC).")
    transactions: int
    total: int = Field(description="What moved: the sum of the transactions' credits.")


class FlowsOverTimeOut(BaseModel):
    community: str
    period: Literal["week", "month"]
    items: list[FlowPointOut] = Field(
        description="Per unit, every period oldest first, those without a flow as zero."
    )


class WitnessCreate(Request):
    vkey: Annotated[str, Field(min_length=1, max_length=400)] = Field(
        description="The witness's verifier key: <name>+<hex key id>+<base64 key>."
    )


class WitnessOut(BaseModel):
    name: str
    vkey: str
    created_at: datetime


class WitnessList(BaseModel):
    items: list[WitnessOut]


class CosignatureIn(Request):
    note: Annotated[str, Field(min_length=1, max_length=65536)] = Field(
        description="A checkpoint of this log, as served, with the witness's signature line added."
    )


class ReceiptEntryOut(BaseModel):
    leaf_index: int
    entry: str = Field(description="The entry's exact bytes, as UTF-8 text.")
    inclusion_proof: list[str] = Field(description="RFC 9162 path to the checkpoint's root.")


class ReceiptOut(BaseModel):
    transaction_id: uuid.UUID
    checkpoint: CheckpointOut
    entries: list[ReceiptEntryOut]


# Solidarity pools and levies.

BasisPoints = Annotated[StrictInt, Field(ge=0, le=10_000)]
Purpose = Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL_PATTERN)]
Reason = Annotated[str, Field(max_length=500, pattern=NO_NUL_PATTERN)]


class PoolUnitIn(Request):
    unit: UnitCode
    grant_max: Amount = Field(description="The largest single grant.")
    beneficiary_period_max: Amount = Field(
        description="The most one beneficiary receives within the pool's period."
    )
    eligible_at_or_below: Annotated[StrictInt, Field(ge=-AMOUNT_MAX, le=AMOUNT_MAX)] | None = Field(
        default=None,
        description="Only members whose balance in this unit is at most this are helped.",
    )


class CharterIn(Request):
    purpose: Purpose
    managers: Annotated[list[uuid.UUID], Field(min_length=1, max_length=50)] = Field(
        description="Members' party ids."
    )
    approvals_required: Annotated[StrictInt, Field(ge=1, le=20)] = Field(
        description="How many managers must approve a request before it is paid (k of n)."
    )
    period_days: Annotated[StrictInt, Field(ge=1, le=366)] = 30
    referrers: Annotated[list[uuid.UUID], Field(max_length=50)] = Field(
        default_factory=list,
        description="Members (social workers) who name whom the pool may help.",
    )
    requires_referral: StrictBool = False
    donors_visible: StrictBool = Field(
        default=False, description="Whether the pool's statement names its donors."
    )
    units: Annotated[list[PoolUnitIn], Field(min_length=1, max_length=16)]


class PoolCreate(CharterIn):
    name: Name


class PoolUnitOut(BaseModel):
    unit: str
    account: uuid.UUID
    balance: int
    grant_max: int
    beneficiary_period_max: int
    eligible_at_or_below: int | None


class PoolOut(BaseModel):
    id: uuid.UUID
    name: str
    purpose: str
    managers: list[uuid.UUID]
    approvals_required: int
    period_days: int
    referrers: list[uuid.UUID]
    requires_referral: bool
    donors_visible: bool
    units: list[PoolUnitOut]
    created_at: datetime


class PoolList(BaseModel):
    items: list[PoolOut]


class DonationIn(Request):
    id: uuid.UUID = Field(description="The transaction's id, chosen by the client.")
    from_: uuid.UUID = Field(alias="from", description="The donor's account.")
    unit: UnitCode
    amount: Amount
    memo: Memo = ""


class HelpRequestIn(Request):
    id: uuid.UUID = Field(description="Chosen by the client; a retry is recognised.")
    unit: UnitCode
    amount: Amount
    reason: Reason = ""


class SignedDecision(Request):
    """A pool manager's decision: its exact RFC 8785 bytes and the signature."""

    decision: Base64Url
    signature: Base64Url


class DecisionIn(Request):
    decision: Literal["approve", "decline"]
    signed: SignedDecision | None = Field(
        default=None,
        description="The manager's signed decision (required when the community's policy"
        " requires signatures).",
    )


class DecisionOut(BaseModel):
    manager: uuid.UUID
    decision: str


class HelpRequestOut(BaseModel):
    id: uuid.UUID
    pool: uuid.UUID
    beneficiary: uuid.UUID
    beneficiary_name: str = Field(description="The beneficiary's display name.")
    unit: str
    amount: int
    reason: str
    state: Literal["open", "paid", "declined", "withdrawn"]
    decisions: list[DecisionOut]
    transaction: uuid.UUID | None
    created_at: datetime
    resolved_at: datetime | None


class HelpRequestsQuery(Query):
    state: Literal["open", "paid", "declined", "withdrawn"] | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 50
    cursor: Cursor | None = None


class HelpRequestsPage(BaseModel):
    items: list[HelpRequestOut]
    next_cursor: str | None


class GrantIn(Request):
    id: uuid.UUID = Field(description="The transaction's id, chosen by the client.")
    to: uuid.UUID = Field(description="The beneficiary's party id.")
    unit: UnitCode
    amount: Amount
    memo: Memo = ""


class GrantOut(BaseModel):
    transaction: uuid.UUID


class ReferralIn(Request):
    member: uuid.UUID
    referred: StrictBool = True


class PoolStatementQuery(Query):
    unit: UnitCode
    limit: PageSize = STATEMENT_PAGE_SIZE_DEFAULT
    before: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="The next_before of the previous page."
    )


class PoolLineOut(BaseModel):
    transaction: uuid.UUID
    kind: str
    amount: int
    balance_after: int
    posted_at: datetime
    counterparty: str | None = Field(
        description="Who gave or received; null when the pool keeps it private."
    )


class PoolDecisionSummaryOut(BaseModel):
    """A request the managers decided on, as the community sees it: no beneficiary."""

    request: uuid.UUID
    unit: str
    amount: int
    state: Literal["paid", "declined"]
    approvals: int
    declines: int
    resolved_at: datetime | None


class PoolStatementOut(BaseModel):
    pool: uuid.UUID
    unit: str
    balance: int
    lines: list[PoolLineOut]
    next_before: int | None
    decisions: list[PoolDecisionSummaryOut] = Field(
        description="The latest requests decided (paid or declined), newest first."
    )


class LevyIn(Request):
    unit: UnitCode
    category: Category | None = Field(
        default=None, description="Only exchanges of this category; null: every category."
    )
    pool: uuid.UUID
    rate_bps: BasisPoints = Field(description="Parts per 10,000 of the amount, rounded down.")
    fixed_amount: Annotated[StrictInt, Field(ge=0, le=AMOUNT_MAX)] = 0
    paid_by: Literal["payer", "payee", "split"] = "payer"


class LevyOut(BaseModel):
    id: uuid.UUID
    unit: str
    category: str | None
    pool: uuid.UUID
    account: uuid.UUID
    rate_bps: int
    fixed_amount: int
    paid_by: str


class LevyList(BaseModel):
    items: list[LevyOut]


# Periodic policies: demurrage, expiry of hours, membership fees, recurring donations.


class ScheduleIn(Request):
    kind: Literal[
        "demurrage",
        "hours_expiry",
        "membership_fee",
        "recurring_donation",
        "credit_growth",
        "welcome_grant",
    ]
    unit: UnitCode
    period: Literal["day", "week", "month", "quarter", "year"]
    starts_on: date = Field(
        description="The first period's first day (a Monday for weeks; the 1st of a month,"
        " quarter or year), UTC."
    )
    target: uuid.UUID | None = Field(
        default=None,
        description="The account credited: a pool's or the association's (none for credit growth).",
    )
    rate_bps: BasisPoints | None = Field(
        default=None,
        description="Demurrage: parts per 10,000 of the balance above threshold. Credit growth:"
        " minutes of credit per 10,000 minutes earned by exchanges.",
    )
    threshold: Annotated[StrictInt, Field(ge=-AMOUNT_MAX, le=AMOUNT_MAX)] | None = Field(
        default=None,
        description="Demurrage and expiry: what each balance keeps untouched. Credit growth:"
        " the lowest minimum it may reach.",
    )
    amount: Amount | None = Field(default=None, description="Fees and donations, per period.")
    payer_kind: Literal["member", "organization"] | None = Field(
        default=None, description="Fees: who pays them."
    )
    source: uuid.UUID | None = Field(
        default=None,
        description="Donations: the donor's account. Welcome grants: the pool's account.",
    )
    grace_days: Annotated[StrictInt, Field(ge=0, le=366)] = 0


class ScheduleOut(BaseModel):
    id: uuid.UUID
    kind: str
    unit: str
    period: str
    starts_on: date
    target: uuid.UUID | None
    rate_bps: int | None
    threshold: int | None
    amount: int | None
    payer_kind: str | None
    source: uuid.UUID | None
    grace_days: int
    created_at: datetime | None
    retired_at: datetime | None


class ScheduleList(BaseModel):
    items: list[ScheduleOut]


class RunOut(BaseModel):
    schedule: uuid.UUID
    period_start: date
    period_end: date
    charged_count: int
    charged_total: int
    unpaid_count: int


class RunList(BaseModel):
    items: list[RunOut]


class DuesQuery(Query):
    unpaid: bool = False


class DueOut(BaseModel):
    schedule: uuid.UUID
    kind: str
    period_start: date
    account: uuid.UUID
    owner: uuid.UUID
    amount: int
    state: Literal["paid", "unpaid"]
    problem: str | None = Field(description="Why it is unpaid: the ledger's error code.")
    due_on: date
    overdue: bool = Field(description="Unpaid past its grace period.")
    transaction: uuid.UUID


class DuesList(BaseModel):
    items: list[DueOut]


# Euro-backed local currency.


class CurrencyIn(Request):
    reconversion_fee_bps: BasisPoints = Field(
        description="The association's fee on reconversion to euros, per 10,000, rounded down."
    )
    offices: Annotated[list[uuid.UUID], Field(max_length=50)] = Field(
        default_factory=list, description="Organizations that issue the currency against euros."
    )


class CurrencyOut(BaseModel):
    unit: str
    issuance_account: uuid.UUID
    fee_account: uuid.UUID
    reconversion_fee_bps: int
    reserve: int = Field(description="Euro cents held against the currency.")
    fees: int = Field(description="Euro cents the association took as reconversion fees.")
    circulation: int = Field(description="Currency issued and not reconverted: reserve + fees.")
    offices: list[uuid.UUID]


class IssuanceIn(Request):
    id: uuid.UUID = Field(description="The transaction's id, chosen by the client.")
    office: uuid.UUID = Field(description="The exchange office that received the euros.")
    to: uuid.UUID = Field(description="The account credited.")
    amount: Amount = Field(description="Euro cents received, issued one for one.")


class ReconversionIn(Request):
    id: uuid.UUID = Field(description="The transaction's id, chosen by the client.")
    from_: uuid.UUID = Field(alias="from", description="The business's account.")
    amount: Amount


class MovementOut(BaseModel):
    transaction: uuid.UUID
    euros: int = Field(description="Euro cents received (issuance) or to pay (reconversion).")
    fee: int
    reserve: int


class LimitDefaultsIn(Request):
    unit: UnitCode
    kind: Literal["member", "organization", "pool"]
    min_balance: MinBalance
    max_balance: MaxBalance


class LimitDefaultsOut(BaseModel):
    unit: str
    kind: str
    min_balance: int
    max_balance: int


class LimitDefaultsList(BaseModel):
    items: list[LimitDefaultsOut]


class OverflowIn(Request):
    unit: UnitCode
    pool: uuid.UUID | None = Field(
        description="The pool that takes what is above a payee's maximum; null: refuse again."
    )


class OverflowOut(BaseModel):
    unit: str
    account: uuid.UUID


class OverflowList(BaseModel):
    items: list[OverflowOut]
