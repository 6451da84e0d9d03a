//! DNS wire format: names, parsing received queries, and the record types
//! the compiler needs to know the layout of. No I/O, no server state.

pub mod dnssec;
pub mod message;
pub mod name;
pub mod query;
pub mod rtype;
