-- CRL publication: the current CRL of each enrolled group CA, and its entries, which are
-- revocations scoped to that CA (checked on every authentication).
CREATE TABLE crls (
    ca_sha256 TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    this_update INTEGER NOT NULL,
    next_update INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    der BLOB NOT NULL,
    published_at INTEGER NOT NULL
);
CREATE TABLE crl_entries (
    entry_key TEXT PRIMARY KEY,
    ca_sha256 TEXT NOT NULL,
    serial TEXT NOT NULL,
    reason TEXT NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX crl_entries_ca ON crl_entries(ca_sha256);
