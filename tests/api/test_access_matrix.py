"""Who may call what: every endpoint of the API against every kind of caller.

One table says, for each request, what each caller must get: people in each role
(operator, admin, treasurer, members, an organization's agent), API clients with
various scopes, a revoked client, someone and something of another community, no
token and a bad token. Rows nobody wrote fall back to the two rules that hold for
every endpoint: without a valid token, 401 unauthenticated; from outside the
community, 403 forbidden on a community-addressed path and 404 not_found on an
id-addressed one, so that nothing of another community leaks.

Two communities, their people and clients are built once for the module (logins
hash passwords, which is slow); each row that changes something (confirming,
voiding, reversing, revoking, deleting) gets a fresh object of its own, so the
rows run in any order and alone."""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.api.world import GREEN, HOURS, Person, World, build_world, expect
from timebank.api.contract import Operation
from timebank.api.problems import PROBLEM_CONTENT_TYPE
from timebank.api.registry import api as contract
from timebank.app import create_app
from timebank.auth.access import Scope
from timebank.keys import LEDGER
from timebank.log.note import Verifier, format_verifier_key
from timebank.settings import Settings

ApiClient = TestClient[web.Request, web.Application]

# Callers. People of the community "here": `bob` is the agent of its organization,
# `alice` of none. `stranger` is the admin of the community "elsewhere".
PEOPLE = ("operator", "admin", "treasurer", "alice", "bob", "stranger")
# Clients of "here": `full` acts for the community with every scope; `agency` for
# the organization, reading and writing; `directory` may only read the directory.
# `foreign` is a client of "elsewhere" with every scope; `revoked` was revoked after
# its token was issued.
CLIENTS = ("full", "agency", "directory", "foreign", "revoked")
ANONYMOUS = ("anonymous", "bad_token")
CALLERS = frozenset(PEOPLE + CLIENTS + ANONYMOUS)
# Whoever has nothing to do with the community "here".
OUTSIDERS = ("stranger", "foreign", "revoked")

EDGE_CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
PLACEHOLDER = re.compile(r"\{(\w+)\}")
WEBHOOK_URL = "https://hooks.example.org/timebank"


@dataclass(frozen=True)
class Call:
    """One request; `{name}` in its path or body is filled from the scene, a fresh
    object for names the scene makes (see Scene.make).

    `addressed` says how the request names its community: "community" by slug (in
    the path or the body), "id" by the id of one of its objects, "" by neither."""

    method: str
    path: str
    body: Any = None
    addressed: str = ""
    public: bool = False


def transfer(payer: str, payee: str, community: str = "{slug}", **extra: Any) -> dict[str, Any]:
    return {
        "id": "{new_id}",
        "community": community,
        "unit": HOURS,
        "from": "{" + payer + "}",
        "to": "{" + payee + "}",
        "amount": 1,
        **extra,
    }


C = "/v1/communities/{slug}"


def new_public_key() -> str:
    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


POOL_CHARTER = {
    "purpose": "Hours for who cannot give back yet",
    "managers": ["{alice_party}"],
    "approvals_required": 1,
    "units": [{"unit": HOURS, "grant_max": 60, "beneficiary_period_max": 600}],
}
EVERY_MEMBER = "admin treasurer alice bob full agency directory"
# A daily donation from alice to the pool, starting far ahead: it never runs here.
SCHEDULE = {
    "kind": "recurring_donation",
    "unit": HOURS,
    "period": "day",
    "starts_on": "2099-01-01",
    "amount": 1,
    "source": "{alice_hours}",
    "target": "{pool_account}",
}

