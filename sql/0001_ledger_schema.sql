-- The ledger's tables. Every table is keyed by community first (the tenant), and
-- every reference between ledger rows carries the community id, so a posting can
-- never point at another community's account and the schema can later be
-- distributed by community without a rewrite.
--
-- Amounts are BIGINT in the unit's smallest step (minutes for time, cents for a
-- currency). Limits stay within +/- 2^62 so that a balance plus any accepted
-- amount (at most 2^53 - 1) can never overflow BIGINT.

-- Column types carry the per-value rules (checked only when a value is written),
-- so the hot tables keep few table-level CHECKs: PostgreSQL re-reads those on
-- every statement that writes the table, including each balance update.
CREATE TYPE ledger_account_status AS ENUM ('active', 'frozen', 'closed');
CREATE TYPE ledger_transaction_kind AS ENUM (
    'exchange', 'transfer', 'donation', 'grant', 'fee', 'levy', 'demurrage',
    'issuance', 'reconversion', 'reversal', 'adjustment');
CREATE TYPE ledger_transaction_state AS ENUM ('pending', 'posted', 'voided', 'expired');
CREATE DOMAIN ledger_min_balance AS bigint CHECK (VALUE BETWEEN -4611686018427387904 AND 0);
CREATE DOMAIN ledger_max_balance AS bigint CHECK (VALUE BETWEEN 0 AND 4611686018427387904);
CREATE DOMAIN ledger_account_purpose AS text CHECK (VALUE ~ '^[a-z][a-z0-9_]{0,31}$');
CREATE DOMAIN ledger_memo AS text CHECK (length(VALUE) <= 500);
CREATE DOMAIN ledger_category AS text CHECK (length(VALUE) BETWEEN 1 AND 64);
CREATE DOMAIN ledger_sha256 AS bytea CHECK (length(VALUE) = 32);
CREATE DOMAIN ledger_amount AS bigint CHECK (VALUE <> 0);

CREATE TABLE communities (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    slug        text        NOT NULL UNIQUE
                            CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE units (
    community_id        uuid        NOT NULL REFERENCES communities (id),
    id                  uuid        NOT NULL DEFAULT gen_random_uuid(),
    code                text        NOT NULL CHECK (code ~ '^[A-Za-z][A-Za-z0-9_-]{0,15}$'),
    name                text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind                text        NOT NULL CHECK (kind IN ('time', 'currency')),
    -- A time unit counts whole minutes; a currency counts 10^-decimals of its unit.
    decimals            smallint    NOT NULL CHECK (decimals BETWEEN 0 AND 6),
    default_min_balance ledger_min_balance NOT NULL,
    default_max_balance ledger_max_balance NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, id),
    UNIQUE (community_id, code),
    CHECK (kind <> 'time' OR decimals = 0)
);
-- One time unit per community; any number of currencies.
CREATE UNIQUE INDEX units_one_time_unit_per_community ON units (community_id) WHERE kind = 'time';

-- Whoever can own accounts: a member, an organization, a pool, or the community
-- itself (system accounts such as issuance). Identities and logins attach to
-- parties in the auth schema; the ledger only needs to know who owns what.
CREATE TABLE parties (
    community_id uuid        NOT NULL REFERENCES communities (id),
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    kind         text        NOT NULL CHECK (kind IN ('member', 'organization', 'pool', 'community')),
    display_name text        NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, id)
);
CREATE UNIQUE INDEX parties_one_community_party ON parties (community_id) WHERE kind = 'community';

CREATE TABLE accounts (
    community_id uuid        NOT NULL,
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    unit_id      uuid        NOT NULL,
    owner_id     uuid        NOT NULL,
    -- What the account is for, so one owner can hold several accounts in one unit
    -- (e.g. the community's 'issuance' and 'fees' accounts).
    purpose      ledger_account_purpose NOT NULL DEFAULT 'main',
    status       ledger_account_status  NOT NULL DEFAULT 'active',
    min_balance  ledger_min_balance     NOT NULL,
    max_balance  ledger_max_balance     NOT NULL,
    -- Posted balance; pending reservations live in holds.
    balance      bigint      NOT NULL DEFAULT 0,
    -- Number of postings so far; the account_seq of the latest posting.
    posting_count bigint     NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, id),
    FOREIGN KEY (community_id, unit_id) REFERENCES units (community_id, id),
    FOREIGN KEY (community_id, owner_id) REFERENCES parties (community_id, id),
    -- Owner first: an index led by community_id would tempt the planner into
    -- scanning a whole community where the primary key finds two rows.
    UNIQUE (owner_id, unit_id, purpose, community_id),
    CONSTRAINT accounts_balance_within_limits CHECK (balance BETWEEN min_balance AND max_balance),
    CONSTRAINT accounts_closed_only_when_empty CHECK (status <> 'closed' OR balance = 0)
);
-- The HTTP API addresses accounts by id alone.
CREATE INDEX accounts_by_id ON accounts (id);

