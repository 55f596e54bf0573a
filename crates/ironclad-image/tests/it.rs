//! Integration tests for ironclad-image: one test binary, one module per concept.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub, dead_code)]

#[path = "it/common.rs"]
mod common;

#[path = "it/imgtool.rs"]
mod imgtool;
#[path = "it/props.rs"]
mod props;
#[path = "it/refusals.rs"]
mod refusals;
#[path = "it/rewrap.rs"]
mod rewrap;
#[path = "it/secure_element.rs"]
mod secure_element;
