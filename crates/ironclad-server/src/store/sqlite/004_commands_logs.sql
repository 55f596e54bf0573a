CREATE TABLE command_sequences (
    device_id TEXT PRIMARY KEY,
    last_sequence INTEGER NOT NULL
);
CREATE TABLE device_commands (
    device_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    name TEXT NOT NULL,
    signed BLOB NOT NULL,
    issued_by TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    reported_at INTEGER,
    PRIMARY KEY (device_id, sequence)
);
CREATE TABLE telemetry (
    device_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    device_time INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    data_json TEXT NOT NULL,
    PRIMARY KEY (device_id, sequence)
);
CREATE TABLE log_uploads (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    uploaded_at INTEGER NOT NULL,
    size INTEGER NOT NULL,
    content BLOB NOT NULL
);
CREATE INDEX log_uploads_device ON log_uploads(device_id, uploaded_at);
