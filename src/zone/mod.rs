//! Zones as validated sets of RRsets: what a zone source (a zone file today,
//! a transfer later) produces and what the compiler consumes.
//!
//! This module owns zone text → `Zone`: scanning (with the `domain` crate,
//! plus what it lacks: `$GENERATE` and a few record types), `$INCLUDE`,
//! and the checks kzonecheck and named-checkzone make. It knows nothing of
//! answers, sockets or the fast path.

mod diff;
mod dnssec_check;
mod generate;
mod load;
mod rdata_text;
mod text;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use diff::{Record, ZoneDiff, apply, apply_all, diff, from_records, records};
pub use dnssec_check::{
    DenialChain, DnssecProblem, DnssecReport, ProblemKind, check_dnssec, parse_time,
};
pub use load::{Loaded, load_file, load_text};
pub use validate::RecordLines;

/// One problem found in zone data, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneProblem {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ZoneProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// The records of one owner name and type, class IN.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rrset {
    pub rtype: u16,
    pub ttl: u32,
    /// RDATA in uncompressed wire format, duplicates removed, in zone order.
    pub rdatas: Vec<Vec<u8>>,
}

/// A loaded, validated zone.
#[derive(Clone, Debug, Default)]
pub struct Zone {
    /// Apex name, lowercased wire format.
    pub origin: Vec<u8>,
    /// Owner name (lowercased wire format) → its RRsets.
    pub nodes: BTreeMap<Vec<u8>, Vec<Rrset>>,
}

impl Zone {
    pub fn rrset(&self, owner: &[u8], rtype: u16) -> Option<&Rrset> {
        self.nodes
            .get(owner)?
            .iter()
            .find(|rrset| rrset.rtype == rtype)
    }

    /// The SOA's serial, or 0 when there is none (never for a validated zone).
    pub fn serial(&self) -> u32 {
        self.rrset(&self.origin, crate::wire::rtype::SOA)
            .and_then(|soa| soa.rdatas.first())
            .and_then(|rdata| soa_fields(rdata))
            .map_or(0, |fields| fields.serial)
    }

    /// A digest of every record, to tell whether a reload changed the data.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.nodes.hash(&mut hasher);
        hasher.finish()
    }

    pub fn record_count(&self) -> usize {
        self.nodes
            .values()
            .flatten()
            .map(|rrset| rrset.rdatas.len())
            .sum()
    }
}

/// True when serial `new` is later than `old` in RFC 1982 serial number
/// arithmetic (32-bit, with wrap-around).
pub fn serial_is_newer(new: u32, old: u32) -> bool {
    (new.wrapping_sub(old) as i32) > 0
}

/// The SOA fields of `zone`'s apex SOA.
pub fn soa_fields_of(zone: &Zone) -> Option<SoaFields> {
    let soa = zone.rrset(&zone.origin, crate::wire::rtype::SOA)?;
    soa_fields(soa.rdatas.first()?)
}

/// The fixed fields at the end of SOA RDATA (RFC 1035 §3.3.13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoaFields {
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

pub fn soa_fields(rdata: &[u8]) -> Option<SoaFields> {
    let fixed = rdata.get(rdata.len().checked_sub(20)?..)?;
    let field = |index: usize| {
        let at = index * 4;
        u32::from_be_bytes([fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]])
    };
    Some(SoaFields {
        serial: field(0),
        refresh: field(1),
        retry: field(2),
        expire: field(3),
        minimum: field(4),
    })
}

#[cfg(test)]
mod tests {
    use super::serial_is_newer;

    #[test]
    fn serial_arithmetic_per_rfc_1982() {
        assert!(serial_is_newer(2, 1));
        assert!(!serial_is_newer(1, 1));
        assert!(!serial_is_newer(1, 2));
        assert!(serial_is_newer(0, u32::MAX), "wraps around");
        assert!(serial_is_newer(5, 4_000_000_000));
        assert!(!serial_is_newer(4_000_000_000, 5));
    }
}