CALLS: dict[str, Call] = {
    # Communities and their administration.
    "create_community": Call(
        "POST", "/v1/communities", {"slug": "{new_slug}", "name": "Another town"}
    ),
    "read_community": Call("GET", C, addressed="community"),
    "set_policy": Call("PATCH", C, {"signatures": "optional"}, addressed="community"),
    # Device keys.
    "register_key": Call(
        "POST",
        "/v1/me/keys",
        {"community": "{slug}", "algorithm": "ed25519", "public_key": "{new_public_key}"},
        addressed="community",
    ),
    "list_my_keys": Call("GET", "/v1/me/keys"),
    "list_community_keys": Call("GET", f"{C}/keys", addressed="community"),
    "revoke_alice_key": Call("DELETE", f"{C}/keys/{{alice_key}}", addressed="community"),
    "add_unit": Call(
        "POST",
        f"{C}/units",
        {"code": "{new_code}", "name": "Tokens", "kind": "currency", "default_max_balance": 100},
        addressed="community",
    ),
    "add_member": Call(
        "POST",
        f"{C}/members",
        {"email": "{new_email}", "display_name": "Newcomer", "role": "member"},
        addressed="community",
    ),
    "read_directory": Call("GET", f"{C}/members", addressed="community"),
    "invite": Call(
        "POST",
        f"{C}/invitations",
        {"email": "{new_email}", "display_name": "Invited", "role": "member"},
        addressed="community",
    ),
    "list_invitations": Call("GET", f"{C}/invitations", addressed="community"),
    "revoke_invitation": Call("DELETE", f"{C}/invitations/{{invitation}}", addressed="community"),
    "revoke_elsewhere_invitation": Call("DELETE", f"{C}/invitations/{{elsewhere_invitation}}"),
    "add_organization": Call(
        "POST", f"{C}/organizations", {"name": "Bakery", "kind": "business"}, addressed="community"
    ),
    "read_organizations": Call("GET", f"{C}/organizations", addressed="community"),
    "name_agent": Call(
        "POST",
        f"{C}/organizations/{{spare_organization}}/agents",
        {"member": "{alice_party}"},
        addressed="community",
    ),
    "name_agent_of_elsewhere_organization": Call(
        "POST",
        f"{C}/organizations/{{elsewhere_organization}}/agents",
        {"member": "{alice_party}"},
    ),
    "name_elsewhere_member_agent": Call(
        "POST",
        f"{C}/organizations/{{spare_organization}}/agents",
        {"member": "{elsewhere_party}"},
    ),
    "create_client": Call(
        "POST",
        f"{C}/clients",
        {"name": "Integration", "scopes": ["accounts:read"]},
        addressed="community",
    ),
    "create_client_for_elsewhere_organization": Call(
        "POST",
        f"{C}/clients",
        {
            "name": "Integration",
            "organization": "{elsewhere_organization}",
            "scopes": ["accounts:read"],
        },
    ),
    "list_clients": Call("GET", f"{C}/clients", addressed="community"),
    "revoke_client": Call("DELETE", f"{C}/clients/{{client}}", addressed="community"),
    "revoke_elsewhere_client": Call("DELETE", f"{C}/clients/{{elsewhere_client}}"),
    # Accounts.
    "read_alice_account": Call("GET", "/v1/accounts/{alice_hours}", addressed="id"),
    "read_alice_statement": Call("GET", "/v1/accounts/{alice_hours}/entries", addressed="id"),
    "export_alice_statement": Call("GET", "/v1/accounts/{alice_hours}/entries.csv", addressed="id"),
    "read_organization_account": Call("GET", "/v1/accounts/{organization_hours}", addressed="id"),
    "read_organization_statement": Call(
        "GET", "/v1/accounts/{organization_hours}/entries", addressed="id"
    ),
    "read_community_account": Call("GET", "/v1/accounts/{community_hours}", addressed="id"),
    "limit_alice_account": Call(
        "PATCH", "/v1/accounts/{alice_hours}", {"max_balance": 6000}, addressed="id"
    ),
    "read_elsewhere_account": Call("GET", "/v1/accounts/{elsewhere_hours}"),
    "read_alice_account_owner": Call(
        "GET", f"{C}/accounts/{{alice_hours}}/owner", addressed="community"
    ),
    "read_organization_account_owner": Call(
        "GET", f"{C}/accounts/{{organization_hours}}/owner", addressed="community"
    ),
    "read_elsewhere_account_owner": Call("GET", f"{C}/accounts/{{elsewhere_hours}}/owner"),
    "read_elsewhere_statement": Call("GET", "/v1/accounts/{elsewhere_hours}/entries"),
    "limit_elsewhere_account": Call(
        "PATCH", "/v1/accounts/{elsewhere_hours}", {"max_balance": 6000}
    ),
    # Writing transactions.
    "pay_from_alice": Call(
        "POST", "/v1/transactions", transfer("alice_hours", "bob_hours"), addressed="community"
    ),
    "pay_from_organization": Call(
        "POST",
        "/v1/transactions",
        transfer("organization_hours", "alice_hours"),
        addressed="community",
    ),
    "pay_from_community": Call(
        "POST",
        "/v1/transactions",
        transfer("community_hours", "alice_hours"),
        addressed="community",
    ),
    "pay_from_treasurer": Call(
        "POST",
        "/v1/transactions",
        transfer("treasurer_hours", "alice_hours"),
        addressed="community",
    ),
    "propose_alice_pays": Call(
        "POST",
        "/v1/transactions",
        transfer("alice_hours", "bob_hours", pending=True),
        addressed="community",
    ),
    "propose_organization_pays": Call(
        "POST",
        "/v1/transactions",
        transfer("organization_hours", "alice_hours", pending=True),
        addressed="community",
    ),
    "pay_across_communities": Call(
        "POST", "/v1/transactions", transfer("alice_hours", "elsewhere_hours")
    ),
    "pay_elsewhere_from_here": Call(
        "POST",
        "/v1/transactions",
        transfer("alice_hours", "elsewhere_admin_hours", community="{elsewhere_slug}"),
    ),
    "propose_elsewhere_from_here": Call(
        "POST",
        "/v1/transactions",
        transfer(
            "alice_hours", "elsewhere_admin_hours", community="{elsewhere_slug}", pending=True
        ),
    ),
    "batch_from_alice": Call(
        "POST",
        "/v1/transactions/batch",
        {"atomic": True, "transactions": [transfer("alice_hours", "bob_hours")]},
        addressed="community",
    ),
    # Reading, confirming, voiding and reversing one.
    "read_posted": Call("GET", "/v1/transactions/{posted}", addressed="id"),
    "read_receipt": Call("GET", "/v1/transactions/{posted}/receipt", addressed="id"),
    "read_posted_naming_community": Call(
        "GET", "/v1/transactions/{posted}?community={slug}", addressed="id"
    ),
    "read_others_transaction": Call("GET", "/v1/transactions/{posted_by_treasurer}"),
    "read_organization_transaction": Call("GET", "/v1/transactions/{posted_by_organization}"),
    "read_elsewhere_transaction": Call("GET", "/v1/transactions/{elsewhere_posted}"),
    "read_elsewhere_transaction_naming_community": Call(
        "GET", "/v1/transactions/{elsewhere_posted}?community={elsewhere_slug}"
    ),
    "read_elsewhere_transaction_naming_here": Call(
        "GET", "/v1/transactions/{elsewhere_posted}?community={slug}"
    ),
    "confirm_alice_pays": Call("POST", "/v1/transactions/{pending}/confirm", addressed="id"),
    "confirm_alice_pays_naming_community": Call(
        "POST", "/v1/transactions/{pending}/confirm?community={slug}", addressed="id"
    ),
    "confirm_organization_pays": Call("POST", "/v1/transactions/{pending_organization}/confirm"),
    "confirm_elsewhere": Call("POST", "/v1/transactions/{elsewhere_pending}/confirm"),
    "void_alice_pays": Call("POST", "/v1/transactions/{pending}/void", addressed="id"),
    "void_alice_pays_naming_community": Call(
        "POST", "/v1/transactions/{pending}/void?community={slug}", addressed="id"
    ),
    "void_elsewhere": Call("POST", "/v1/transactions/{elsewhere_pending}/void"),
    "reverse_posted": Call(
        "POST", "/v1/transactions/{posted}/reverse", {"memo": "correction"}, addressed="id"
    ),
    "reverse_posted_naming_community": Call(
        "POST",
        "/v1/transactions/{posted}/reverse?community={slug}",
        {"memo": "correction"},
        addressed="id",
    ),
    "reverse_elsewhere": Call("POST", "/v1/transactions/{elsewhere_posted}/reverse", {}),
    # Audit.
    "journal": Call("GET", f"{C}/transactions", addressed="community"),
    "trial_balance": Call("GET", f"{C}/trial-balance", addressed="community"),
    "flows": Call("GET", f"{C}/flows", addressed="community"),
    "flows_over_time": Call("GET", f"{C}/flows/over-time", addressed="community"),
    "near_limits": Call("GET", f"{C}/accounts/near-limits", addressed="community"),
    "inactive_members": Call("GET", f"{C}/members/inactive", addressed="community"),
    "export_journal": Call("GET", f"{C}/transactions.csv", addressed="community"),
    # The log.
    "log_checkpoint": Call("GET", f"{C}/log/checkpoint", addressed="community"),
    "sign_checkpoint": Call("POST", f"{C}/log/checkpoints", addressed="community"),
    "log_entries": Call("GET", f"{C}/log/entries?start=0&end=2", addressed="community"),
    "log_inclusion": Call("GET", f"{C}/log/proofs/inclusion?index=0&size=1", addressed="community"),
    "log_consistency": Call(
        "GET", f"{C}/log/proofs/consistency?first=1&second=1", addressed="community"
    ),
    "log_keys": Call("GET", f"{C}/log/keys", addressed="community"),
    "add_witness": Call(
        "POST", f"{C}/log/witnesses", {"vkey": "{new_witness_key}"}, addressed="community"
    ),
    "list_witnesses": Call("GET", f"{C}/log/witnesses", addressed="community"),
    # Not a checkpoint of the log: refused as invalid once the caller may hand one in.
    "hand_in_cosignature": Call(
        "POST", f"{C}/log/cosignatures", {"note": "x\n1\nAA==\n"}, addressed="community"
    ),
    "download_bundle": Call("GET", f"{C}/log/bundle", addressed="community"),
    # Solidarity pools: alice manages the pool "pool" (1 of 1), which holds hours.
    "create_pool": Call(
        "POST", f"{C}/pools", {"name": "Fonds", **POOL_CHARTER}, addressed="community"
    ),
    "list_pools": Call("GET", f"{C}/pools", addressed="community"),
    "read_pool": Call("GET", f"{C}/pools/{{pool}}", addressed="community"),
    "set_charter": Call("PUT", f"{C}/pools/{{pool}}/charter", POOL_CHARTER, addressed="community"),
    "donate_from_alice": Call(
        "POST",
        f"{C}/pools/{{pool}}/donations",
        {"id": "{new_id}", "from": "{alice_hours}", "unit": HOURS, "amount": 1},
        addressed="community",
    ),
    "ask_pool": Call(
        "POST",
        f"{C}/pools/{{pool}}/requests",
        {"id": "{new_id}", "unit": HOURS, "amount": 1},
        addressed="community",
    ),
    "list_pool_requests": Call("GET", f"{C}/pools/{{pool}}/requests", addressed="community"),
    "decline_bob_request": Call(
        "POST",
        f"{C}/pools/{{pool}}/requests/{{bob_request}}/decisions",
        {"decision": "decline"},
        addressed="community",
    ),
    "withdraw_bob_request": Call(
        "POST", f"{C}/pools/{{pool}}/requests/{{bob_request}}/withdraw", addressed="community"
    ),
    "grant_to_bob": Call(
        "POST",
        f"{C}/pools/{{pool}}/grants",
        {"id": "{new_id}", "to": "{bob_party}", "unit": HOURS, "amount": 1},
        addressed="community",
    ),
    "refer_bob": Call(
        "POST", f"{C}/pools/{{pool}}/referrals", {"member": "{bob_party}"}, addressed="community"
    ),
    "pool_statement": Call(
        "GET", f"{C}/pools/{{pool}}/statement?unit={HOURS}", addressed="community"
    ),
    "list_levies": Call("GET", f"{C}/policies/levies", addressed="community"),
    "list_overflows": Call("GET", f"{C}/policies/overflow", addressed="community"),
    "set_overflow": Call(
        "PUT", f"{C}/policies/overflow", {"unit": HOURS, "pool": None}, addressed="community"
    ),
    "set_levy": Call(
        "PUT",
        f"{C}/policies/levies",
        {"unit": HOURS, "pool": "{pool}", "rate_bps": 0},
        addressed="community",
    ),
    # Periodic policies.
    "create_schedule": Call("POST", f"{C}/policies/schedules", SCHEDULE, addressed="community"),
    "list_schedules": Call("GET", f"{C}/policies/schedules", addressed="community"),
    "retire_schedule": Call(
        "DELETE", f"{C}/policies/schedules/{{schedule}}", addressed="community"
    ),
    "list_schedule_runs": Call(
        "GET", f"{C}/policies/schedules/{{schedule}}/runs", addressed="community"
    ),
    "run_policies": Call("POST", f"{C}/policies/runs", addressed="community"),
    "list_dues": Call("GET", f"{C}/policies/dues", addressed="community"),
    "list_limit_defaults": Call("GET", f"{C}/policies/limits", addressed="community"),
    "set_limit_defaults": Call(
        "PUT",
        f"{C}/policies/limits",
        {"unit": HOURS, "kind": "organization", "min_balance": -600, "max_balance": 6000},
        addressed="community",
    ),
    # Euro-backed currency: GREEN, issued by the organization (bob is its agent),
    # reconverted by a business whose agent is alice.
    "set_up_currency": Call(
        "PUT",
        f"{C}/currencies/{GREEN}",
        {"reconversion_fee_bps": 100, "offices": ["{organization}"]},
        addressed="community",
    ),
    "read_currency": Call("GET", f"{C}/currencies/{GREEN}", addressed="community"),
    "issue_currency": Call(
        "POST",
        f"{C}/currencies/{GREEN}/issuances",
        {"id": "{new_id}", "office": "{organization}", "to": "{alice_green}", "amount": 1},
        addressed="community",
    ),
    "reconvert_currency": Call(
        "POST",
        f"{C}/currencies/{GREEN}/reconversions",
        {"id": "{new_id}", "from": "{business_green}", "amount": 1},
        addressed="community",
    ),
    # Webhooks.
    "subscribe": Call(
        "POST",
        f"{C}/webhooks",
        {"url": WEBHOOK_URL, "events": ["transaction.expired"]},
        addressed="community",
    ),
    "list_subscriptions": Call("GET", f"{C}/webhooks", addressed="community"),
    "unsubscribe": Call("DELETE", f"{C}/webhooks/{{webhook}}", addressed="community"),
    "read_deliveries": Call("GET", f"{C}/webhooks/{{webhook}}/deliveries", addressed="community"),
    "unsubscribe_elsewhere": Call("DELETE", f"{C}/webhooks/{{elsewhere_webhook}}"),
    "read_elsewhere_deliveries": Call("GET", f"{C}/webhooks/{{elsewhere_webhook}}/deliveries"),
    # Oneself, and what needs no token.
    "me": Call("GET", "/v1/me"),
    "client_token": Call(
        "POST",
        "/v1/auth/token",
        {
            "grant_type": "client_credentials",
            "client_id": "{full_client_id}",
            "client_secret": "{full_client_secret}",
        },
        public=True,
    ),
    "client_token_with_wrong_secret": Call(
        "POST",
        "/v1/auth/token",
        {
            "grant_type": "client_credentials",
            "client_id": "{full_client_id}",
            "client_secret": "not the secret",
        },
        public=True,
    ),
    "revoked_client_token": Call(
        "POST",
        "/v1/auth/token",
        {
            "grant_type": "client_credentials",
            "client_id": "{revoked_client_id}",
            "client_secret": "{revoked_client_secret}",
        },
        public=True,
    ),
    "logout": Call("POST", "/v1/auth/logout", {"refresh_token": "unknown"}, public=True),
    "accept_unknown_invitation": Call(
        "POST",
        "/v1/invitations/accept",
        {"token": "not-a-token", "password": "a long enough password"},
        public=True,
    ),
    "jwks": Call("GET", "/.well-known/jwks.json", public=True),
    "metrics": Call("GET", "/metrics", public=True),
    "live": Call("GET", "/health/live", public=True),
    "ready": Call("GET", "/health/ready", public=True),
    "openapi": Call("GET", "/v1/openapi.json", public=True),
    "docs": Call("GET", "/v1/docs", public=True),
}

