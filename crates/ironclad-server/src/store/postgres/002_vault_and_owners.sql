CREATE TABLE managed_keys (
    id TEXT PRIMARY KEY,
    usage TEXT NOT NULL,
    subject TEXT NOT NULL,
    version BIGINT NOT NULL,
    material TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    UNIQUE (usage, subject, version)
);
CREATE TABLE owner_claims (
    code_sha256 BYTEA PRIMARY KEY,
    owner TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    used_by TEXT
);
CREATE TABLE device_owners (
    device_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    claimed_at BIGINT NOT NULL
);
CREATE INDEX device_owners_owner ON device_owners(owner, device_id);
