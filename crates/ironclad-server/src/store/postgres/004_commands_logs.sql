CREATE TABLE command_sequences (
    device_id TEXT PRIMARY KEY,
    last_sequence BIGINT NOT NULL
);
CREATE TABLE device_commands (
    device_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    name TEXT NOT NULL,
    signed BYTEA NOT NULL,
    issued_by TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    reported_at BIGINT,
    PRIMARY KEY (device_id, sequence)
);
CREATE TABLE telemetry (
    device_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    device_time BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    data_json TEXT NOT NULL,
    PRIMARY KEY (device_id, sequence)
);
CREATE TABLE log_uploads (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    size BIGINT NOT NULL,
    content BYTEA NOT NULL
);
CREATE INDEX log_uploads_device ON log_uploads(device_id, uploaded_at);
