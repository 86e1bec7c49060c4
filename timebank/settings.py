"""All configuration, read once from the environment and passed down explicitly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Per-user data directory: $XDG_DATA_HOME/timebank, else ~/.local/share/timebank."""
    xdg_data_home = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg_data_home) if xdg_data_home else Path.home() / ".local" / "share"
    return base / "timebank"


class Settings(BaseSettings):
    """Timebank's settings. Environment variables are `TIMEBANK_<NAME>`, except
    `DATABASE_URL`, which is also read under its conventional name."""

    model_config = SettingsConfigDict(
        env_prefix="TIMEBANK_", extra="ignore", frozen=True, populate_by_name=True
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "TIMEBANK_DATABASE_URL"),
        description="PostgreSQL server to use. Unset: start an embedded server in data_dir.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the embedded PostgreSQL keeps its files (postgres/) and the "
        "service its keys (keys/).",
    )
    embedded_database_name: str = Field(
        default="timebank", description="Database created inside the embedded server."
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port the HTTP server listens on.")
    http_idle_timeout_s: float = Field(
        default=75.0,
        gt=0,
        le=3600,
        description="A connection that has not sent a complete request head within this "
        "long of opening, or of its previous answer, is closed: idle keep-alive "
        "connections and clients sending their headers slowly (slowloris). Keep it above "
        "a reverse proxy's own idle timeout.",
    )
    http_body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long a request's body may take to arrive after its head; past "
        "it, 408 request_timeout and the connection is closed.",
    )
    http_connections_max: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Open HTTP connections at most; more are answered 503 at once and "
        "closed. Keep it below the process's open-file limit.",
    )
    database_pool_min_size: int = Field(default=2, ge=1, le=200)
    database_pool_max_size: int = Field(default=20, ge=1, le=200)
    database_command_timeout_s: float = Field(default=30.0, gt=0)
    postgres_bin_dir: Path | None = Field(
        default=None,
        description="Directory of the pg_dump and pg_restore that `timebank backup` and "
        "`restore` use. Unset: the oldest found (in the embedded server's package, "
        "/usr/lib/postgresql/*/bin, PATH) that is at least the server's major version.",
    )
    shutdown_grace_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="After SIGTERM (or Ctrl-C), how long requests in flight and webhook "
        "deliveries get to finish before they are cut; the process then exits within "
        "5 more seconds (writes still running get 2 s, the database pool 3 s to close).",
    )
    log_origin_prefix: str = Field(
        default="timebank.local",
        pattern=r"^[^\s+/][^\s+]{0,100}$",
        description="First part of each community's log origin (<prefix>/<slug>): say "
        "where the service lives, e.g. timebank.example.org. Fixed at a community's "
        "first checkpoint.",
    )
    log_checkpoint_interval_s: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="How often a community whose log grew gets a new signed checkpoint.",
    )
    policy_run_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="How often the service looks for ended periods of demurrage, expiry, "
        "fees and recurring donations to run (each period runs once, late ones at start).",
    )
    access_cache_ttl_s: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="How long a caller's role in a community and the community's "
        "signature policy are remembered between requests (0: never, and live keys are "
        "not kept either). Changes made through this process apply at once; those made "
        "through another process within this delay.",
    )
    signature_verify_threads: int = Field(
        # At idle priority, a third thread on two cores shortens the wait for the
        # first verdicts of a share (signed transfers 6,000 -> 6,400/s, docs/scaling.md).
        default=3,
        ge=0,
        le=64,
        description="Worker threads that verify members' signatures, on other cores while "
        "the service goes on with other requests (0: on the event loop itself).",
    )
    signature_verify_idle_priority: bool = Field(
        default=True,
        description="Run the signature workers at idle priority (Linux SCHED_IDLE), so that "
        "requests already verified reach the database first; a signature left waiting 50 ms "
        "(the CPUs kept busy by other programs) is verified by a rescuing thread at normal "
        "priority.",
    )
    coalesce_in_flight_max: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Database calls posting single transactions at once; those arriving "
        "while all are busy are gathered into the next call.",
    )
    coalesce_batch_size_max: int = Field(
        default=64, ge=1, le=1000, description="Most single transactions gathered in one call."
    )
    pending_expiry_default_s: int = Field(
        default=7 * 24 * 3600, ge=1, description="Lifetime of a pending transaction by default."
    )
    pending_expiry_max_s: int = Field(
        default=90 * 24 * 3600, ge=1, description="Longest lifetime a pending transaction may ask."
    )
    expiry_sweep_interval_s: float = Field(
        default=5.0, gt=0, description="How often overdue pending transactions are expired."
    )
    token_issuer: str = Field(default="timebank", description="`iss` of access tokens.")
    token_audience: str = Field(default="timebank", description="`aud` of access tokens.")
    access_token_ttl_s: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_s: int = Field(default=30 * 24 * 3600, ge=3600)
    login_failures_max: int = Field(
        default=5, ge=1, description="Failed logins per account per window before refusing."
    )
    login_failures_per_address_max: int = Field(
        default=20, ge=1, description="Failed logins per address per window before refusing."
    )
    login_window_s: int = Field(default=900, ge=1, description="Window of the login throttle.")
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="'auto' is readable on a terminal and JSON otherwise."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    webhook_delivery_enabled: bool = Field(
        default=True,
        description="Run the webhook delivery worker in this process (any number of "
        "processes may run it at once).",
    )
    webhook_poll_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="How often the worker looks for due deliveries."
    )
    webhook_request_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Longest wait for a receiver's answer; a slower one is a failed attempt.",
    )
    webhook_backoff_base_s: float = Field(
        default=1.0, gt=0, description="Delay before the first retry; it doubles at each retry."
    )
    webhook_backoff_max_s: float = Field(
        default=3600.0, gt=0, description="Longest delay between two attempts."
    )
    webhook_retry_window_s: float = Field(
        default=3 * 24 * 3600.0,
        gt=0,
        description="How long after its first attempt a delivery is retried before it is "
        "marked failed and the subscription's next event goes out.",
    )
    webhook_deliveries_in_flight_max: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Deliveries in flight at once per process (never two of one subscription).",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="The service's address as members reach it (e.g. https://sel.example.org), "
        "for the links sent by email; unset: the address the admin's request came to.",
    )
    invitation_ttl_s: int = Field(
        default=14 * 24 * 3600,
        ge=3600,
        le=90 * 24 * 3600,
        description="How long an invitation's link works.",
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server that sends invitations; unset: none are sent."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="The SMTP server's port.")
    smtp_starttls: bool = Field(
        default=True, description="Switch the SMTP connection to TLS (STARTTLS) before sending."
    )
    smtp_username: str | None = Field(default=None, description="SMTP login, if it asks one.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_from: str = Field(
        default="timebank@localhost", description="The sender of the emails (From)."
    )
    smtp_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Longest wait for the SMTP server."
    )
