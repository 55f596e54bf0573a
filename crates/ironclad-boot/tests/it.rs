//! Integration tests for ironclad-boot: one test binary, one module per concept.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub, dead_code)]

#[path = "it/common.rs"]
mod common;

#[path = "it/behaviour.rs"]
mod behaviour;
#[path = "it/chain.rs"]
mod chain;
#[path = "it/powercut.rs"]
mod powercut;
#[path = "it/props.rs"]
mod props;
#[path = "it/sim.rs"]
mod sim;
