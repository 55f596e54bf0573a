CREATE TABLE managed_keys (
    id TEXT PRIMARY KEY,
    usage TEXT NOT NULL,
    subject TEXT NOT NULL,
    version INTEGER NOT NULL,
    material TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER,
    UNIQUE (usage, subject, version)
);
CREATE TABLE owner_claims (
    code_sha256 BLOB PRIMARY KEY,
    owner TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    used_by TEXT
);
CREATE TABLE device_owners (
    device_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    claimed_at INTEGER NOT NULL
);
CREATE INDEX device_owners_owner ON device_owners(owner, device_id);