# Per request, who gets which answer: a status (errors with their edge code: 401
# unauthenticated, 403 forbidden, 404 not_found), or (status, code) for another error.
Expected = int | tuple[int, str]
MATRIX: dict[str, dict[Expected, str]] = {
    "create_community": {201: "operator", 403: "admin treasurer alice full stranger"},
    "read_community": {200: "operator admin treasurer alice bob full agency directory"},
    "set_policy": {200: "admin", 403: "operator treasurer alice full"},
    # Keys: members and clients hold keys; an operator is no member.
    "register_key": {201: "admin treasurer alice bob full agency directory", 403: "operator"},
    "list_my_keys": {200: "operator admin alice stranger full foreign revoked"},
    "list_community_keys": {200: "admin treasurer alice full agency directory", 403: "operator"},
    "revoke_alice_key": {204: "alice admin", 403: "bob treasurer operator full"},
    # Units, members, organizations and clients: admins, and operators anywhere.
    "add_unit": {201: "operator admin", 403: "treasurer alice full"},
    "add_member": {201: "operator admin", 403: "treasurer alice full"},
    "invite": {201: "operator admin", 403: "treasurer alice full"},
    "list_invitations": {200: "operator admin", 403: "treasurer alice full"},
    "revoke_invitation": {204: "operator admin", 403: "treasurer alice full"},
    "revoke_elsewhere_invitation": {404: "admin operator"},
    "read_directory": {200: "operator admin treasurer alice directory full", 403: "agency"},
    "add_organization": {201: "operator admin", 403: "treasurer alice full"},
    "read_organizations": {200: "operator admin treasurer alice directory", 403: "agency"},
    # Nobody names themselves an agent; nor an agent of another organization.
    "name_agent": {200: "operator admin", 403: "treasurer alice bob full"},
    "name_agent_of_elsewhere_organization": {404: "admin operator"},
    "name_elsewhere_member_agent": {404: "admin operator"},
    "create_client": {201: "operator admin", 403: "treasurer alice full"},
    "create_client_for_elsewhere_organization": {404: "admin operator"},
    "list_clients": {200: "operator admin", 403: "treasurer alice full"},
    "revoke_client": {204: "operator admin", 403: "treasurer alice full"},
    "revoke_elsewhere_client": {404: "admin operator"},
    # Accounts: one's own, one's organization's; everything for treasurers, admins
    # and auditing clients; an operator is no member and reads none.
    "read_alice_account": {200: "alice treasurer admin full", 403: "bob operator agency directory"},
    "read_alice_statement": {
        200: "alice treasurer admin full",
        403: "bob operator agency directory",
    },
    "export_alice_statement": {
        200: "alice treasurer admin full",
        403: "bob operator agency directory",
    },
    "read_organization_account": {200: "bob agency treasurer", 403: "alice operator directory"},
    "read_organization_statement": {200: "bob agency treasurer", 403: "alice operator directory"},
    "read_community_account": {200: "admin treasurer full", 403: "alice operator agency"},
    # Limits and status: admins only (an operator's management stops at units,
    # members, organizations and clients, and the answer is the account itself).
    "limit_alice_account": {200: "admin", 403: "operator treasurer alice full agency"},
    "read_elsewhere_account": {404: "admin treasurer alice full agency directory"},
    # Who holds an account: the directory's readers, by the community's slug.
    "read_alice_account_owner": {
        200: "operator admin treasurer alice bob directory full",
        403: "agency",
    },
    "read_organization_account_owner": {200: "alice bob directory"},
    "read_elsewhere_account_owner": {404: "admin treasurer alice full directory"},
    "read_elsewhere_statement": {404: "admin treasurer alice full"},
    "limit_elsewhere_account": {404: "admin"},
    # Posting needs control of every debited account: one's own, one's
    # organization's as its agent, the community's as its admin.
    "pay_from_alice": {201: "alice", 403: "bob treasurer admin operator full agency directory"},
    "pay_from_organization": {201: "bob agency", 403: "alice treasurer admin full"},
    "pay_from_community": {201: "admin full", 403: "treasurer operator alice directory agency"},
    "pay_from_treasurer": {201: "treasurer", 403: "admin alice"},
    # A pending one may be proposed by either party, by nobody else.
    "propose_alice_pays": {201: "bob alice", 403: "treasurer admin operator full agency"},
    "propose_organization_pays": {201: "alice bob agency", 403: "treasurer admin"},
    # Value never crosses communities: the other community knows no such account.
    "pay_across_communities": {(422, "unknown_account"): "alice"},
    "pay_elsewhere_from_here": {(422, "unknown_account"): "stranger", 403: "alice"},
    "propose_elsewhere_from_here": {(422, "unknown_account"): "stranger", 403: "alice"},
    "batch_from_alice": {201: "alice", 403: "bob treasurer admin full"},
    # Parties read their transactions; treasurers, admins and auditing clients all.
    "read_posted": {
        200: "alice bob treasurer admin full",
        404: "operator",
        403: "agency directory",
    },
    "read_receipt": {
        200: "alice bob treasurer admin full",
        404: "operator",
        403: "agency directory",
    },
    "read_posted_naming_community": {200: "alice", 403: "operator"},
    "read_others_transaction": {403: "alice bob", 200: "treasurer admin full"},
    "read_organization_transaction": {200: "bob agency alice", 403: "directory"},
    "read_elsewhere_transaction": {
        404: "admin treasurer alice full agency",
        200: "stranger foreign",
    },
    "read_elsewhere_transaction_naming_community": {404: "admin alice", 200: "stranger"},
    "read_elsewhere_transaction_naming_here": {404: "admin treasurer"},
    # Only the payer confirms; either party or an admin voids; admins reverse.
    "confirm_alice_pays": {200: "alice", 403: "bob treasurer admin full agency", 404: "operator"},
    "confirm_alice_pays_naming_community": {403: "operator bob", 200: "alice"},
    "confirm_organization_pays": {200: "bob agency", 403: "alice admin"},
    "confirm_elsewhere": {404: "admin alice"},
    "void_alice_pays": {200: "alice bob admin", 403: "treasurer full agency", 404: "operator"},
    "void_alice_pays_naming_community": {403: "operator treasurer", 200: "admin"},
    "void_elsewhere": {404: "admin alice"},
    "reverse_posted": {201: "admin", 403: "alice bob treasurer full agency", 404: "operator"},
    "reverse_posted_naming_community": {201: "admin", 403: "operator treasurer"},
    "reverse_elsewhere": {404: "admin"},
    # The whole ledger: treasurers, admins and clients with audit:read.
    "journal": {200: "treasurer admin full", 403: "alice bob operator agency directory"},
    "trial_balance": {200: "treasurer admin full", 403: "alice bob operator agency directory"},
    "flows": {200: "treasurer admin full", 403: "alice bob operator agency directory"},
    "flows_over_time": {200: "treasurer admin full", 403: "alice bob operator agency directory"},
    "near_limits": {200: "treasurer admin full", 403: "alice bob operator agency directory"},
    "inactive_members": {
        200: "treasurer admin full",
        403: "alice bob operator agency directory",
    },
    "export_journal": {200: "treasurer admin full", 403: "alice bob operator agency directory"},
    # The log holds no personal data: every member reads it, and clients with
    # audit:read; operators are not members.
    **{
        name: {200: "admin treasurer alice bob full", 403: "operator agency directory"}
        for name in (
            "log_checkpoint",
            "sign_checkpoint",
            "log_entries",
            "log_inclusion",
            "log_consistency",
            "log_keys",
        )
    },
    "add_witness": {201: "admin", 403: "operator treasurer alice full"},
    "list_witnesses": {200: "admin treasurer alice bob full", 403: "operator agency directory"},
    "hand_in_cosignature": {
        (422, "validation_error"): "admin treasurer alice full",
        403: "operator agency directory",
    },
    "download_bundle": {200: "treasurer admin full", 403: "alice bob operator agency directory"},
    # Pools: admins set them up; every member and client of the community reads
    # them; members give from their own accounts, ask in their own name, and the
    # pool's managers decide and grant; a referral is its referrers' or an admin's.
    "create_pool": {201: "admin", 403: "operator treasurer alice full"},
    "list_pools": {200: EVERY_MEMBER, 403: "operator"},
    "read_pool": {200: EVERY_MEMBER, 403: "operator"},
    "set_charter": {200: "admin", 403: "operator treasurer alice full"},
    "donate_from_alice": {201: "alice", 403: "bob admin treasurer operator full agency"},
    "ask_pool": {201: "admin treasurer alice bob", 403: "operator full agency directory"},
    "list_pool_requests": {
        200: "admin treasurer alice bob full",
        403: "operator agency directory",
    },
    "decline_bob_request": {200: "alice", 403: "bob admin treasurer operator full"},
    "withdraw_bob_request": {200: "bob", 403: "alice admin operator full"},
    "grant_to_bob": {201: "alice", 403: "bob admin treasurer operator full"},
    "refer_bob": {204: "admin", 403: "alice bob treasurer operator full"},
    "pool_statement": {200: EVERY_MEMBER, 403: "operator"},
    "list_levies": {200: EVERY_MEMBER, 403: "operator"},
    "list_overflows": {200: EVERY_MEMBER, 403: "operator"},
    "set_overflow": {200: "admin", 403: "operator treasurer alice full"},
    "set_levy": {200: "admin", 403: "operator treasurer alice full"},
    # Periodic policies: admins put them in force and run them; members read them
    # and their own dues; treasurers, admins and auditing clients everyone's.
    "create_schedule": {201: "admin", 403: "operator treasurer alice full"},
    "list_schedules": {200: EVERY_MEMBER, 403: "operator"},
    "retire_schedule": {200: "admin", 403: "operator treasurer alice full"},
    "list_schedule_runs": {200: EVERY_MEMBER, 403: "operator"},
    "run_policies": {200: "admin", 403: "operator treasurer alice full"},
    "list_dues": {200: "admin treasurer alice bob full", 403: "operator agency directory"},
    "list_limit_defaults": {200: EVERY_MEMBER, 403: "operator"},
    "set_limit_defaults": {200: "admin", 403: "operator treasurer alice full"},
    # Currency: admins back it; everyone of the community sees its reserve; the
    # office's agents (and its client) issue; the business's agents reconvert.
    "set_up_currency": {200: "admin", 403: "operator treasurer alice full"},
    "read_currency": {200: EVERY_MEMBER, 403: "operator"},
    "issue_currency": {201: "bob agency", 403: "alice admin treasurer operator full"},
    "reconvert_currency": {201: "alice", 403: "bob admin treasurer operator full agency"},
    # Webhooks: admins and clients with webhooks:manage (not operators: the
    # deliveries carry the members' transactions).
    "subscribe": {201: "admin full", 403: "operator treasurer alice directory agency"},
    "list_subscriptions": {200: "admin full", 403: "operator treasurer alice directory"},
    "unsubscribe": {204: "admin full", 403: "operator treasurer alice agency"},
    "read_deliveries": {200: "admin full", 403: "operator treasurer alice"},
    "unsubscribe_elsewhere": {404: "admin full"},
    "read_elsewhere_deliveries": {404: "admin full"},
    "me": {200: "alice operator stranger", 403: "full agency foreign revoked"},
    # No token needed.
    "client_token": {200: "anonymous"},
    "client_token_with_wrong_secret": {401: "anonymous"},
    "revoked_client_token": {401: "anonymous"},
    "logout": {204: "anonymous"},
    "accept_unknown_invitation": {(422, "invitation_invalid"): "anonymous"},
    "jwks": {200: "anonymous"},
    "metrics": {200: "anonymous"},
    "live": {200: "anonymous"},
    "ready": {200: "anonymous"},
    "openapi": {200: "anonymous"},
    "docs": {200: "anonymous"},
}


