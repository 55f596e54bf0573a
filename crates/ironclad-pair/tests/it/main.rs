//! ironclad-pair integration tests (one binary, as ripgrep does).
#![allow(clippy::unwrap_used)]
mod attestation_flow;
mod common;
mod interop;
mod pairings;
mod session_props;
mod setup_flow;
mod srp_vectors;
mod tlv8_props;
mod verify_flow;
