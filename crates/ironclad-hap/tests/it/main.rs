//! One integration-test binary: ironclad controller ↔ ironclad accessory over loopback, device
//! authentication against an OEM root, cloud delegation, and the interop tests against
//! HAP-python, aiohomekit and homekit_python (skipped without IRONCLAD_HAP_PYTHON, unless
//! IRONCLAD_REQUIRE_PEERS=1).
#![allow(clippy::unwrap_used)]

mod common;
mod delegation;
mod device_auth;
mod interop;
mod limits;
mod oem;
mod roundtrip;