def endpoint(call: Call) -> str:
    return f"{call.method} {PLACEHOLDER.sub('{}', call.path.split('?')[0])}"


def with_defaults(name: str, call: Call, *, first_of_endpoint: bool) -> dict[str, Expected]:
    """A row completed by the rules that hold everywhere: no valid token, 401 (once
    per endpoint); from outside the community, 403 by slug and 404 by id."""
    row: dict[str, Expected] = {}
    if not call.public and first_of_endpoint:
        row.update(dict.fromkeys(ANONYMOUS, 401))
    if call.addressed:
        row.update(dict.fromkeys(OUTSIDERS, 403 if call.addressed == "community" else 404))
    for expected, callers in MATRIX[name].items():
        assert CALLERS.issuperset(callers.split()), f"{name}: unknown caller in {callers!r}"
        row.update(dict.fromkeys(callers.split(), expected))
    return row


def cases() -> list[Any]:
    endpoints: set[str] = set()
    params = []
    for name, call in CALLS.items():
        first_of_endpoint = endpoint(call) not in endpoints
        endpoints.add(endpoint(call))
        row = with_defaults(name, call, first_of_endpoint=first_of_endpoint)
        params += [
            pytest.param(name, who, expected, id=f"{name}-by-{who}")
            for who, expected in row.items()
        ]
    return params


