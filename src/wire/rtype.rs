//! Record type numbers (IANA "Resource Record (RR) TYPEs") that the server
//! treats specially, and where names sit inside their RDATA.

pub const A: u16 = 1;
pub const NS: u16 = 2;
pub const CNAME: u16 = 5;
pub const SOA: u16 = 6;
pub const PTR: u16 = 12;
pub const MX: u16 = 15;
pub const TXT: u16 = 16;
pub const AAAA: u16 = 28;
pub const SRV: u16 = 33;
pub const DNAME: u16 = 39;
pub const OPT: u16 = 41;
pub const DS: u16 = 43;
pub const RRSIG: u16 = 46;
pub const NSEC: u16 = 47;
pub const DNSKEY: u16 = 48;
pub const NSEC3: u16 = 50;
pub const NSEC3PARAM: u16 = 51;
pub const IXFR: u16 = 251;
pub const AXFR: u16 = 252;
pub const ANY: u16 = 255;

pub const CLASS_IN: u16 = 1;
pub const CLASS_ANY: u16 = 255;

/// Where the domain names in an RDATA are, for compression and additional
/// section processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RdataNames {
    /// No names, or names that must be copied as they are (RFC 3597 §4:
    /// only the RFC 1035 types may be compressed).
    Opaque,
    /// The whole RDATA is one name that may be compressed (NS, CNAME, PTR).
    One,
    /// A 16-bit preference, then a compressible name (MX).
    AfterPreference,
    /// Two compressible names, then fixed fields (SOA).
    TwoThenFixed,
}

pub fn rdata_names(rtype: u16) -> RdataNames {
    match rtype {
        NS | CNAME | PTR => RdataNames::One,
        MX => RdataNames::AfterPreference,
        SOA => RdataNames::TwoThenFixed,
        _ => RdataNames::Opaque,
    }
}

/// The target name of a record whose additional-section processing wants
/// the target's addresses (RFC 1035 §3.3: NS and MX; RFC 2782: SRV).
pub fn additional_target(rtype: u16, rdata: &[u8]) -> Option<&[u8]> {
    match rtype {
        NS => Some(rdata),
        MX => rdata.get(2..),
        SRV => rdata.get(6..),
        _ => None,
    }
}

/// Record name text for messages, e.g. "AAAA" or "TYPE65400".
pub fn to_text(rtype: u16) -> String {
    domain::base::iana::Rtype::from_int(rtype).to_string()
}

/// A record type from its name ("AXFR", "aaaa", "TYPE65400").
pub fn from_text(text: &str) -> Option<u16> {
    text.parse::<domain::base::iana::Rtype>()
        .ok()
        .map(|rtype| rtype.to_int())
}
