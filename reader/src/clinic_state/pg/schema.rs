//! The clinic database's schema in PostgreSQL (`docs/deployment.md`, "The clinic database") and
//! the group roles that give each kind of device its least privilege. `medcard device setup-db`
//! runs [`SETUP`] once per clinic, as the database owner, in one transaction.

/// The schema version this build reads and writes (`medcard_schema.version`).
pub const VERSION: i32 = 3;

/// What each version added, for `setup-db` upgrading an older clinic database (the tables are
/// created with `IF NOT EXISTS`, so an upgrade is: run [`TABLES`], then set the version).
/// 1: cards, revocations, consent versions, spent codes, records index, audit log.
/// 2: `trust_files`, the clinic's trust list (other clinics' issuer certificates and keys).
/// 3: `staff_cards_exist`, whether the clinic has staff cards (so staff sign-ins are required),
///    readable by every device without reading the cards table (docs/staff.md).
pub const HISTORY: &[(i32, &str)] =
    &[(1, "the clinic state and audit log"), (2, "the shared trust list"), (3, "whether staff sign-ins are required")];

/// Tables (idempotent: `IF NOT EXISTS`), then the schema version row.
pub const TABLES: &str = "
CREATE TABLE IF NOT EXISTS medcard_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cards (
    serial      BIGINT PRIMARY KEY,
    patient_id  TEXT NOT NULL,
    status      TEXT NOT NULL,
    credential  BYTEA,
    issued_at   BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    name        TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    kid_9e      TEXT NOT NULL,
    kid_9c      TEXT NOT NULL,
    device      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cards_patient ON cards(patient_id);
CREATE TABLE IF NOT EXISTS card_revocations (
    serial      BIGINT PRIMARY KEY,
    revoked_at  BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    device      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS consent_versions (
    patient_id   TEXT NOT NULL,
    version      BIGINT NOT NULL,
    token        BYTEA NOT NULL,
    token_sha256 BYTEA NOT NULL,
    scope        TEXT NOT NULL,
    iat          BIGINT NOT NULL,
    exp          BIGINT NOT NULL,
    revoked_at   BIGINT,
    seen_at      BIGINT NOT NULL,
    device       TEXT NOT NULL,
    PRIMARY KEY (patient_id, version)
);
CREATE TABLE IF NOT EXISTS qr_used (
    cti      TEXT PRIMARY KEY,
    used_at  BIGINT NOT NULL,
    device   TEXT NOT NULL,
    exp      BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    record_id   TEXT PRIMARY KEY,
    patient_id  TEXT NOT NULL,
    category    TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    created     BIGINT NOT NULL,
    author      TEXT NOT NULL,
    locator     TEXT NOT NULL,
    size        BIGINT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    device      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_patient ON records(patient_id);
CREATE TABLE IF NOT EXISTS audit_entries (
    seq         BIGINT PRIMARY KEY,
    entry_id    TEXT NOT NULL UNIQUE,
    device      TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    time        BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    leaf_hash   BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS trust_files (
    name      TEXT PRIMARY KEY,
    bytes     BYTEA NOT NULL,
    added_at  BIGINT NOT NULL,
    device    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    tree_size  BIGINT PRIMARY KEY,
    root       BYTEA NOT NULL,
    time       BIGINT NOT NULL,
    signed     BYTEA NOT NULL,
    device     TEXT NOT NULL
);
-- v3: one boolean for every device: does the clinic have staff cards? A view reads the cards table
-- with its owner's rights, so a bedside learns this without being able to read the cards.
CREATE OR REPLACE VIEW staff_cards_exist AS SELECT EXISTS (SELECT 1 FROM cards WHERE patient_id LIKE 'staff:%') AS required;
";

/// The group roles (cluster-wide, created when missing; a concurrent creation by another
/// clinic's setup on the same server is not an error) and their rights. Login roles, one per
/// device, are made members of one group by the clinic's IT (docs/deployment.md).
pub const ROLES: &str = "
DO $$
DECLARE r TEXT;
BEGIN
    FOREACH r IN ARRAY ARRAY['medcard_admin', 'medcard_kiosk', 'medcard_bedside'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END;
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON medcard_schema, cards, card_revocations, consent_versions, qr_used, records, audit_entries, audit_checkpoints, trust_files,
    staff_cards_exist FROM PUBLIC;
REVOKE ALL ON medcard_schema, cards, card_revocations, consent_versions, qr_used, records, audit_entries, audit_checkpoints,
    trust_files, staff_cards_exist FROM medcard_admin, medcard_kiosk, medcard_bedside;
GRANT USAGE ON SCHEMA public TO medcard_admin, medcard_kiosk, medcard_bedside;
GRANT SELECT ON medcard_schema, staff_cards_exist TO medcard_admin, medcard_kiosk, medcard_bedside;
-- admin PC: issues and revokes cards, adds records, checkpoints the log.
GRANT SELECT, INSERT, UPDATE ON cards, card_revocations, consent_versions, records TO medcard_admin;
GRANT SELECT, INSERT ON qr_used, audit_entries, audit_checkpoints TO medcard_admin;
GRANT SELECT, INSERT, DELETE ON trust_files TO medcard_admin;
-- every device reads the trust list (and keeps a copy for when the database does not answer).
GRANT SELECT ON trust_files TO medcard_kiosk, medcard_bedside;
-- kiosk: reads cards, revocations and the records index; remembers consent versions.
GRANT SELECT ON cards, card_revocations, records TO medcard_kiosk;
GRANT SELECT, INSERT, UPDATE ON consent_versions TO medcard_kiosk;
GRANT SELECT, INSERT ON audit_entries, audit_checkpoints TO medcard_kiosk;
-- bedside: spends one-time codes and writes the log; reads revocations; nothing else.
GRANT SELECT ON card_revocations TO medcard_bedside;
GRANT SELECT, INSERT ON qr_used, audit_entries TO medcard_bedside;
GRANT SELECT ON audit_checkpoints TO medcard_bedside;
";