def describe_expected(expected: Expected) -> str:
    status, code = expected if isinstance(expected, tuple) else (expected, EDGE_CODES.get(expected))
    return str(status) if status < 400 else f"{status} {code}"


async def describe_answer(response: ClientResponse) -> str:
    """The status, and for an error its problem code, and what is wrong with its form."""
    text = await response.text()
    if response.status < 400:
        return str(response.status)
    body = await response.json(content_type=None) if text else {}
    words = [str(response.status), str(body.get("code"))]
    if response.content_type != PROBLEM_CONTENT_TYPE:
        words.append(f"as {response.content_type}")
    if response.status == 401 and "WWW-Authenticate" not in response.headers:
        words.append("without WWW-Authenticate")
    return " ".join(words)


@dataclass
class Scene:
    """Two communities, "here" and "elsewhere", their people and API clients."""

    api: ApiClient
    here: World
    elsewhere: World
    headers: dict[str, dict[str, str]]
    fixed: dict[str, str]

    async def fill(self, template: Any) -> Any:
        """The template with every {name} replaced, in strings, lists and objects."""
        if isinstance(template, str):
            pieces, position = [], 0
            for match in PLACEHOLDER.finditer(template):
                pieces += [template[position : match.start()], await self.value(match[1])]
                position = match.end()
            return "".join([*pieces, template[position:]])
        if isinstance(template, list):
            return [await self.fill(item) for item in template]
        if isinstance(template, dict):
            return {key: await self.fill(item) for key, item in template.items()}
        return template

    async def value(self, name: str) -> str:
        return self.fixed[name] if name in self.fixed else await self.make(name)

    async def make(self, name: str) -> str:
        """A fresh value or object, so that a row that spends it spends its own."""
        here, elsewhere = self.here, self.elsewhere
        match name:
            case "new_id":
                return str(uuid.uuid4())
            case "new_slug":
                return f"n-{secrets.token_hex(4)}"
            case "new_code":
                return f"T{secrets.token_hex(4)}"
            case "new_email":
                return f"new-{secrets.token_hex(4)}@example.org"
            case "new_public_key":
                return new_public_key()
            case "new_witness_key":
                return format_verifier_key(
                    Verifier.from_public_key(
                        f"witness-{secrets.token_hex(4)}",
                        Ed25519PrivateKey.generate().public_key(),
                    )
                )
            case "alice_key":
                body = await expect(
                    await self.api.post(
                        "/v1/me/keys",
                        json={
                            "community": here.slug,
                            "algorithm": "ed25519",
                            "public_key": new_public_key(),
                        },
                        headers=here.alice.auth,
                    ),
                    201,
                )
                return str(body["key_id"])
            case "client":
                return (await new_client(self.api, here, ["members:read"]))[0]
            case "invitation":
                return await new_invitation(self.api, here)
            case "elsewhere_invitation":
                return await new_invitation(self.api, elsewhere)
            case "webhook":
                return await new_webhook(self.api, here)
            case "schedule":
                created = await expect(
                    await self.api.post(
                        f"/v1/communities/{here.slug}/policies/schedules",
                        json=await self.fill(SCHEDULE),
                        headers=here.admin.auth,
                    ),
                    201,
                )
                return str(created["id"])
            case "bob_request":
                body = {"id": str(uuid.uuid4()), "unit": HOURS, "amount": 1}
                asked = await expect(
                    await self.api.post(
                        f"/v1/communities/{here.slug}/pools/{self.fixed['pool']}/requests",
                        json=body,
                        headers=here.bob.auth,
                    ),
                    201,
                )
                return str(asked["id"])
            case "posted":
                return await self.post(here, here.alice, "alice_hours", "bob_hours")
            case "posted_by_treasurer":
                return await self.post(here, here.treasurer, "treasurer_hours", "admin_hours")
            case "posted_by_organization":
                return await self.post(here, here.bob, "organization_hours", "alice_hours")
            case "pending":
                return await self.post(here, here.bob, "alice_hours", "bob_hours", pending=True)
            case "pending_organization":
                return await self.post(
                    here, here.alice, "organization_hours", "alice_hours", pending=True
                )
            case "elsewhere_posted":
                return await self.post(
                    elsewhere, elsewhere.alice, "elsewhere_hours", "elsewhere_bob_hours"
                )
            case "elsewhere_pending":
                return await self.post(
                    elsewhere, elsewhere.bob, "elsewhere_hours", "elsewhere_bob_hours", pending=True
                )
        raise AssertionError(f"no value for {{{name}}}")

    async def post(
        self, world: World, by: Person, payer: str, payee: str, *, pending: bool = False
    ) -> str:
        body = await self.fill(transfer(payer, payee, community=world.slug, pending=pending))
        await expect(await self.api.post("/v1/transactions", json=body, headers=by.auth), 201)
        return str(body["id"])

    async def answer(self, who: str, call: Call) -> str:
        response = await self.api.request(
            call.method,
            await self.fill(call.path),
            json=await self.fill(call.body),
            headers=self.headers[who],
        )
        return await describe_answer(response)


