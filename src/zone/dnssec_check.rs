//! `ringdns check-zone --dnssec`: verifies a pre-signed zone as a validator
//! would meet it, before it is served: every RRSIG over its RRset with the
//! apex DNSKEYs (RFC 4034 §3.1.8.1, RFC 4035 §5.3), each signature's
//! validity window at a given time, every authoritative RRset signed, the
//! DNSKEY RRset signed by a SEP key, and the NSEC chain (RFC 4034 §4,
//! RFC 4035 §2.3) or the NSEC3 chain (RFC 5155 §7.1) complete with the
//! right type bitmaps.
//!
//! Pure: a loaded `Zone`, where its records came from and the time in, a
//! `DnssecReport` out. It owns the canonical signed data and the calls to
//! `ring`; it must not touch loading, the compiled table or the fast path,
//! and it never panics on zone data (no `unwrap`, no indexing that can
//! fail), as the network modules.

#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;

use ring::signature;

use super::{RecordLines, Rrset, Zone};
use crate::wire::dnssec::{
    NSEC3_HASH_LEN, NSEC3_HASH_SHA1, Nsec3Params, base32hex, canonical_cmp, nsec3_hash,
    nsec3_owner_hash,
};
use crate::wire::name::{self, to_text};
use crate::wire::rtype;

/// DNSKEY flags (RFC 4034 §2.1.1): the Zone Key bit and the Secure Entry
/// Point bit.
const FLAG_ZONE_KEY: u16 = 0x0100;
const FLAG_SEP: u16 = 0x0001;
/// DNSKEY protocol, always 3 (RFC 4034 §2.1.2).
const DNSKEY_PROTOCOL: u8 = 3;
/// The fixed fields of RRSIG RDATA before the signer's name.
const RRSIG_FIXED_LEN: usize = 18;

/// DNSSEC algorithm numbers (IANA "DNS Security Algorithm Numbers").
const RSASHA1: u8 = 5;
const RSASHA1_NSEC3_SHA1: u8 = 7;
const RSASHA256: u8 = 8;
const RSASHA512: u8 = 10;
const ECDSAP256SHA256: u8 = 13;
const ECDSAP384SHA384: u8 = 14;
const ED25519: u8 = 15;

/// What kind of problem, for counting and for capping the listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemKind {
    /// No usable DNSKEY at the apex.
    NoDnskey,
    /// RRSIG or DNSKEY RDATA that cannot be read.
    Malformed,
    /// The signature does not verify over its RRset (BADSIG).
    BadSignature,
    /// The RRSIG names a key (tag, algorithm) the apex DNSKEY RRset lacks.
    UnknownKey,
    /// The RRSIG's signer is not the zone apex.
    SignerName,
    /// The RRSIG's labels field exceeds the owner's labels.
    Labels,
    /// The RRSIG's expiration is before the time checked.
    Expired,
    /// The RRSIG's inception is after the time checked.
    NotYetValid,
    /// An authoritative RRset has no RRSIG.
    Unsigned,
    /// An RRset lacks a signature of an algorithm the DNSKEY RRset has.
    AlgorithmMissing,
    /// An RRSIG covers a type with no RRset at its owner.
    Orphan,
    /// The DNSKEY RRset has no valid signature by a SEP key.
    DnskeyNotSignedBySep,
    /// A name lacks its NSEC, or an NSEC names the wrong next name.
    NsecChain,
    /// An NSEC's type bitmap differs from the types at its owner.
    NsecBitmap,
    /// A name lacks its NSEC3, an NSEC3 matches no name, or one names the
    /// wrong next hash.
    Nsec3Chain,
    /// An NSEC3's type bitmap differs from the types at the name it hashes.
    Nsec3Bitmap,
    /// Signatures of an algorithm this check cannot verify (a warning).
    UnsupportedAlgorithm,
}

impl ProblemKind {
    /// How a count of this kind reads, in "N more …".
    fn plural(self) -> &'static str {
        match self {
            ProblemKind::NoDnskey => "DNSKEY problems",
            ProblemKind::Malformed => "unreadable records",
            ProblemKind::BadSignature => "signatures that do not verify (BADSIG)",
            ProblemKind::UnknownKey => "signatures by keys not in the DNSKEY RRset",
            ProblemKind::SignerName => "signatures with a wrong signer name",
            ProblemKind::Labels => "signatures with a wrong labels field",
            ProblemKind::Expired => "expired signatures",
            ProblemKind::NotYetValid => "signatures not yet valid",
            ProblemKind::Unsigned => "RRsets without an RRSIG",
            ProblemKind::AlgorithmMissing => "RRsets missing an algorithm's signature",
            ProblemKind::Orphan => "RRSIGs covering no RRset",
            ProblemKind::DnskeyNotSignedBySep => "DNSKEY signing problems",
            ProblemKind::NsecChain => "NSEC chain problems",
            ProblemKind::NsecBitmap => "NSEC type bitmap problems",
            ProblemKind::Nsec3Chain => "NSEC3 chain problems",
            ProblemKind::Nsec3Bitmap => "NSEC3 type bitmap problems",
            ProblemKind::UnsupportedAlgorithm => "unsupported algorithms",
        }
    }
}

/// One problem, with the record's file and line when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnssecProblem {
    pub kind: ProblemKind,
    pub at: Option<(PathBuf, usize)>,
    /// The zone's origin in text, for problems without a line.
    pub origin: String,
    pub message: String,
}

impl fmt::Display for DnssecProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some((file, line)) => write!(f, "{}:{line}: {}", file.display(), self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

/// How the zone denies existence, and how long its chain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenialChain {
    None,
    /// Names with an NSEC.
    Nsec {
        names: usize,
    },
    /// NSEC3 records of the NSEC3PARAM's chain.
    Nsec3 {
        hashes: usize,
    },
}

/// What the check found.
#[derive(Clone, Debug)]
pub struct DnssecReport {
    pub origin: String,
    /// Problems, in the order found: each makes the zone fail.
    pub problems: Vec<DnssecProblem>,
    /// What could not be checked (an algorithm without support).
    pub warnings: Vec<DnssecProblem>,
    /// RRSIGs checked, and those that verified and were in their window.
    pub signatures: usize,
    pub signatures_valid: usize,
    pub denial: DenialChain,
    /// True when the chain had no problem.
    pub chain_complete: bool,
}

