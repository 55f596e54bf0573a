//! Integration tests for ironclad-pki: one test binary, one module per concept.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[path = "it/common.rs"]
mod common;

#[path = "it/batch.rs"]
mod batch;
#[path = "it/crl.rs"]
mod crl;
#[path = "it/csr.rs"]
mod csr;
#[path = "it/index.rs"]
mod index;
#[path = "it/inspect.rs"]
mod inspect;
#[path = "it/issue.rs"]
mod issue;
#[path = "it/openssl.rs"]
mod openssl;
#[path = "it/props.rs"]
mod props;
#[path = "it/verify.rs"]
mod verify;