async def new_invitation(api: ApiClient, world: World) -> str:
    """A pending invitation of a new person, made by the world's admin: its id."""
    created = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/invitations",
            json={
                "email": f"invited-{secrets.token_hex(4)}@example.org",
                "display_name": "Invited",
            },
            headers=world.admin.auth,
        ),
        201,
    )
    return str(created["invitation"])


async def new_client(
    api: ApiClient, world: World, scopes: list[str], organization: uuid.UUID | None = None
) -> tuple[str, str, str]:
    """A client of the world made by its admin: its id, secret and an access token."""
    created = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/clients",
            json={
                "name": "Integration",
                "scopes": scopes,
                **({"organization": str(organization)} if organization else {}),
            },
            headers=world.admin.auth,
        ),
        201,
    )
    client_id, secret = created["client_id"], created["client_secret"]
    tokens = await expect(
        await api.post(
            "/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        ),
        200,
    )
    return client_id, secret, tokens["access_token"]


async def new_webhook(api: ApiClient, world: World) -> str:
    created = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/webhooks",
            json={"url": WEBHOOK_URL, "events": ["transaction.expired"]},
            headers=world.admin.auth,
        ),
        201,
    )
    return str(created["id"])


async def open_community_account(api: ApiClient, world: World) -> uuid.UUID:
    """The community's own account in hours, from which admins issue. No endpoint
    opens one, so the ledger store does, as the CLI's demo does."""
    community = await expect(
        await api.get(f"/v1/communities/{world.slug}", headers=world.admin.auth), 200
    )
    (hours,) = [unit for unit in community["units"] if unit["code"] == HOURS]
    store = api.app[LEDGER]
    community_id = uuid.UUID(community["id"])
    party = await store.community_party(community_id)
    account = await store.open_account(
        community_id,
        owner_id=party.id,
        unit_id=uuid.UUID(hours["id"]),
        purpose="issuance",
        min_balance=-60_000,
        max_balance=60_000,
    )
    return account.id


