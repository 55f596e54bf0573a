CREATE TABLE enrollments (
    id TEXT PRIMARY KEY,
    match_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    device_id TEXT,
    der BYTEA,
    verification_code TEXT,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX enrollments_kind ON enrollments(kind, status);
CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    cert_sha256 TEXT NOT NULL,
    serial TEXT NOT NULL,
    enrollment_id TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    auth_count BIGINT NOT NULL
);
CREATE TABLE revocations (serial TEXT PRIMARY KEY, reason TEXT NOT NULL, revoked_at BIGINT NOT NULL);
CREATE TABLE challenges (
    id TEXT PRIMARY KEY,
    challenge BYTEA NOT NULL,
    cert_sha256 BYTEA NOT NULL,
    session_binding BYTEA NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX challenges_expiry ON challenges(expires_at);
CREATE TABLE sessions (
    token_sha256 BYTEA PRIMARY KEY,
    device_id TEXT NOT NULL,
    cert_sha256 BYTEA NOT NULL,
    serial TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions(expires_at);
CREATE TABLE device_state (
    device_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    json TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE audit (
    seq BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL,
    device_id TEXT,
    actor TEXT,
    peer TEXT
);
CREATE INDEX audit_device ON audit(device_id, seq);
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_sha256 BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    disabled BOOLEAN NOT NULL
);
