//! Integration tests: the storage suite on both backends, and the server over real TLS on
//! loopback with certificates from our PKI and device keys in secure elements.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod auth;
mod common;
mod crl;
mod enrollment;
mod messages;
mod openssl;
mod operator;
mod ota;
mod ownership;
mod postgres_e2e;
mod store_postgres;
mod store_sqlite;