impl DnssecReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems to print: at most `per_kind_max` of each kind, in the
    /// order found, then one line per kind with how many more there are.
    pub fn listing(&self, per_kind_max: usize) -> Vec<String> {
        let mut shown: HashMap<ProblemKind, usize> = HashMap::new();
        let mut lines = Vec::new();
        for problem in &self.problems {
            let count = shown.entry(problem.kind).or_default();
            *count += 1;
            if *count <= per_kind_max {
                lines.push(problem.to_string());
            }
        }
        let mut kinds: Vec<(ProblemKind, usize)> = shown.into_iter().collect();
        kinds.sort();
        for (kind, count) in kinds {
            if count > per_kind_max {
                lines.push(format!(
                    "{}: DNSSEC: {} more {} ({} in all)",
                    self.origin,
                    thousands(count - per_kind_max),
                    kind.plural(),
                    thousands(count)
                ));
            }
        }
        lines
    }

    /// One line, e.g. `example.com.: DNSSEC: 2,884 signatures verified,
    /// NSEC chain of 1,509 names complete: OK`.
    pub fn summary(&self) -> String {
        let chain = match self.denial {
            DenialChain::None => "no NSEC or NSEC3 chain".to_string(),
            DenialChain::Nsec { names } => format!("NSEC chain of {} names", thousands(names)),
            DenialChain::Nsec3 { hashes } => {
                format!("NSEC3 chain of {} hashes", thousands(hashes))
            }
        };
        let chain_state = match (self.denial, self.chain_complete) {
            (DenialChain::None, _) => "",
            (_, true) => " complete",
            (_, false) => " broken",
        };
        if self.ok() {
            format!(
                "{}: DNSSEC: {} signatures verified, {chain}{chain_state}: OK",
                self.origin,
                thousands(self.signatures_valid)
            )
        } else {
            format!(
                "{}: DNSSEC: {} of {} signatures valid, {chain}{chain_state}: {} problems: FAILED",
                self.origin,
                thousands(self.signatures_valid),
                thousands(self.signatures),
                thousands(self.problems.len())
            )
        }
    }
}

