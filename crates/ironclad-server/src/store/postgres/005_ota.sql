-- OTA: firmware-verification keys, releases (the image is a file in the releases directory),
-- staged rollouts to groups, and each device's copy of a release with its reported state.
CREATE TABLE ota_keys (
    key_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    spki BYTEA NOT NULL,
    algorithm TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE ota_releases (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    security_counter BIGINT NOT NULL,
    product_class TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    image_hash TEXT NOT NULL,
    signed_len BIGINT NOT NULL,
    wrap TEXT NOT NULL,
    signer TEXT NOT NULL,
    decryption_key TEXT,
    file_name TEXT NOT NULL,
    note TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL
);
CREATE TABLE ota_rollouts (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    release_id TEXT NOT NULL REFERENCES ota_releases(id),
    group_id TEXT NOT NULL,
    percentage BIGINT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX ota_rollouts_group ON ota_rollouts(group_id, seq);
CREATE TABLE ota_devices (
    device_id TEXT NOT NULL,
    release_id TEXT NOT NULL REFERENCES ota_releases(id),
    rollout_id TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL,
    recipient BYTEA NOT NULL,
    tail BYTEA NOT NULL,
    image_size BIGINT NOT NULL,
    image_sha256 TEXT NOT NULL,
    offered_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, release_id)
);
CREATE INDEX ota_devices_release ON ota_devices(release_id);
