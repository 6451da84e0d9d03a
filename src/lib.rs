//! ringdns: an authoritative DNS server. See DESIGN.md for the data flow:
//! config → zone → compile → publish → engine (fast path) / slowpath.
//!
//! Every module that reads network data denies `unwrap` and `expect`
//! (clippy, outside tests): a malformed packet must become an error reply
//! or a drop, never a panic.

pub mod compile;
pub mod config;
#[deny(clippy::unwrap_used, clippy::expect_used)]
pub mod cookie;
#[deny(clippy::unwrap_used, clippy::expect_used)]
pub mod engine;
pub mod metrics;
pub mod publish;
#[deny(clippy::unwrap_used, clippy::expect_used)]
pub mod querylog;
#[deny(clippy::unwrap_used, clippy::expect_used)]
pub mod respond;
#[deny(clippy::unwrap_used, clippy::expect_used)]
pub mod rrl;
pub mod server;
pub mod service;
#[deny(clippy::unwrap_used, clippy::expect_used)]
pub mod slowpath;
#[deny(clippy::unwrap_used, clippy::expect_used)]
pub mod tsig;
#[deny(clippy::unwrap_used, clippy::expect_used)]
pub mod wire;
pub mod zone;
