CREATE TABLE enrollments (
    id TEXT PRIMARY KEY,
    match_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    device_id TEXT,
    der BLOB,
    verification_code TEXT,
    note TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX enrollments_kind ON enrollments(kind, status);
CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    cert_sha256 TEXT NOT NULL,
    serial TEXT NOT NULL,
    enrollment_id TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    auth_count INTEGER NOT NULL
);
CREATE TABLE revocations (
    serial TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE TABLE challenges (
    id TEXT PRIMARY KEY,
    challenge BLOB NOT NULL,
    cert_sha256 BLOB NOT NULL,
    session_binding BLOB NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX challenges_expiry ON challenges(expires_at);
CREATE TABLE sessions (
    token_sha256 BLOB PRIMARY KEY,
    device_id TEXT NOT NULL,
    cert_sha256 BLOB NOT NULL,
    serial TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions(expires_at);
CREATE TABLE device_state (
    device_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    json TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
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
    token_sha256 BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    disabled INTEGER NOT NULL
);
