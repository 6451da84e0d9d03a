//! ringdns: an authoritative DNS server. See DESIGN.md for the data flow:
//! config → zone → compile → publish → engine (fast path) / slowpath.

pub mod compile;
pub mod config;
pub mod cookie;
pub mod engine;
pub mod metrics;
pub mod publish;
pub mod querylog;
pub mod respond;
pub mod rrl;
pub mod server;
pub mod service;
pub mod slowpath;
pub mod tsig;
pub mod wire;
pub mod zone;
