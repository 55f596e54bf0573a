//! COSE message layer: every refusal, log files, key delivery, property tests and pycose interop.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;
mod keydelivery;
mod logs;
mod peer;
mod props;
mod signed;
