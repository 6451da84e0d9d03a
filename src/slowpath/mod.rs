//! The slow path: everything that is not a UDP query. Today that is DNS over
//! TCP; zone transfers, NOTIFY and HTTP endpoints come here too. It reads
//! published tables like the workers do and never writes one.

pub mod http;
pub mod journal;
pub mod notify;
pub mod reload;
pub mod secondary;
pub mod tcp;
pub mod xfr_out;
pub mod zones;
