//! One integration-test binary: ironclad controller ↔ ironclad accessory over loopback, and the
//! interop tests against HAP-python and aiohomekit (skipped without IRONCLAD_HAP_PYTHON, unless
//! IRONCLAD_REQUIRE_PEERS=1).
#![allow(clippy::unwrap_used)]

mod common;
mod interop;
mod limits;
mod roundtrip;