async def new_pool(api: ApiClient, world: World) -> tuple[str, str]:
    """A pool managed by alice alone, holding hours given by the admin."""
    charter = {**POOL_CHARTER, "managers": [str(world.alice.party_id)]}
    pool = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/pools",
            json={"name": "Fonds", **charter},
            headers=world.admin.auth,
        ),
        201,
    )
    await expect(
        await api.post(
            f"/v1/communities/{world.slug}/pools/{pool['id']}/donations",
            json={
                "id": str(uuid.uuid4()),
                "from": str(world.admin.accounts[HOURS]),
                "unit": HOURS,
                "amount": 500,
            },
            headers=world.admin.auth,
        ),
        201,
    )
    return str(pool["id"]), str(pool["units"][0]["account"])


async def new_currency(api: ApiClient, world: World) -> str:
    """GREEN backed by euros, issued by the world's organization; a business whose
    agent is alice, holding some: its GREEN account."""
    slug = world.slug
    business = await expect(
        await api.post(
            f"/v1/communities/{slug}/organizations",
            json={"name": "Boulangerie", "kind": "business"},
            headers=world.admin.auth,
        ),
        201,
    )
    await expect(
        await api.post(
            f"/v1/communities/{slug}/organizations/{business['id']}/agents",
            json={"member": str(world.alice.party_id)},
            headers=world.admin.auth,
        ),
        200,
    )
    await expect(
        await api.put(
            f"/v1/communities/{slug}/currencies/{GREEN}",
            json={"reconversion_fee_bps": 100, "offices": [str(world.organization_id)]},
            headers=world.admin.auth,
        ),
        200,
    )
    (green,) = [ref["id"] for ref in business["accounts"] if ref["unit"] == GREEN]
    await expect(
        await api.post(
            f"/v1/communities/{slug}/currencies/{GREEN}/issuances",
            json={
                "id": str(uuid.uuid4()),
                "office": str(world.organization_id),
                "to": green,
                "amount": 10_000,
            },
            headers=world.bob.auth,
        ),
        201,
    )
    return str(green)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def build_scene(api: ApiClient) -> Scene:
    here, elsewhere = await build_world(api), await build_world(api)
    await expect(
        await api.post(
            f"/v1/communities/{here.slug}/organizations/{here.organization_id}/agents",
            json={"member": str(here.bob.party_id)},
            headers=here.admin.auth,
        ),
        200,
    )
    spare = await expect(
        await api.post(
            f"/v1/communities/{here.slug}/organizations",
            json={"name": "Spare", "kind": "association"},
            headers=here.admin.auth,
        ),
        201,
    )
    every_scope = [scope.value for scope in Scope]
    full = await new_client(api, here, every_scope)
    agency = await new_client(
        api,
        here,
        ["accounts:read", "transactions:read", "transactions:write"],
        here.organization_id,
    )
    directory = await new_client(api, here, ["members:read"])
    foreign = await new_client(api, elsewhere, every_scope)
    revoked = await new_client(api, here, every_scope)
    await expect(
        await api.delete(
            f"/v1/communities/{here.slug}/clients/{revoked[0]}", headers=here.admin.auth
        ),
        204,
    )
    people = {
        "operator": here.operator,
        "admin": here.admin,
        "treasurer": here.treasurer,
        "alice": here.alice,
        "bob": here.bob,
        "stranger": elsewhere.admin,
    }
    headers = {name: person.auth for name, person in people.items()}
    clients = {"full": full, "agency": agency, "directory": directory}
    headers |= {name: bearer(client[2]) for name, client in clients.items()}
    headers |= {"foreign": bearer(foreign[2]), "revoked": bearer(revoked[2])}
    headers |= {"anonymous": {}, "bad_token": bearer("not-a-token")}
    fixed = {
        "slug": here.slug,
        "elsewhere_slug": elsewhere.slug,
        "alice_party": str(here.alice.party_id),
        "elsewhere_party": str(elsewhere.alice.party_id),
        "alice_hours": str(here.alice.accounts[HOURS]),
        "bob_hours": str(here.bob.accounts[HOURS]),
        "treasurer_hours": str(here.treasurer.accounts[HOURS]),
        "admin_hours": str(here.admin.accounts[HOURS]),
        "organization_hours": str(here.organization_accounts[HOURS]),
        "community_hours": str(await open_community_account(api, here)),
        "elsewhere_hours": str(elsewhere.alice.accounts[HOURS]),
        "elsewhere_bob_hours": str(elsewhere.bob.accounts[HOURS]),
        "elsewhere_admin_hours": str(elsewhere.admin.accounts[HOURS]),
        "spare_organization": str(spare["id"]),
        "elsewhere_organization": str(elsewhere.organization_id),
        "elsewhere_client": foreign[0],
        "elsewhere_webhook": await new_webhook(api, elsewhere),
        "full_client_id": full[0],
        "full_client_secret": full[1],
        "revoked_client_id": revoked[0],
        "revoked_client_secret": revoked[1],
        "bob_party": str(here.bob.party_id),
        **dict(zip(("pool", "pool_account"), await new_pool(api, here), strict=True)),
        "organization": str(here.organization_id),
        "alice_green": str(here.alice.accounts[GREEN]),
        "business_green": await new_currency(api, here),
    }
    return Scene(api, here, elsewhere, headers, fixed)