CREATE TABLE transactions (
    community_id uuid        NOT NULL,
    -- Chosen by the client: a retry with the same id is recognised, never doubled.
    id           uuid        NOT NULL,
    kind         ledger_transaction_kind  NOT NULL,
    state        ledger_transaction_state NOT NULL,
    memo         ledger_memo NOT NULL DEFAULT '',
    category     ledger_category,
    -- SHA-256 of the request's content, to tell an idempotent retry from a conflict.
    fingerprint  ledger_sha256 NOT NULL,
    reverses_id  uuid,
    -- The legs as asked, in order: account and signed amount. Kept on the row so
    -- that confirming, reversing or showing a transaction needs no index over the
    -- postings by transaction (whose upkeep was a third of a batch's postings cost).
    leg_accounts uuid[]      NOT NULL,
    leg_amounts  bigint[]    NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    -- When it was posted, voided or expired; NULL while pending.
    resolved_at  timestamptz,
    PRIMARY KEY (community_id, id),
    FOREIGN KEY (community_id, reverses_id) REFERENCES transactions (community_id, id),
    CONSTRAINT transactions_consistent CHECK (
        (kind = 'reversal') = (reverses_id IS NOT NULL)
        AND (state = 'pending') = (resolved_at IS NULL)
        AND (expires_at IS NULL OR expires_at > created_at)
        AND (state NOT IN ('pending', 'expired') OR expires_at IS NOT NULL)
        AND cardinality(leg_accounts) >= 2
        AND cardinality(leg_accounts) = cardinality(leg_amounts))
);
-- A posted transaction is reversed at most once.
CREATE UNIQUE INDEX transactions_reversed_once ON transactions (community_id, reverses_id)
    WHERE reverses_id IS NOT NULL;
CREATE INDEX transactions_pending_by_expiry ON transactions (expires_at) WHERE state = 'pending';

-- The journal: one row per posted movement on an account, with the balance it
-- left. Insert-only.
CREATE TABLE postings (
    community_id   uuid        NOT NULL,
    account_id     uuid        NOT NULL,
    account_seq    bigint      NOT NULL,
    transaction_id uuid        NOT NULL,
    amount         ledger_amount NOT NULL,
    balance_after  bigint      NOT NULL,
    posted_at      timestamptz NOT NULL,
    PRIMARY KEY (community_id, account_id, account_seq)
);
-- No index by transaction: a transaction's legs are on its row, and its postings
-- are found by account and time (ledger_transaction_postings). No index on
-- posted_at either: an account's postings are timed in sequence order, so
-- the balance at an instant is found by bisection on the primary key
-- (ledger_balance_at), and every transfer saves the upkeep of a third index.

-- Reservations of pending transactions, deleted when they are confirmed, voided
-- or expired. A hold past its expires_at never counts against a limit, whether or
-- not the sweeper has deleted it yet: no reservation outlives its expiry.
CREATE TABLE holds (
    community_id   uuid        NOT NULL,
    account_id     uuid        NOT NULL,
    transaction_id uuid        NOT NULL,
    amount         ledger_amount NOT NULL,
    expires_at     timestamptz NOT NULL,
    PRIMARY KEY (community_id, account_id, transaction_id)
);
CREATE INDEX holds_by_transaction ON holds (community_id, transaction_id);

-- The journal tables (transactions, postings, holds) carry no
-- foreign keys: their rows are written only by the ledger functions, which lock
-- and check every account they reference first, and per-row foreign-key triggers
-- cost more than the insert itself (3x the work of a transfer, 60 ms on a batch
-- of 1,000). Referenced rows are never deleted (triggers below), and
-- `timebank check` verifies every reference ("journal_references_exist").

-- History cannot be rewritten, by the code or by anyone with SQL access short of
-- dropping these triggers (which the audit log of issue 4 will also reveal).
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger history is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'TB001';
END;
$$;

CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER communities_no_delete BEFORE DELETE ON communities
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER communities_no_truncate BEFORE TRUNCATE ON communities
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER transactions_no_delete BEFORE DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER transactions_no_truncate BEFORE TRUNCATE ON transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- The only change a transaction row may ever see: a pending one is resolved
-- (posted, voided or expired) once, and nothing else about it changes.
CREATE FUNCTION ledger_guard_transaction_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'pending'
       AND NEW.state IN ('posted', 'voided', 'expired')
       AND NEW.resolved_at IS NOT NULL
       AND (NEW.community_id, NEW.id, NEW.kind, NEW.memo, NEW.category, NEW.fingerprint,
            NEW.reverses_id, NEW.leg_accounts, NEW.leg_amounts, NEW.created_at, NEW.expires_at)
           IS NOT DISTINCT FROM
           (OLD.community_id, OLD.id, OLD.kind, OLD.memo, OLD.category, OLD.fingerprint,
            OLD.reverses_id, OLD.leg_accounts, OLD.leg_amounts, OLD.created_at, OLD.expires_at)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'transaction % is % and cannot be changed', OLD.id, OLD.state
        USING ERRCODE = 'TB001';
END;
$$;

CREATE TRIGGER transactions_resolve_once BEFORE UPDATE ON transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_guard_transaction_update();
