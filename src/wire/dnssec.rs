//! DNSSEC wire rules the server needs to serve signed zones: the canonical
//! order of names (RFC 4034 §6.1), the NSEC3 owner hash (RFC 5155 §5) and
//! the fields of RRSIG and NSEC3 RDATA. No server state; everything here
//! works on borrowed bytes and stack buffers, so the fast path may call it.

use std::cmp::Ordering;

use sha1::{Digest, Sha1};

use super::name::{self, NAME_LEN_MAX};

/// Most labels a wire name can have (a 255-byte name of one-byte labels).
const LABELS_MAX: usize = NAME_LEN_MAX / 2 + 1;
/// Length of an NSEC3 SHA-1 hash (RFC 5155 §5, hash algorithm 1).
pub const NSEC3_HASH_LEN: usize = 20;
/// NSEC3 hash algorithm SHA-1, the only one defined (RFC 5155 §11).
pub const NSEC3_HASH_SHA1: u8 = 1;
/// Most NSEC3 iterations we compute per query. RFC 9276 §3.2 lets
/// validators treat zones above 150 as insecure and Knot refuses to sign
/// above a few hundred; a bound keeps a hostile zone from costing
/// unbounded work per query. Zones above it answer without the per-query
/// proof (see `compile::dnssec`).
pub const NSEC3_ITERATIONS_MAX: u16 = 500;

/// Where each label of `name` starts, and how many there are.
fn label_starts(name: &[u8], starts: &mut [u8; LABELS_MAX]) -> usize {
    let mut count = 0;
    let mut at = 0;
    while let Some(&length) = name.get(at) {
        if length == 0 || count == LABELS_MAX {
            break;
        }
        starts[count] = at as u8;
        count += 1;
        at += 1 + length as usize;
    }
    count
}

/// The label starting at `start` in `name`, without its length byte.
fn label_at(name: &[u8], start: u8) -> &[u8] {
    let start = start as usize;
    let length = name[start] as usize;
    &name[start + 1..start + 1 + length]
}

/// Compares two wire names in DNSSEC canonical order (RFC 4034 §6.1):
/// label by label from the root, each label as lowercased bytes, a name
/// sorting before the names below it. Allocates nothing.
pub fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let mut a_starts = [0u8; LABELS_MAX];
    let mut b_starts = [0u8; LABELS_MAX];
    let a_count = label_starts(a, &mut a_starts);
    let b_count = label_starts(b, &mut b_starts);
    for index in 0..a_count.min(b_count) {
        let a_label = label_at(a, a_starts[a_count - 1 - index]);
        let b_label = label_at(b, b_starts[b_count - 1 - index]);
        let ordering = a_label
            .iter()
            .map(u8::to_ascii_lowercase)
            .cmp(b_label.iter().map(u8::to_ascii_lowercase));
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    a_count.cmp(&b_count)
}

/// The type an RRSIG covers (RFC 4034 §3.1.1).
pub fn rrsig_type_covered(rdata: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*rdata.first()?, *rdata.get(1)?]))
}

/// The labels field of an RRSIG (RFC 4034 §3.1.3).
pub fn rrsig_labels(rdata: &[u8]) -> Option<u8> {
    rdata.get(3).copied()
}

/// NSEC3 / NSEC3PARAM parameters (RFC 5155 §3.1, §4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nsec3Params {
    pub algorithm: u8,
    pub flags: u8,
    pub iterations: u16,
    pub salt: Vec<u8>,
}

impl Nsec3Params {
    /// Reads the fields NSEC3 and NSEC3PARAM RDATA share.
    pub fn parse(rdata: &[u8]) -> Option<Nsec3Params> {
        let salt_len = *rdata.get(4)? as usize;
        Some(Nsec3Params {
            algorithm: *rdata.first()?,
            flags: *rdata.get(1)?,
            iterations: u16::from_be_bytes([*rdata.get(2)?, *rdata.get(3)?]),
            salt: rdata.get(5..5 + salt_len)?.to_vec(),
        })
    }

    /// True when an NSEC3 record with these parameters belongs to the
    /// chain NSEC3PARAM `other` names (the opt-out flag aside).
    pub fn same_chain(&self, other: &Nsec3Params) -> bool {
        self.algorithm == other.algorithm
            && self.iterations == other.iterations
            && self.salt == other.salt
    }