@pytest.fixture(scope="module")
async def scene(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Scene]:
    """The service on the session's database, with both communities set up once."""
    data_dir: Path = tmp_path_factory.mktemp("access-matrix")
    async with TestClient(
        TestServer(create_app(settings.model_copy(update={"data_dir": data_dir})))
    ) as api:
        yield await build_scene(api)


def test_the_matrix_covers_every_operation_of_the_api() -> None:
    """Every declared operation has at least one row, so a new endpoint cannot
    ship without its access rules pinned here."""
    expected = sorted(f"{operation.method} {operation.path}" for operation in contract.operations)
    covered = {
        f"{operation.method} {operation.path}"
        for operation in contract.operations
        for call in CALLS.values()
        if call.method == operation.method
        and re.fullmatch(
            re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(operation.path)), call.path.split("?")[0]
        )
    }
    assert expected == sorted(covered)


@pytest.mark.parametrize(("name", "who", "expected"), cases())
async def test_access(scene: Scene, name: str, who: str, expected: Expected) -> None:
    """This caller gets exactly this answer from this request (see the matrix)."""
    call = CALLS[name]
    actual = await scene.answer(who, call)
    assert describe_expected(expected) == actual, f"{who}: {call.method} {call.path}"


@pytest.mark.parametrize(
    "operation",
    [operation for operation in contract.operations if not operation.public],
    ids=lambda operation: f"{operation.method} {operation.path}",
)
async def test_without_a_token_even_a_malformed_request_is_unauthenticated(
    scene: Scene, operation: Operation
) -> None:
    """No token, 401 first: a caller who is nobody learns nothing else, not even
    that the id in the path is no id or that the body is wrong."""
    path = re.sub(r"\{\w+\}", "not-an-id", operation.path.replace("{slug}", "nowhere"))
    body = {"unexpected": True} if operation.body else None
    response = await scene.api.request(operation.method, path, json=body)
    expected = "401 unauthenticated"
    assert expected == await describe_answer(response), f"{operation.method} {path}"


async def test_the_directory_shows_emails_only_to_treasurers_admins_and_oneself(
    scene: Scene,
) -> None:
    """Members see each other's public profile; only treasurers, admins and the
    member themselves see an email; a client with members:read sees none."""
    here = scene.here
    emails = {
        str(person.party_id): person.email
        for person in (here.admin, here.treasurer, here.alice, here.bob)
    }
    expected = {
        "admin": emails,
        "treasurer": emails,
        "alice": {str(here.alice.party_id): here.alice.email},
        "bob": {str(here.bob.party_id): here.bob.email},
        "directory": {},
    }
    actual = {}
    for who in expected:
        page = await expect(
            await scene.api.get(
                f"/v1/communities/{here.slug}/members",
                params={"limit": 100},
                headers=scene.headers[who],
            ),
            200,
        )
        assert emails.keys() <= {item["party_id"] for item in page["items"]}
        actual[who] = {
            item["party_id"]: item["email"]
            for item in page["items"]
            if item["party_id"] in emails and item["email"] is not None
        }
    assert expected == actual


async def test_a_batch_refuses_the_items_the_caller_may_not_write(scene: Scene) -> None:
    """Atomic: one item out of someone else's account refuses the whole batch (403,
    with its index) and writes nothing. Independent: only that item is refused."""
    batch = [transfer("alice_hours", "bob_hours"), transfer("bob_hours", "alice_hours")]
    alice = scene.headers["alice"]
    atomic = await scene.fill({"atomic": True, "transactions": batch})
    refused = await expect(
        await scene.api.post("/v1/transactions/batch", json=atomic, headers=alice), 403
    )
    expected: tuple[Any, ...] = ("forbidden", 1)
    assert expected == (refused["code"], refused["index"])
    first_id = atomic["transactions"][0]["id"]
    await expect(await scene.api.get(f"/v1/transactions/{first_id}", headers=alice), 404)
    independent = await scene.fill({"atomic": False, "transactions": batch})
    answer = await expect(
        await scene.api.post("/v1/transactions/batch", json=independent, headers=alice), 201
    )
    items = [(201, None), (403, "forbidden")]
    assert items == [
        (item["status"], (item["problem"] or {}).get("code")) for item in answer["items"]
    ]


async def test_refusals_across_communities_leave_the_other_one_untouched(scene: Scene) -> None:
    """Revoking the other community's client or deleting its subscription through
    one's own community is 404, and both go on working there."""
    here, fixed = scene.here, scene.fixed
    for path, managers in (
        (f"/v1/communities/{here.slug}/clients/{fixed['elsewhere_client']}", ("admin", "operator")),
        (f"/v1/communities/{here.slug}/webhooks/{fixed['elsewhere_webhook']}", ("admin",)),
    ):
        for who in managers:
            await expect(await scene.api.delete(path, headers=scene.headers[who]), 404)
    elsewhere = f"/v1/communities/{scene.elsewhere.slug}"
    await expect(await scene.api.get(elsewhere, headers=scene.headers["foreign"]), 200)
    subscriptions = await expect(
        await scene.api.get(f"{elsewhere}/webhooks", headers=scene.headers["stranger"]), 200
    )
    assert fixed["elsewhere_webhook"] in {item["id"] for item in subscriptions["items"]}


async def test_a_revoked_client_is_refused_at_once(scene: Scene) -> None:
    """The token it already holds stops working with the revocation (403 forbidden),
    and the token endpoint gives it no new one (401)."""
    here = scene.here
    client_id, secret, token = await new_client(scene.api, here, ["members:read"])
    directory = f"/v1/communities/{here.slug}/members"
    answers = [await describe_answer(await scene.api.get(directory, headers=bearer(token)))]
    await expect(
        await scene.api.delete(
            f"/v1/communities/{here.slug}/clients/{client_id}", headers=here.admin.auth
        ),
        204,
    )
    answers.append(await describe_answer(await scene.api.get(directory, headers=bearer(token))))
    credentials = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
    }
    answers.append(await describe_answer(await scene.api.post("/v1/auth/token", data=credentials)))
    expected = ["200", "403 forbidden", "401 unauthenticated"]
    assert expected == answers