/// `1234567` → `1,234,567`.
fn thousands(value: usize) -> String {
    let digits = value.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `YYYYMMDDHHMMSS` (UTC, as in RRSIG presentation format, RFC 4034
/// §3.2) → seconds since 1970.
pub fn parse_time(text: &str) -> Option<u64> {
    if text.len() != 14 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (field(0..4)?, field(4..6)?, field(6..8)?);
    let (hour, minute, second) = (field(8..10)?, field(10..12)?, field(12..14)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
        || year < 1970
    {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    u64::try_from(seconds).ok()
}

/// Seconds since 1970 → `YYYYMMDDHHMMSS`.
fn time_text(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    // civil_from_days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// True when `a` is before `b` in RFC 1982 serial arithmetic, as RRSIG
/// times compare (RFC 4034 §3.1.5).
fn serial_before(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) > 0
}

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

/// The fields of RRSIG RDATA (RFC 4034 §3.1).
#[derive(Clone, Debug)]
struct Rrsig<'a> {
    type_covered: u16,
    algorithm: u8,
    labels: u8,
    expiration: u32,
    inception: u32,
    key_tag: u16,
    signer: &'a [u8],
    /// The RDATA up to the end of the signer's name (what is signed).
    signed_fields: &'a [u8],
    signature: &'a [u8],
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([field[0], field[1], field[2], field[3]]))
}

/// The end of the uncompressed wire name starting at `at`.
fn name_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut position = at;
    loop {
        let length = *bytes.get(position)? as usize;
        if length > name::LABEL_LEN_MAX {
            return None;
        }
        position += 1 + length;
        if length == 0 {
            return (position - at <= name::NAME_LEN_MAX && position <= bytes.len())
                .then_some(position);
        }
    }
}

impl<'a> Rrsig<'a> {
    fn parse(rdata: &'a [u8]) -> Option<Rrsig<'a>> {
        let signer_end = name_end(rdata, RRSIG_FIXED_LEN)?;
        Some(Rrsig {
            type_covered: u16_at(rdata, 0)?,
            algorithm: *rdata.get(2)?,
            labels: *rdata.get(3)?,
            expiration: u32_at(rdata, 8)?,
            inception: u32_at(rdata, 12)?,
            key_tag: u16_at(rdata, 16)?,
            signer: rdata.get(RRSIG_FIXED_LEN..signer_end)?,
            signed_fields: rdata.get(..signer_end)?,
            signature: rdata.get(signer_end..)?,
        })
    }
}

/// One apex DNSKEY (RFC 4034 §2).
#[derive(Clone, Debug)]
struct Key<'a> {
    flags: u16,
    algorithm: u8,
    tag: u16,
    public_key: &'a [u8],
}

impl<'a> Key<'a> {
    fn parse(rdata: &'a [u8]) -> Option<Key<'a>> {
        if *rdata.get(2)? != DNSKEY_PROTOCOL {
            return None;
        }
        Some(Key {
            flags: u16_at(rdata, 0)?,
            algorithm: *rdata.get(3)?,
            tag: key_tag(rdata),
            public_key: rdata.get(4..)?,
        })
    }
}

/// The key tag of DNSKEY RDATA (RFC 4034 Appendix B; algorithm 1 aside).
fn key_tag(rdata: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for (index, &byte) in rdata.iter().enumerate() {
        sum += if index % 2 == 0 {
            u32::from(byte) << 8
        } else {
            u32::from(byte)
        };
    }
    sum += (sum >> 16) & 0xffff;
    (sum & 0xffff) as u16
}

/// The next hashed owner name of NSEC3 RDATA (RFC 5155 §3.2), when it is
/// a SHA-1 hash.
pub(super) fn nsec3_next_hash(rdata: &[u8]) -> Option<[u8; NSEC3_HASH_LEN]> {
    let (next, _) = nsec3_next_and_bitmap(rdata)?;
    next.try_into().ok()
}

/// The next hashed owner and the type bitmap of NSEC3 RDATA.
fn nsec3_next_and_bitmap(rdata: &[u8]) -> Option<(&[u8], &[u8])> {
    let salt_len = *rdata.get(4)? as usize;
    let hash_len_at = 5 + salt_len;
    let hash_len = *rdata.get(hash_len_at)? as usize;
    let next = rdata.get(hash_len_at + 1..hash_len_at + 1 + hash_len)?;
    let bitmap = rdata.get(hash_len_at + 1 + hash_len..)?;
    Some((next, bitmap))
}

/// The types of an NSEC/NSEC3 type bitmap (RFC 4034 §4.1.2).
fn bitmap_types(bitmap: &[u8]) -> Option<BTreeSet<u16>> {
    let mut types = BTreeSet::new();
    let mut at = 0;
    while at < bitmap.len() {
        let window = u16::from(*bitmap.get(at)?);
        let length = *bitmap.get(at + 1)? as usize;
        if length == 0 || length > 32 {
            return None;
        }
        let octets = bitmap.get(at + 2..at + 2 + length)?;
        for (index, &octet) in octets.iter().enumerate() {
            for bit in 0..8 {
                if octet & (0x80 >> bit) != 0 {
                    types.insert(window * 256 + (index * 8 + bit) as u16);
                }
            }
        }
        at += 2 + length;
    }
    Some(types)
}

fn types_text(types: &BTreeSet<u16>) -> String {
    if types.is_empty() {
        return "none".to_string();
    }
    types
        .iter()
        .map(|&rtype| rtype::to_text(rtype))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lowercases the wire name at `at` in place; returns where it ends.
fn lowercase_name_at(rdata: &mut [u8], at: usize) -> Option<usize> {
    let end = name_end(rdata, at)?;
    // Length octets are at most 63, below 'A': lowercasing them is a no-op.
    rdata.get_mut(at..end)?.make_ascii_lowercase();
    Some(end)
}

/// Skips a <character-string> at `at`; returns where it ends.
fn character_string_end(rdata: &[u8], at: usize) -> Option<usize> {
    let end = at + 1 + *rdata.get(at)? as usize;
    (end <= rdata.len()).then_some(end)
}

/// RDATA in canonical form (RFC 4034 §6.2): the names of the types listed
/// there lowercased, less NSEC (RFC 6840 §5.1). Other RDATA, and RDATA
/// too short for its type, is returned as it is.
fn canonical_rdata(rrset_type: u16, rdata: &[u8]) -> Vec<u8> {
    let mut canonical = rdata.to_vec();
    let lowered = (|| -> Option<()> {
        match rrset_type {
            // NS, MD, MF, CNAME, MB, MG, MR, PTR, DNAME: one name.
            2..=5 | 7..=9 | 12 | 39 => {
                lowercase_name_at(&mut canonical, 0)?;
            }
            // SOA, MINFO, RP: two names.
            6 | 14 | 17 => {
                let end = lowercase_name_at(&mut canonical, 0)?;
                lowercase_name_at(&mut canonical, end)?;
            }
            // MX, AFSDB, RT, KX: a 16-bit field, then a name.
            15 | 18 | 21 | 36 => {
                lowercase_name_at(&mut canonical, 2)?;
            }
            // PX: preference, two names.
            26 => {
                let end = lowercase_name_at(&mut canonical, 2)?;
                lowercase_name_at(&mut canonical, end)?;
            }
            // SRV: priority, weight, port, target.
            33 => {
                lowercase_name_at(&mut canonical, 6)?;
            }
            // NAPTR: order, preference, flags, services, regexp, replacement.
            35 => {
                let mut at = 4;
                for _ in 0..3 {
                    at = character_string_end(&canonical, at)?;
                }
                lowercase_name_at(&mut canonical, at)?;
            }
            // NXT: next name, then a bitmap.
            30 => {
                lowercase_name_at(&mut canonical, 0)?;
            }
            // SIG, RRSIG: the signer's name after the fixed fields.
            24 | 46 => {
                lowercase_name_at(&mut canonical, RRSIG_FIXED_LEN)?;
            }
            _ => {}
        }
        Some(())
    })();
    if lowered.is_none() {
        return rdata.to_vec();
    }
    canonical
}

/// The data an RRSIG signs (RFC 4034 §3.1.8.1): its RDATA up to the
/// signature with the signer's name lowercased, then each record of the
/// RRset in canonical form (owner lowercased, or the wildcard the labels
/// field names, RFC 4035 §5.3.2; the original TTL; RDATA names lowercased;
/// records sorted by their canonical RDATA, duplicates dropped).
/// `None` when the RRSIG cannot be read or its labels exceed the owner's.
pub fn signed_data(
    rrsig_rdata: &[u8],
    owner: &[u8],
    rrset_type: u16,
    rdatas: &[Vec<u8>],
) -> Option<Vec<u8>> {
    let rrsig = Rrsig::parse(rrsig_rdata)?;
    let original_ttl = rrsig_rdata.get(4..8)?;
    let mut owner = name::to_lowercase(owner);
    let owner_labels = name::label_count(&owner);
    let labels = usize::from(rrsig.labels);
    if labels > owner_labels {
        return None;
    }
    if labels < owner_labels {
        let mut suffix: &[u8] = &owner;
        for _ in 0..owner_labels - labels {
            suffix = name::parent(suffix)?;
        }
        let mut wildcard = vec![1, b'*'];
        wildcard.extend_from_slice(suffix);
        owner = wildcard;
    }
    let mut records: Vec<Vec<u8>> = rdatas
        .iter()
        .map(|rdata| canonical_rdata(rrset_type, rdata))
        .collect();
    records.sort();
    records.dedup();
    let mut data = Vec::with_capacity(
        rrsig.signed_fields.len()
            + records
                .iter()
                .map(|rdata| owner.len() + 10 + rdata.len())
                .sum::<usize>(),
    );
    data.extend_from_slice(rrsig.signed_fields);
    if let Some(signer) = data.get_mut(RRSIG_FIXED_LEN..) {
        signer.make_ascii_lowercase();
    }
    for rdata in &records {
        data.extend_from_slice(&owner);
        data.extend_from_slice(&rrset_type.to_be_bytes());
        data.extend_from_slice(&rtype::CLASS_IN.to_be_bytes());
        data.extend_from_slice(original_ttl);
        data.extend_from_slice(&u16::try_from(rdata.len()).ok()?.to_be_bytes());
        data.extend_from_slice(rdata);
    }
    Some(data)
}

/// What verifying one signature with one key gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verified {
    Valid,
    Invalid,
    Unsupported,
}

/// Strips leading zero octets, as `ring` wants RSA integers.
fn without_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&byte| byte != 0)
        .unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// Verifies `signature` over `message` with a DNSKEY's public key.
fn verify(algorithm: u8, public_key: &[u8], message: &[u8], signature: &[u8]) -> Verified {
    let valid = match algorithm {
        RSASHA1 | RSASHA1_NSEC3_SHA1 | RSASHA256 | RSASHA512 => {
            // RFC 3110 §2: exponent length (one octet, or zero then two),
            // exponent, modulus.
            let parts = (|| {
                let (exponent_len, rest) = match *public_key.first()? {
                    0 => (usize::from(u16_at(public_key, 1)?), public_key.get(3..)?),
                    length => (usize::from(length), public_key.get(1..)?),
                };
                Some((rest.get(..exponent_len)?, rest.get(exponent_len..)?))
            })();
            let Some((exponent, modulus)) = parts else {
                return Verified::Invalid;
            };
            let parameters = match algorithm {
                RSASHA256 => &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                RSASHA512 => &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
                _ => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
            };
            signature::RsaPublicKeyComponents {
                n: without_leading_zeros(modulus),
                e: without_leading_zeros(exponent),
            }
            .verify(parameters, message, signature)
            .is_ok()
        }
        ECDSAP256SHA256 | ECDSAP384SHA384 => {
            // RFC 6605 §4: the raw x | y; ring wants the uncompressed point.
            let mut point = Vec::with_capacity(public_key.len() + 1);
            point.push(0x04);
            point.extend_from_slice(public_key);
            let parameters = if algorithm == ECDSAP256SHA256 {
                &signature::ECDSA_P256_SHA256_FIXED
            } else {
                &signature::ECDSA_P384_SHA384_FIXED
            };
            signature::UnparsedPublicKey::new(parameters, point)
                .verify(message, signature)
                .is_ok()
        }
        ED25519 => signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
            .verify(message, signature)
            .is_ok(),
        _ => return Verified::Unsupported,
    };
    if valid {
        Verified::Valid
    } else {
        Verified::Invalid
    }
}

fn algorithm_text(algorithm: u8) -> String {
    match algorithm {
        RSASHA1 => "RSASHA1".to_string(),
        RSASHA1_NSEC3_SHA1 => "RSASHA1-NSEC3-SHA1".to_string(),
        RSASHA256 => "RSASHA256".to_string(),
        RSASHA512 => "RSASHA512".to_string(),
        ECDSAP256SHA256 => "ECDSAP256SHA256".to_string(),
        ECDSAP384SHA384 => "ECDSAP384SHA384".to_string(),
        ED25519 => "ED25519".to_string(),
        other => format!("algorithm {other}"),
    }
}

// ---------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------

/// The zone with what the check asks of it again and again: where each
/// RRset's records were, which names are delegations and which are below
/// one.
struct Context<'z> {
    zone: &'z Zone,
    lines: &'z RecordLines,
    origin_text: String,
    /// (owner, type) → index of the RRset's first record in zone order.
    first_record: HashMap<(&'z [u8], u16), usize>,
    problems: Vec<DnssecProblem>,
}

impl<'z> Context<'z> {
    fn new(zone: &'z Zone, lines: &'z RecordLines) -> Context<'z> {
        let mut first_record = HashMap::new();
        let mut index = 0;
        for (owner, rrsets) in &zone.nodes {
            for rrset in rrsets {
                first_record.insert((owner.as_slice(), rrset.rtype), index);
                index += rrset.rdatas.len();
            }
        }
        // Lines from another load of the zone would name wrong lines.
        let lines_fit = lines.records.len() == index;
        if !lines_fit {
            first_record.clear();
        }
        Context {
            zone,
            lines,
            origin_text: to_text(&zone.origin),
            first_record,
            problems: Vec::new(),
        }
    }

    /// Where record `rdata_index` of the RRset (`owner`, `rrset_type`) was.
    fn at(&self, owner: &[u8], rrset_type: u16, rdata_index: usize) -> Option<(PathBuf, usize)> {
        let first = self.first_record.get(&(owner, rrset_type))?;
        let (file, line) = self.lines.get(first + rdata_index)?;
        Some((file.to_path_buf(), line))
    }

    /// Where the name's first record was.
    fn at_name(&self, owner: &[u8]) -> Option<(PathBuf, usize)> {
        let rrsets = self.zone.nodes.get(owner)?;
        rrsets
            .iter()
            .filter_map(|rrset| self.at(owner, rrset.rtype, 0))
            .min_by_key(|(_, line)| *line)
    }

    fn problem(
        &self,
        kind: ProblemKind,
        at: Option<(PathBuf, usize)>,
        message: String,
    ) -> DnssecProblem {
        DnssecProblem {
            kind,
            at,
            origin: self.origin_text.clone(),
            message: format!("DNSSEC: {message}"),
        }
    }

    fn report(&mut self, kind: ProblemKind, at: Option<(PathBuf, usize)>, message: String) {
        let problem = self.problem(kind, at, message);
        self.problems.push(problem);
    }

    fn is_cut(&self, owner: &[u8]) -> bool {
        owner != self.zone.origin.as_slice() && self.zone.rrset(owner, rtype::NS).is_some()
    }

    /// Below a zone cut: glue or occluded data, not signed (RFC 4035 §2.2).
    fn occluded(&self, owner: &[u8]) -> bool {
        let mut current = owner;
        while let Some(up) = name::parent(current) {
            if up.len() <= self.zone.origin.len() {
                return false;
            }
            if self.is_cut(up) {
                return true;
            }
            current = up;
        }
        false
    }

    /// The types the zone is authoritative for at `owner`: at a delegation
    /// only NS, DS, NSEC and RRSIG (RFC 4035 §2.3).
    fn types_at(&self, owner: &[u8], rrsets: &[Rrset]) -> BTreeSet<u16> {
        let cut = self.is_cut(owner);
        rrsets
            .iter()
            .map(|rrset| rrset.rtype)
            .filter(|&rrset_type| {
                !cut || matches!(
                    rrset_type,
                    rtype::NS | rtype::DS | rtype::NSEC | rtype::RRSIG
                )
            })
            .collect()
    }
}

