-- CRL publication: the current CRL of each enrolled group CA, and its entries, which are
-- revocations scoped to that CA (checked on every authentication).
CREATE TABLE crls (
    ca_sha256 TEXT PRIMARY KEY,
    number TEXT COLLATE "C" NOT NULL,
    this_update BIGINT NOT NULL,
    next_update BIGINT NOT NULL,
    entries BIGINT NOT NULL,
    der BYTEA NOT NULL,
    published_at BIGINT NOT NULL
);
CREATE TABLE crl_entries (
    entry_key TEXT PRIMARY KEY,
    ca_sha256 TEXT NOT NULL,
    serial TEXT NOT NULL,
    reason TEXT NOT NULL,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX crl_entries_ca ON crl_entries(ca_sha256);