    /// The Opt-Out flag (RFC 5155 §3.1.2.1).
    pub fn opt_out(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// The NSEC3 hash of `name` (RFC 5155 §5): SHA-1 over the lowercased wire
/// name and the salt, then `iterations` more times over the digest and the
/// salt. Uses stack buffers only. `None` for a name or salt too long.
pub fn nsec3_hash(name: &[u8], salt: &[u8], iterations: u16) -> Option<[u8; NSEC3_HASH_LEN]> {
    let mut lowered = [0u8; NAME_LEN_MAX];
    let lowered = lowered.get_mut(..name.len())?;
    lowered.copy_from_slice(name);
    lowered.make_ascii_lowercase();
    let mut hasher = Sha1::new();
    hasher.update(&*lowered);
    hasher.update(salt);
    let mut digest: [u8; NSEC3_HASH_LEN] = hasher.finalize().into();
    for _ in 0..iterations {
        let mut hasher = Sha1::new();
        hasher.update(digest);
        hasher.update(salt);
        digest = hasher.finalize().into();
    }
    Some(digest)
}

/// Decodes the first label of an NSEC3 owner, the base32hex hash
/// (RFC 4648 §7, no padding, either case).
pub fn nsec3_owner_hash(owner: &[u8]) -> Option<[u8; NSEC3_HASH_LEN]> {
    let length = *owner.first()? as usize;
    let label = owner.get(1..1 + length)?;
    if label.len() != 32 {
        return None;
    }
    let mut out = [0u8; NSEC3_HASH_LEN];
    let mut bits: u64 = 0;
    let mut bit_count = 0;
    let mut written = 0;
    for &character in label {
        let value = match character.to_ascii_lowercase() {
            digit @ b'0'..=b'9' => digit - b'0',
            letter @ b'a'..=b'v' => letter - b'a' + 10,
            _ => return None,
        };
        bits = (bits << 5) | u64::from(value);
        bit_count += 5;
        if bit_count >= 8 {
            bit_count -= 8;
            out[written] = (bits >> bit_count) as u8;
            written += 1;
        }
    }
    Some(out)
}

/// The lowercase base32hex text of a hash, for NSEC3 owner names.
pub fn base32hex(hash: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut text = String::with_capacity(hash.len() * 8 / 5 + 1);
    let mut bits: u64 = 0;
    let mut bit_count = 0;
    for &byte in hash {
        bits = (bits << 8) | u64::from(byte);
        bit_count += 8;
        while bit_count >= 5 {
            bit_count -= 5;
            text.push(ALPHABET[((bits >> bit_count) & 31) as usize] as char);
        }
    }
    if bit_count > 0 {
        text.push(ALPHABET[((bits << (5 - bit_count)) & 31) as usize] as char);
    }
    text
}

/// The suffix of `name` one label longer than `encloser_len` bytes: the
/// next closer name (RFC 5155 §1.3) of a name whose closest encloser is
/// that long. `None` when `name` is not longer than the encloser.
pub fn next_closer(name: &[u8], encloser_len: usize) -> Option<&[u8]> {
    let mut current = name;
    loop {
        let up = name::parent(current)?;
        if up.len() == encloser_len {
            return Some(current);
        }
        if up.len() < encloser_len {
            return None;
        }
        current = up;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::name::from_text;

    #[test]
    fn canonical_order_of_rfc_4034_example() {
        // RFC 4034 §6.1, in order.
        let names = [
            "example",
            "a.example",
            "yljkjljk.a.example",
            "Z.a.example",
            "zABC.a.EXAMPLE",
            "z.example",
            "\\001.z.example",
            "*.z.example",
            "\\200.z.example",
        ];
        let wire: Vec<Vec<u8>> = names
            .iter()
            .map(|text| {
                // from_text lowercases; keep one upper-case name as written.
                let mut name = from_text(text).unwrap();
                if *text == "Z.a.example" {
                    name[1] = b'Z';
                }
                name
            })
            .collect();
        for pair in wire.windows(2) {
            assert_eq!(canonical_cmp(&pair[0], &pair[1]), Ordering::Less);
            assert_eq!(canonical_cmp(&pair[1], &pair[0]), Ordering::Greater);
        }
        assert_eq!(
            canonical_cmp(&from_text("A.b").unwrap(), b"\x01A\x01b\x00"),
            Ordering::Equal
        );
        assert_eq!(
            canonical_cmp(&[0], &from_text("com").unwrap()),
            Ordering::Less
        );
    }

    #[test]
    fn nsec3_hash_of_rfc_5155_appendix_a() {
        // RFC 5155 Appendix A: salt aabbccdd, 12 iterations.
        let salt = [0xaa, 0xbb, 0xcc, 0xdd];
        for (name, hash) in [
            ("example", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"),
            ("a.example", "35mthgpgcu1qg68fab165klnsnk3dpvl"),
            ("ai.example", "gjeqe526plbf1g8mklp59enfd789njgi"),
            ("*.w.example", "r53bq7cc2uvmubfu5ocmm6pers9tk9en"),
        ] {
            let computed = nsec3_hash(&from_text(name).unwrap(), &salt, 12).unwrap();
            assert_eq!(base32hex(&computed), hash, "{name}");
            let owner = from_text(&format!("{hash}.example")).unwrap();
            assert_eq!(nsec3_owner_hash(&owner), Some(computed));
        }
    }

    #[test]
    fn next_closer_names() {
        let name = from_text("a.b.example").unwrap();
        let example = from_text("example").unwrap();
        assert_eq!(next_closer(&name, example.len()), Some(&name[2..]));
        assert_eq!(next_closer(&name, name.len() - 2), Some(&name[..]));
        assert_eq!(next_closer(&name, name.len()), None);
        assert_eq!(next_closer(&name, 1), Some(&name[4..]));
    }
}