/// Verifies the signed zone `zone` at `now_s` (seconds since 1970): see the
/// module documentation. `lines` (from the zone's load) names the lines of
/// problems; without it they name the zone.
pub fn check_dnssec(zone: &Zone, lines: &RecordLines, now_s: u64) -> DnssecReport {
    let mut context = Context::new(zone, lines);
    let mut report = DnssecReport {
        origin: context.origin_text.clone(),
        problems: Vec::new(),
        warnings: Vec::new(),
        signatures: 0,
        signatures_valid: 0,
        denial: DenialChain::None,
        chain_complete: false,
    };
    let origin = zone.origin.as_slice();
    let dnskeys: Vec<Key<'_>> = zone
        .rrset(origin, rtype::DNSKEY)
        .map(|rrset| {
            rrset
                .rdatas
                .iter()
                .filter_map(|rdata| Key::parse(rdata))
                .filter(|key| key.flags & FLAG_ZONE_KEY != 0)
                .collect()
        })
        .unwrap_or_default();
    if dnskeys.is_empty() {
        let at = context.at(origin, rtype::SOA, 0);
        context.report(
            ProblemKind::NoDnskey,
            at,
            format!(
                "no zone key (DNSKEY with the Zone Key flag) at the apex {}: the zone is not signed",
                context.origin_text
            ),
        );
        report.problems = context.problems;
        return report;
    }
    let key_algorithms: BTreeSet<u8> = dnskeys.iter().map(|key| key.algorithm).collect();
    let now = now_s as u32; // RRSIG times are serial numbers (RFC 4034 §3.1.5).
    let mut unsupported: HashMap<u8, usize> = HashMap::new();

    for (owner, rrsets) in &zone.nodes {
        if context.occluded(owner) {
            continue;
        }
        let owner_text = to_text(owner);
        let cut = context.is_cut(owner);
        let rrsig_rdatas: &[Vec<u8>] = rrsets
            .iter()
            .find(|rrset| rrset.rtype == rtype::RRSIG)
            .map_or(&[], |rrset| rrset.rdatas.as_slice());
        let rrsigs: Vec<(usize, Option<Rrsig<'_>>)> = rrsig_rdatas
            .iter()
            .enumerate()
            .map(|(index, rdata)| (index, Rrsig::parse(rdata)))
            .collect();
        for (index, rrsig) in &rrsigs {
            let covered = rrsig.as_ref().map(|rrsig| rrsig.type_covered);
            let Some(covered) = covered else {
                let at = context.at(owner, rtype::RRSIG, *index);
                context.report(
                    ProblemKind::Malformed,
                    at,
                    format!("unreadable RRSIG at {owner_text}"),
                );
                continue;
            };
            if !rrsets.iter().any(|rrset| rrset.rtype == covered) {
                let at = context.at(owner, rtype::RRSIG, *index);
                context.report(
                    ProblemKind::Orphan,
                    at,
                    format!(
                        "RRSIG {} at {owner_text} covers no RRset: there is no {} at the name",
                        rtype::to_text(covered),
                        rtype::to_text(covered)
                    ),
                );
            }
        }
        for rrset in rrsets {
            if rrset.rtype == rtype::RRSIG {
                continue;
            }
            let type_text = rtype::to_text(rrset.rtype);
            let authoritative = !cut || matches!(rrset.rtype, rtype::DS | rtype::NSEC);
            let mut signed_by = BTreeSet::new();
            let mut signed_by_sep = false;
            let mut has_rrsig = false;
            for (index, rrsig) in &rrsigs {
                let Some(rrsig) = rrsig else { continue };
                if rrsig.type_covered != rrset.rtype {
                    continue;
                }
                has_rrsig = true;
                report.signatures += 1;
                let rrsig_at = || context.at(owner, rtype::RRSIG, *index);
                let described = format!(
                    "RRSIG {type_text} at {owner_text} (key {}, {})",
                    rrsig.key_tag,
                    algorithm_text(rrsig.algorithm)
                );
                if !rrsig.signer.eq_ignore_ascii_case(origin) {
                    let message = format!(
                        "{described}: signer {} is not the zone apex",
                        to_text(rrsig.signer)
                    );
                    let at = rrsig_at();
                    context.report(ProblemKind::SignerName, at, message);
                    continue;
                }
                let Some(data) = signed_data(
                    rrsig_rdatas.get(*index).map_or(&[], Vec::as_slice),
                    owner,
                    rrset.rtype,
                    &rrset.rdatas,
                ) else {
                    let message = format!(
                        "{described}: labels {} exceed the owner's {}",
                        rrsig.labels,
                        name::label_count(owner)
                    );
                    let at = rrsig_at();
                    context.report(ProblemKind::Labels, at, message);
                    continue;
                };
                let keys: Vec<&Key<'_>> = dnskeys
                    .iter()
                    .filter(|key| key.tag == rrsig.key_tag && key.algorithm == rrsig.algorithm)
                    .collect();
                if keys.is_empty() {
                    let message = format!(
                        "{described}: no key with tag {} and algorithm {} in the apex DNSKEY RRset",
                        rrsig.key_tag, rrsig.algorithm
                    );
                    let at = rrsig_at();
                    context.report(ProblemKind::UnknownKey, at, message);
                    continue;
                }
                let mut outcome = Verified::Invalid;
                let mut sep = false;
                for key in keys {
                    outcome = verify(rrsig.algorithm, key.public_key, &data, rrsig.signature);
                    if outcome != Verified::Invalid {
                        sep = key.flags & FLAG_SEP != 0;
                        break;
                    }
                }
                match outcome {
                    Verified::Unsupported => {
                        *unsupported.entry(rrsig.algorithm).or_default() += 1;
                        // Not verified, not held against the RRset either.
                        signed_by.insert(rrsig.algorithm);
                        continue;
                    }
                    Verified::Invalid => {
                        let rrsig_line = rrsig_at()
                            .map(|(_, line)| format!(" (line {line})"))
                            .unwrap_or_default();
                        let message = format!(
                            "BADSIG: the {described}{rrsig_line} does not verify over the {type_text} RRset"
                        );
                        let at = context.at(owner, rrset.rtype, 0).or_else(rrsig_at);
                        context.report(ProblemKind::BadSignature, at, message);
                        continue;
                    }
                    Verified::Valid => signed_by_sep |= sep,
                }
                if serial_before(rrsig.expiration, now) {
                    let message = format!(
                        "{described} expired at {}",
                        time_text(u64::from(rrsig.expiration))
                    );
                    let at = rrsig_at();
                    context.report(ProblemKind::Expired, at, message);
                    continue;
                }
                if serial_before(now, rrsig.inception) {
                    let message = format!(
                        "{described} is not valid before {}",
                        time_text(u64::from(rrsig.inception))
                    );
                    let at = rrsig_at();
                    context.report(ProblemKind::NotYetValid, at, message);
                    continue;
                }
                report.signatures_valid += 1;
                signed_by.insert(rrsig.algorithm);
            }
            if !authoritative {
                continue;
            }
            if !has_rrsig {
                let at = context.at(owner, rrset.rtype, 0);
                context.report(
                    ProblemKind::Unsigned,
                    at,
                    format!("the {type_text} RRset at {owner_text} has no RRSIG"),
                );
                continue;
            }
            if !signed_by.is_empty() {
                for algorithm in key_algorithms.difference(&signed_by) {
                    let at = context.at(owner, rrset.rtype, 0);
                    context.report(
                        ProblemKind::AlgorithmMissing,
                        at,
                        format!(
                            "the {type_text} RRset at {owner_text} has no valid {} signature, though the DNSKEY RRset has a key of it (RFC 4035 §2.2)",
                            algorithm_text(*algorithm)
                        ),
                    );
                }
            }
            if rrset.rtype == rtype::DNSKEY
                && owner.as_slice() == origin
                && !signed_by_sep
                && !dnskeys.iter().any(|key| !supported(key.algorithm))
            {
                let at = context.at(owner, rtype::DNSKEY, 0);
                context.report(
                    ProblemKind::DnskeyNotSignedBySep,
                    at,
                    "the DNSKEY RRset has no valid signature by a key with the SEP flag (a KSK)"
                        .to_string(),
                );
            }
        }
    }
    let mut unsupported: Vec<(u8, usize)> = unsupported.into_iter().collect();
    unsupported.sort();
    for (algorithm, count) in unsupported {
        let warning = context.problem(
            ProblemKind::UnsupportedAlgorithm,
            None,
            format!(
                "{} signatures of {} not verified: the algorithm is not supported",
                thousands(count),
                algorithm_text(algorithm)
            ),
        );
        report.warnings.push(warning);
    }

    let chain_problems_before = context.problems.len();
    if let Some(params) = zone
        .rrset(origin, rtype::NSEC3PARAM)
        .and_then(|rrset| rrset.rdatas.first())
    {
        match Nsec3Params::parse(params) {
            Some(params) if params.algorithm == NSEC3_HASH_SHA1 => {
                report.denial = DenialChain::Nsec3 {
                    hashes: check_nsec3_chain(&mut context, &params),
                };
            }
            Some(params) => {
                let warning = context.problem(
                    ProblemKind::UnsupportedAlgorithm,
                    None,
                    format!(
                        "NSEC3 hash algorithm {} is not supported: the chain is not checked",
                        params.algorithm
                    ),
                );
                report.warnings.push(warning);
            }
            None => {
                let at = context.at(origin, rtype::NSEC3PARAM, 0);
                context.report(
                    ProblemKind::Malformed,
                    at,
                    "unreadable NSEC3PARAM".to_string(),
                );
            }
        }
    } else if zone
        .nodes
        .values()
        .flatten()
        .any(|rrset| rrset.rtype == rtype::NSEC)
    {
        report.denial = DenialChain::Nsec {
            names: check_nsec_chain(&mut context),
        };
    } else {
        let at = context.at(origin, rtype::SOA, 0);
        context.report(
            ProblemKind::NsecChain,
            at,
            "the zone has neither NSEC records nor an NSEC3PARAM: it cannot deny existence"
                .to_string(),
        );
    }
    report.chain_complete = context.problems.len() == chain_problems_before;
    report.problems = context.problems;
    // In file order; problems without a line last. The sort is stable.
    report.problems.sort_by(|a, b| match (&a.at, &b.at) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    report
}

fn supported(algorithm: u8) -> bool {
    matches!(
        algorithm,
        RSASHA1
            | RSASHA1_NSEC3_SHA1
            | RSASHA256
            | RSASHA512
            | ECDSAP256SHA256
            | ECDSAP384SHA384
            | ED25519
    )
}

/// The NSEC chain (RFC 4034 §4.1, RFC 4035 §2.3): every authoritative name
/// has one NSEC naming the next name in canonical order (the last the
/// apex), with the types at its name and RRSIG and NSEC in its bitmap.
/// Returns how many names the chain should hold.
fn check_nsec_chain(context: &mut Context<'_>) -> usize {
    let zone = context.zone;
    let mut names: Vec<&[u8]> = Vec::new();
    for owner in zone.nodes.keys() {
        if context.occluded(owner) {
            if zone.rrset(owner, rtype::NSEC).is_some() {
                let at = context.at(owner, rtype::NSEC, 0);
                context.report(
                    ProblemKind::NsecChain,
                    at,
                    format!("NSEC at {} is below a delegation", to_text(owner)),
                );
            }
            continue;
        }
        names.push(owner);
    }
    names.sort_by(|a, b| canonical_cmp(a, b));
    for (index, &owner) in names.iter().enumerate() {
        let owner_text = to_text(owner);
        let next_expected = names
            .get(index + 1)
            .copied()
            .unwrap_or(zone.origin.as_slice());
        let Some(rrsets) = zone.nodes.get(owner) else {
            continue;
        };
        let Some(nsec) = zone.rrset(owner, rtype::NSEC) else {
            let at = context.at_name(owner);
            context.report(
                ProblemKind::NsecChain,
                at,
                format!(
                    "no NSEC at {owner_text}: the chain should lead from it to {}",
                    to_text(next_expected)
                ),
            );
            continue;
        };
        if nsec.rdatas.len() > 1 {
            let at = context.at(owner, rtype::NSEC, 1);
            context.report(
                ProblemKind::NsecChain,
                at,
                format!("more than one NSEC at {owner_text}"),
            );
        }
        let Some(rdata) = nsec.rdatas.first() else {
            continue;
        };
        let at = context.at(owner, rtype::NSEC, 0);
        let parsed =
            name_end(rdata, 0).and_then(|end| Some((rdata.get(..end)?, rdata.get(end..)?)));
        let Some((next, bitmap)) = parsed else {
            context.report(
                ProblemKind::Malformed,
                at,
                format!("unreadable NSEC at {owner_text}"),
            );
            continue;
        };
        if !next.eq_ignore_ascii_case(next_expected) {
            context.report(
                ProblemKind::NsecChain,
                at.clone(),
                format!(
                    "the NSEC at {owner_text} names {} as next; the next name in canonical order is {}",
                    to_text(next),
                    to_text(next_expected)
                ),
            );
        }
        let mut expected = context.types_at(owner, rrsets);
        expected.insert(rtype::NSEC);
        expected.insert(rtype::RRSIG);
        check_bitmap(
            context,
            ProblemKind::NsecBitmap,
            at,
            &format!("the NSEC at {owner_text}"),
            bitmap,
            &expected,
        );
    }
    names.len()
}

/// Reports a type bitmap that differs from the `expected` types.
fn check_bitmap(
    context: &mut Context<'_>,
    kind: ProblemKind,
    at: Option<(PathBuf, usize)>,
    what: &str,
    bitmap: &[u8],
    expected: &BTreeSet<u16>,
) {
    let Some(listed) = bitmap_types(bitmap) else {
        context.report(kind, at, format!("{what} has an unreadable type bitmap"));
        return;
    };
    if listed == *expected {
        return;
    }
    let missing: BTreeSet<u16> = expected.difference(&listed).copied().collect();
    let extra: BTreeSet<u16> = listed.difference(expected).copied().collect();
    let mut message = format!(
        "{what} lists {}; the name has {}",
        types_text(&listed),
        types_text(expected)
    );
    if !missing.is_empty() {
        message.push_str(&format!(" (missing {})", types_text(&missing)));
    }
    if !extra.is_empty() {
        message.push_str(&format!(" (extra {})", types_text(&extra)));
    }
    context.report(kind, at, message);
}

/// An NSEC3 record of the chain.
struct Nsec3Entry<'z> {
    owner: &'z [u8],
    opt_out: bool,
    next: &'z [u8],
    bitmap: &'z [u8],
}

/// The NSEC3 chain (RFC 5155 §7.1): every authoritative name and empty
/// non-terminal, hashed with the NSEC3PARAM's parameters, has its NSEC3
/// with the types at the name (unsigned delegations, and empty
/// non-terminals only above them, may be left out under an opt-out NSEC3);
/// no NSEC3 matches nothing; sorted by hash, each names the next and the
/// last the first. Returns the number of NSEC3 records of the chain.
fn check_nsec3_chain(context: &mut Context<'_>, params: &Nsec3Params) -> usize {
    let zone = context.zone;
    let origin = zone.origin.as_slice();
    let mut chain: std::collections::BTreeMap<[u8; NSEC3_HASH_LEN], Nsec3Entry<'_>> =
        std::collections::BTreeMap::new();
    for (owner, rrsets) in &zone.nodes {
        let Some(nsec3) = rrsets.iter().find(|rrset| rrset.rtype == rtype::NSEC3) else {
            continue;
        };
        let owner_text = to_text(owner);
        let at = context.at(owner, rtype::NSEC3, 0);
        let parsed = (|| {
            let rdata = nsec3.rdatas.first()?;
            let record_params = Nsec3Params::parse(rdata)?;
            let (next, bitmap) = nsec3_next_and_bitmap(rdata)?;
            Some((record_params, next, bitmap))
        })();
        let Some((record_params, next, bitmap)) = parsed else {
            context.report(
                ProblemKind::Malformed,
                at,
                format!("unreadable NSEC3 at {owner_text}"),
            );
            continue;
        };
        if !record_params.same_chain(params) {
            context.report(
                ProblemKind::Nsec3Chain,
                at,
                format!(
                    "the NSEC3 at {owner_text} has other parameters (iterations {}, salt {}) than the NSEC3PARAM (iterations {}, salt {})",
                    record_params.iterations,
                    salt_text(&record_params.salt),
                    params.iterations,
                    salt_text(&params.salt)
                ),
            );
            continue;
        }
        let hash = nsec3_owner_hash(owner).filter(|_| name::parent(owner) == Some(origin));
        let Some(hash) = hash else {
            context.report(
                ProblemKind::Nsec3Chain,
                at,
                format!(
                    "the NSEC3 owner {owner_text} is not a base32hex hash label under the apex"
                ),
            );
            continue;
        };
        chain.insert(
            hash,
            Nsec3Entry {
                owner,
                opt_out: record_params.opt_out(),
                next,
                bitmap,
            },
        );
    }

    // The names the chain must hash: authoritative names (not NSEC3
    // owners) and the empty non-terminals above them. `optional`: an
    // unsigned delegation, or an empty non-terminal only above such.
    let mut expected: std::collections::BTreeMap<&[u8], bool> = std::collections::BTreeMap::new();
    for (owner, rrsets) in &zone.nodes {
        if is_nsec3_owner(origin, owner, rrsets) || context.occluded(owner) {
            continue;
        }
        let optional = context.is_cut(owner) && zone.rrset(owner, rtype::DS).is_none();
        let entry = expected.entry(owner.as_slice()).or_insert(optional);
        *entry = optional; // a real name is optional only for itself
        let mut current: &[u8] = owner;
        while let Some(up) = name::parent(current) {
            if up.len() <= origin.len() {
                break;
            }
            if !zone.nodes.contains_key(up) {
                let ent = expected.entry(up).or_insert(true);
                *ent &= optional;
            }
            current = up;
        }
    }

    let mut matched: BTreeSet<[u8; NSEC3_HASH_LEN]> = BTreeSet::new();
    for (&name, &optional) in &expected {
        let name_text = to_text(name);
        let Some(hash) = nsec3_hash(name, &params.salt, params.iterations) else {
            continue;
        };
        let Some(entry) = chain.get(&hash) else {
            let covering_opt_out = chain
                .range(..hash)
                .next_back()
                .or_else(|| chain.iter().next_back())
                .is_some_and(|(_, entry)| entry.opt_out);
            if optional && covering_opt_out {
                continue;
            }
            let at = context.at_name(name);
            let what = if zone.nodes.contains_key(name) {
                "the name"
            } else {
                "the empty non-terminal"
            };
            context.report(
                ProblemKind::Nsec3Chain,
                at,
                format!(
                    "no NSEC3 for {what} {name_text} (hash {})",
                    base32hex(&hash)
                ),
            );
            continue;
        };
        matched.insert(hash);
        let types = zone
            .nodes
            .get(name)
            .map(|rrsets| context.types_at(name, rrsets))
            .unwrap_or_default();
        let at = context.at(entry.owner, rtype::NSEC3, 0);
        check_bitmap(
            context,
            ProblemKind::Nsec3Bitmap,
            at,
            &format!("the NSEC3 of {name_text} ({})", to_text(entry.owner)),
            entry.bitmap,
            &types,
        );
    }

    let hashes: Vec<[u8; NSEC3_HASH_LEN]> = chain.keys().copied().collect();
    for (index, (hash, entry)) in chain.iter().enumerate() {
        let at = context.at(entry.owner, rtype::NSEC3, 0);
        if !matched.contains(hash) {
            context.report(
                ProblemKind::Nsec3Chain,
                at.clone(),
                format!(
                    "the NSEC3 at {} matches no name of the zone",
                    to_text(entry.owner)
                ),
            );
        }
        let next_expected = hashes
            .get(index + 1)
            .or_else(|| hashes.first())
            .copied()
            .unwrap_or(*hash);
        if entry.next != next_expected.as_slice() {
            context.report(
                ProblemKind::Nsec3Chain,
                at,
                format!(
                    "the NSEC3 at {} names {} as next; the next hash in the chain is {}",
                    to_text(entry.owner),
                    base32hex(entry.next),
                    base32hex(&next_expected)
                ),
            );
        }
    }
    chain.len()
}

/// An NSEC3 owner (a hash label under the apex) and not a name of the
/// zone's data: its only records are an NSEC3 and RRSIGs, or, where the
/// NSEC3 went missing, RRSIGs over NSEC3 alone.
fn is_nsec3_owner(origin: &[u8], owner: &[u8], rrsets: &[Rrset]) -> bool {
    let only_nsec3 = rrsets
        .iter()
        .all(|rrset| matches!(rrset.rtype, rtype::NSEC3 | rtype::RRSIG));
    let covers_nsec3 = rrsets.iter().any(|rrset| {
        rrset.rtype == rtype::NSEC3
            || (rrset.rtype == rtype::RRSIG
                && rrset.rdatas.iter().all(|rdata| {
                    crate::wire::dnssec::rrsig_type_covered(rdata) == Some(rtype::NSEC3)
                }))
    });
    name::parent(owner) == Some(origin)
        && only_nsec3
        && covers_nsec3
        && nsec3_owner_hash(owner).is_some()
}

fn salt_text(salt: &[u8]) -> String {
    if salt.is_empty() {
        return "-".to_string();
    }
    salt.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(parse_time("19700101000000"), Some(0));
        assert_eq!(parse_time("20201020000000"), Some(1_603_152_000));
        assert_eq!(time_text(1_603_152_000), "20201020000000");
        assert_eq!(time_text(4_294_967_295), "21060207062815");
        assert_eq!(parse_time("2020102000000"), None);
        assert_eq!(parse_time("20201320000000"), None);
        assert!(serial_before(1, 2));
        assert!(serial_before(u32::MAX, 1), "wraps around");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(2884), "2,884");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn bitmaps_read_windows() {
        // RFC 4034 §4.3's example: A MX RRSIG NSEC TYPE1234.
        let mut bitmap = vec![0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b];
        bitmap.extend([0u8; 26]);
        bitmap.push(0x20);
        let types = bitmap_types(&bitmap).unwrap();
        assert_eq!(types_text(&types), "A MX RRSIG NSEC TYPE1234");
        assert_eq!(bitmap_types(&[0x00, 0x00]), None, "empty window");
    }

    #[test]
    fn key_tag_of_rfc_4034_example() {
        // RFC 4034 §5.4's DS names key tag 60485 for this DNSKEY of dskey.example.com.
        let key = "AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==";
        let mut rdata = vec![0x01, 0x00, 3, 5];
        use base64::Engine;
        rdata.extend(
            base64::engine::general_purpose::STANDARD
                .decode(key)
                .unwrap(),
        );
        assert_eq!(key_tag(&rdata), 60485);
    }

    #[test]
    fn canonical_rdata_lowercases_listed_types_only() {
        let mx = [&[0, 10][..], b"\x04MAIL\x07Example\x00"].concat();
        assert_eq!(
            canonical_rdata(rtype::MX, &mx),
            [&[0, 10][..], b"\x04mail\x07example\x00"].concat()
        );
        let nsec = b"\x03WWW\x00\x00\x01\x40".to_vec();
        assert_eq!(canonical_rdata(rtype::NSEC, &nsec), nsec, "RFC 6840 §5.1");
        let txt = b"\x05HeLLo".to_vec();
        assert_eq!(canonical_rdata(rtype::TXT, &txt), txt);
        let truncated = [0u8, 10, 4, b'M'];
        assert_eq!(canonical_rdata(rtype::MX, &truncated), truncated);
    }

    /// An RRSIG RDATA with the given labels field and signer, no signature.
    fn rrsig_rdata(covered: u16, labels: u8, signer: &[u8]) -> Vec<u8> {
        let mut rdata = covered.to_be_bytes().to_vec();
        rdata.extend([13, labels]);
        rdata.extend(3600u32.to_be_bytes());
        rdata.extend(2_000_000_000u32.to_be_bytes());
        rdata.extend(1_000_000_000u32.to_be_bytes());
        rdata.extend(4242u16.to_be_bytes());
        rdata.extend(signer);
        rdata.extend([0xaa; 64]);
        rdata
    }

    #[test]
    fn signed_data_is_canonical() {
        let owner = b"\x03WWW\x07example\x00";
        let rrsig = rrsig_rdata(rtype::A, 2, b"\x07EXAMPLE\x00");
        // Out of order and duplicated: sorted and deduplicated.
        let rdatas = vec![vec![192, 0, 2, 2], vec![192, 0, 2, 1], vec![192, 0, 2, 2]];
        let data = signed_data(&rrsig, owner, rtype::A, &rdatas).unwrap();
        let mut expected = rrsig[..18].to_vec();
        expected.extend(b"\x07example\x00");
        for address in [[192, 0, 2, 1], [192, 0, 2, 2]] {
            expected.extend(b"\x03www\x07example\x00");
            expected.extend([0, 1, 0, 1]);
            expected.extend(3600u32.to_be_bytes());
            expected.extend([0, 4]);
            expected.extend(address);
        }
        assert_eq!(data, expected);
    }

    #[test]
    fn signed_data_of_a_wildcard_expansion_uses_the_wildcard_owner() {
        // An RRSIG of `*.example.` (labels 1) over the records at a.b.example.
        let rrsig = rrsig_rdata(rtype::TXT, 1, b"\x07example\x00");
        let data = signed_data(
            &rrsig,
            b"\x01a\x01b\x07example\x00",
            rtype::TXT,
            &[b"\x01x".to_vec()],
        )
        .unwrap();
        let owner_at = rrsig.len() - 64;
        assert_eq!(&data[owner_at..owner_at + 11], b"\x01*\x07example\x00");
        // Labels above the owner's count: not a signature of this name.
        let rrsig = rrsig_rdata(rtype::TXT, 3, b"\x07example\x00");
        assert_eq!(
            signed_data(&rrsig, b"\x03www\x07example\x00", rtype::TXT, &[]),
            None
        );
    }

    /// An MX RRset of `signed.example.` (mixed-case owner and targets, out
    /// of canonical order) signed by `dnssec-signzone` with an
    /// ECDSAP256SHA256 ZSK: the signed data we build must verify under the
    /// signature BIND made.
    #[test]
    fn signed_data_verifies_a_dnssec_signzone_signature() {
        use crate::zone::load_text;
        let text = "$ORIGIN signed.example.\n\
            @ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300\n\
            @ 3600 IN NS ns1\n\
            @ 3600 IN DNSKEY 256 3 13 TDJNYphLf8OW2WbBT3FON3wTEa8GZOM/z1r3FgkzGeUWyv7l1t8GrKy4ZCIGcK5J7cCNpaSJG/KmQnthS2WwVA==\n\
            ns1 3600 IN A 192.0.2.1\n\
            MX.Signed.Example. 3600 IN MX 10 Mail.signed.example.\n\
            mx 3600 IN MX 20 BACKUP.signed.example.\n\
            mx 3600 IN RRSIG MX 13 3 3600 20340101000000 20240101000000 50165 signed.example. PLULM/IpsaHxAf3JgjvFVXQNsDUefNUoAG1SUsmMLPO/ImBQds3DlHUJp38zSrgRvWi3FxoLlNsOZptqxhd7Aw==\n";
        let origin = name::from_text("signed.example").unwrap();
        let loaded = load_text(&origin, text, std::path::Path::new("t")).unwrap();
        let zone = &loaded.zone;
        let owner = name::from_text("mx.signed.example").unwrap();
        let rrsig = &zone.rrset(&owner, rtype::RRSIG).unwrap().rdatas[0];
        let mx = zone.rrset(&owner, rtype::MX).unwrap();
        let key = &zone.rrset(&origin, rtype::DNSKEY).unwrap().rdatas[0];
        let parsed = Rrsig::parse(rrsig).unwrap();
        assert_eq!(parsed.key_tag, key_tag(key));
        let data = signed_data(rrsig, &owner, rtype::MX, &mx.rdatas).unwrap();
        assert_eq!(
            verify(ECDSAP256SHA256, &key[4..], &data, parsed.signature),
            Verified::Valid
        );
        // One byte of an MX changed: no longer verifies.
        let mut changed = mx.rdatas.clone();
        changed[0][1] = 11;
        let data = signed_data(rrsig, &owner, rtype::MX, &changed).unwrap();
        assert_eq!(
            verify(ECDSAP256SHA256, &key[4..], &data, parsed.signature),
            Verified::Invalid
        );
    }
}
