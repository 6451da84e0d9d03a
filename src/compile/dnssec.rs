//! The DNSSEC part of the table: what a signed zone's answers need beyond
//! their precompiled DO bodies.
//!
//! Nearly every DO=1 answer is a body like any other, compiled beside the
//! DO=0 one (`Answer::dnssec` links them). Two proofs depend on the exact
//! question name, which no body can know: the NSEC covering the name of an
//! NXDOMAIN or a wildcard answer (RFC 4035 §3.1.3.2, §3.1.3.3), and the
//! NSEC3 covering its next closer name (RFC 5155 §7.2.2, §7.2.6). For them
//! each signed zone keeps a `DenialChain`: its NSEC owners in canonical
//! order, or its NSEC3 hashes in hash order, each with a `Piece` (the
//! NSEC/NSEC3 RRset and its RRSIGs as a self-contained record block). An
//! answer that needs one carries a `Denial`; the fast path binary-searches
//! the chain (and for NSEC3 hashes one name into a stack buffer) and
//! copies the piece into the authority section.
//!
//! The compile-time half (`ZoneSigning`) finds the records each proof
//! needs; `build` decides which proof an answer gets.

use std::cmp::Ordering;

use super::AnswerTable;
use crate::wire::dnssec::{
    NSEC3_HASH_LEN, NSEC3_ITERATIONS_MAX, Nsec3Params, canonical_cmp, next_closer, nsec3_hash,
    nsec3_owner_hash, rrsig_type_covered,
};
use crate::wire::name;
use crate::wire::rtype;
use crate::zone::{Rrset, Zone};

/// No piece: the value of unused `Denial::skip` slots.
pub const NO_PIECE: u32 = u32::MAX;

/// A block of records (an NSEC or NSEC3 RRset and its RRSIGs) that can be
/// copied into any reply for a name of its zone, stored in the table's body
/// bytes. Its first owner name ends in a pointer to the zone's name inside
/// the question; the other owners are pointers to the first. Both are
/// written when the block is placed (`AnswerTable::write_piece`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub start: u32,
    pub len: u32,
    pub count: u16,
    /// Length of the zone's name (the suffix the first owner points to).
    origin_len: u8,
    /// In `AnswerTable::fixups` from `fixup_start`: positions of pointers
    /// to the zone's name, then positions of pointers to the first owner.
    fixup_start: u32,
    origin_pointers: u8,
    owner_pointers: u8,
}

/// The per-query proof an answer needs (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denial {
    /// Index into `AnswerTable::chains`.
    pub chain: u32,
    /// Pieces the body already holds: when the covering record is one of
    /// them it is not repeated (RFC 4035 §3.1.3.2 wants each NSEC once).
    pub skip: [u32; 2],
}

/// How a chain's keys are ordered and looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ChainKind {
    /// Keys are owner names (lowercased wire format), canonical order.
    Nsec,
    /// Keys are 20-byte SHA-1 hashes, in byte order; a query name's next
    /// closer name is hashed with this salt and iteration count.
    Nsec3 { salt: Box<[u8]>, iterations: u16 },
}

/// One zone's NSEC or NSEC3 chain (see the module docs).
#[derive(Clone, Debug)]
pub struct DenialChain {
    kind: ChainKind,
    /// The keys, end to end; key `i` is `keys[starts[i]..starts[i + 1]]`.
    keys: Vec<u8>,
    starts: Vec<u32>,
    /// The piece of each key.
    pieces: Vec<u32>,
}

impl DenialChain {
    fn len(&self) -> usize {
        self.pieces.len()
    }

    fn key(&self, index: usize) -> &[u8] {
        &self.keys[self.starts[index] as usize..self.starts[index + 1] as usize]
    }

    /// The index of the last key at or before `target` in the chain's
    /// order, wrapping to the last key for a target before the first (the
    /// last NSEC/NSEC3 covers up to the end of the chain and round to its
    /// start). `None` for an empty chain.
    fn covering(&self, compare: impl Fn(&[u8]) -> Ordering) -> Option<usize> {
        let count = self.len();
        if count == 0 {
            return None;
        }
        let mut low = 0;
        let mut high = count;
        while low < high {
            let middle = (low + high) / 2;
            if compare(self.key(middle)) == Ordering::Greater {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        Some(if low == 0 { count - 1 } else { low - 1 })
    }
}

impl AnswerTable {
    /// The record block proving what `denial` proves for `name` (the
    /// question name, or the name a DNAME substituted), unless the body
    /// already holds it. `encloser_len` is the length of the name the
    /// answer was compiled for (NSEC3: the closest encloser). Allocates
    /// nothing.
    pub fn denial_piece(
        &self,
        denial: &Denial,
        name: &[u8],
        encloser_len: usize,
    ) -> Option<&Piece> {
        let piece = self.denial_piece_id(denial, name, encloser_len)?;
        self.pieces.get(piece as usize)
    }

    /// Copies `piece` to `out[at..]` and writes its pointers, for a reply
    /// whose name for the zone (the question's, or a DNAME's substituted
    /// name) is the `name_len` bytes at `name_at`. `at` must be below
    /// 0x3FFF, the highest offset a pointer reaches.
    pub fn write_piece(
        &self,
        piece: &Piece,
        out: &mut [u8],
        at: usize,
        name_at: usize,
        name_len: usize,
    ) {
        let start = piece.start as usize;
        let len = piece.len as usize;
        let target = &mut out[at..at + len];
        target.copy_from_slice(&self.bodies[start..start + len]);
        let origin_at = name_at + name_len - piece.origin_len as usize;
        let fixups = &self.fixups[piece.fixup_start as usize..];
        let (origin_pointers, rest) = fixups.split_at(piece.origin_pointers as usize);
        for &position in origin_pointers {
            let position = position as usize;
            target[position..position + 2]
                .copy_from_slice(&(0xC000 | origin_at as u16).to_be_bytes());
        }
        for &position in &rest[..piece.owner_pointers as usize] {
            let position = position as usize;
            target[position..position + 2].copy_from_slice(&(0xC000 | at as u16).to_be_bytes());
        }
    }

    fn denial_piece_id(&self, denial: &Denial, name: &[u8], encloser_len: usize) -> Option<u32> {
        let chain = self.chains.get(denial.chain as usize)?;
        let index = match &chain.kind {
            ChainKind::Nsec => chain.covering(|key| canonical_cmp(key, name))?,
            ChainKind::Nsec3 { salt, iterations } => {
                // The next closer name of the closest encloser the body
                // was compiled for (RFC 5155 §7.2.1).
                let next = next_closer(name, encloser_len)?;
                let hash = nsec3_hash(next, salt, *iterations)?;
                chain.covering(|key| key.cmp(&hash[..]))?
            }
        };
        let piece = *chain.pieces.get(index)?;
        (!denial.skip.contains(&piece)).then_some(piece)
    }
}

/// Which denial records a signed zone uses.
#[derive(Clone, Debug)]
pub enum Mode {
    Nsec,
    Nsec3(Nsec3Params),
}

/// What compiling a signed zone's answers needs to know about its
/// signatures and its NSEC or NSEC3 chain.
pub struct ZoneSigning {
    pub mode: Mode,
    /// Index of this zone's chain in `AnswerTable::chains`.
    pub chain: u32,
    /// The chain's owners, in the chain's order (NSEC: canonical order of
    /// names; NSEC3: hash order), with their hashes for NSEC3.
    owners: Vec<Vec<u8>>,
    hashes: Vec<[u8; NSEC3_HASH_LEN]>,
    /// The piece of each owner.
    pieces: Vec<u32>,
}

/// The RRSIG RDATAs at `rrsets`' owner covering `covered`.
pub fn signatures(rrsets: &[Rrset], covered: u16) -> Vec<Vec<u8>> {
    rrsets
        .iter()
        .filter(|rrset| rrset.rtype == rtype::RRSIG)
        .flat_map(|rrset| rrset.rdatas.iter())
        .filter(|rdata| rrsig_type_covered(rdata) == Some(covered))
        .cloned()
        .collect()
}

/// Renders `owner`'s `denial_type` RRset and its RRSIGs as a `Piece` into
/// `table` (see `Piece` for the names). NSEC and NSEC3 RDATA and RRSIG
/// signer names are never compressed (RFC 4034 §4.1.1, RFC 5155 §3.3).
fn render_piece(
    table: &mut AnswerTable,
    origin: &[u8],
    owner: &[u8],
    rrsets: &[Rrset],
    denial_type: u16,
) -> Piece {
    let start = table.bodies.len();
    let fixup_start = table.fixups.len() as u32;
    let mut origin_pointers = Vec::new();
    let mut owner_pointers = Vec::new();
    let mut count = 0;
    let Some(rrset) = rrsets.iter().find(|r| r.rtype == denial_type) else {
        return Piece {
            start: start as u32,
            len: 0,
            count: 0,
            origin_len: origin.len() as u8,
            fixup_start,
            origin_pointers: 0,
            owner_pointers: 0,
        };
    };
    let sigs = signatures(rrsets, denial_type);
    let records = rrset
        .rdatas
        .iter()
        .map(|rdata| (denial_type, rdata))
        .chain(sigs.iter().map(|rdata| (rtype::RRSIG, rdata)));
    // A pointer (2 bytes) only where it is shorter than the name.
    let point_to_origin = origin.len() > 2;
    let owner_written = owner.len() - origin.len() + if point_to_origin { 2 } else { origin.len() };
    for (record_type, rdata) in records {
        let bytes = &mut table.bodies;
        let here = (bytes.len() - start) as u16;
        if count == 0 || owner_written <= 2 {
            if point_to_origin {
                bytes.extend_from_slice(&owner[..owner.len() - origin.len()]);
                origin_pointers.push((bytes.len() - start) as u16);
                bytes.extend_from_slice(&[0xC0, 0]);
            } else {
                bytes.extend_from_slice(owner);
            }
        } else {
            owner_pointers.push(here);
            bytes.extend_from_slice(&[0xC0, 0]);
        }
        bytes.extend_from_slice(&record_type.to_be_bytes());
        bytes.extend_from_slice(&rtype::CLASS_IN.to_be_bytes());
        bytes.extend_from_slice(&rrset.ttl.to_be_bytes());
        bytes.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        bytes.extend_from_slice(rdata);
        count += 1;
    }
    table.fixups.extend_from_slice(&origin_pointers);
    table.fixups.extend_from_slice(&owner_pointers);
    Piece {
        start: start as u32,
        len: (table.bodies.len() - start) as u32,
        count,
        origin_len: origin.len() as u8,
        fixup_start,
        origin_pointers: origin_pointers.len() as u8,
        owner_pointers: owner_pointers.len() as u8,
    }
}

impl ZoneSigning {
    /// The zone's signing facts, or `None` for an unsigned zone (no DNSKEY
    /// at the apex) or one with neither NSEC nor a usable NSEC3 chain;
    /// `authoritative` tells which owners are in the zone's own data
    /// (neither occluded nor below a cut). Renders each chain record as a
    /// piece into `table`.
    pub fn new(
        zone: &Zone,
        authoritative: impl Fn(&[u8]) -> bool,
        table: &mut AnswerTable,
    ) -> Option<ZoneSigning> {
        let origin = zone.origin.as_slice();
        zone.rrset(origin, rtype::DNSKEY)?;
        let nsec3_params = zone
            .rrset(origin, rtype::NSEC3PARAM)
            .and_then(|param| Nsec3Params::parse(param.rdatas.first()?))
            .filter(|params| params.iterations <= NSEC3_ITERATIONS_MAX);
        let mut owners: Vec<(Vec<u8>, [u8; NSEC3_HASH_LEN])> = Vec::new();
        let mode = match nsec3_params {
            Some(params) => {
                for (owner, rrsets) in &zone.nodes {
                    let Some(nsec3) = rrsets.iter().find(|r| r.rtype == rtype::NSEC3) else {
                        continue;
                    };
                    let in_chain = nsec3
                        .rdatas
                        .first()
                        .and_then(|rdata| Nsec3Params::parse(rdata))
                        .is_some_and(|own| own.same_chain(&params));
                    if in_chain && let Some(hash) = nsec3_owner_hash(owner) {
                        owners.push((owner.clone(), hash));
                    }
                }
                owners.sort_by_key(|owner| owner.1);
                Mode::Nsec3(params)
            }
            None => {
                for (owner, rrsets) in &zone.nodes {
                    if rrsets.iter().any(|r| r.rtype == rtype::NSEC) && authoritative(owner) {
                        owners.push((owner.clone(), [0; NSEC3_HASH_LEN]));
                    }
                }
                owners.sort_by(|a, b| canonical_cmp(&a.0, &b.0));
                Mode::Nsec
            }
        };
        if owners.is_empty() {
            return None;
        }
        let denial_type = match mode {
            Mode::Nsec => rtype::NSEC,
            Mode::Nsec3(_) => rtype::NSEC3,
        };
        let mut pieces = Vec::with_capacity(owners.len());
        let mut chain = DenialChain {
            kind: match &mode {
                Mode::Nsec => ChainKind::Nsec,
                Mode::Nsec3(params) => ChainKind::Nsec3 {
                    salt: params.salt.clone().into_boxed_slice(),
                    iterations: params.iterations,
                },
            },
            keys: Vec::new(),
            starts: vec![0],
            pieces: Vec::with_capacity(owners.len()),
        };
        for (owner, hash) in &owners {
            let rrsets = zone.nodes.get(owner).map_or(&[][..], Vec::as_slice);
            let piece = render_piece(table, origin, owner, rrsets, denial_type);
            table.pieces.push(piece);
            let piece = (table.pieces.len() - 1) as u32;
            pieces.push(piece);
            match mode {
                Mode::Nsec => chain.keys.extend_from_slice(owner),
                Mode::Nsec3(_) => chain.keys.extend_from_slice(hash),
            }
            chain.starts.push(chain.keys.len() as u32);
            chain.pieces.push(piece);
        }
        table.chains.push(chain);
        let (owners, hashes) = owners.into_iter().unzip();
        Some(ZoneSigning {
            mode,
            chain: (table.chains.len() - 1) as u32,
            owners,
            hashes,
            pieces,
        })
    }

    pub fn denial_type(&self) -> u16 {
        match self.mode {
            Mode::Nsec => rtype::NSEC,
            Mode::Nsec3(_) => rtype::NSEC3,
        }
    }

    /// The owner and piece of chain record `index`.
    pub fn record(&self, index: usize) -> (&[u8], u32) {
        (&self.owners[index], self.pieces[index])
    }

    fn hash(&self, name: &[u8]) -> Option<[u8; NSEC3_HASH_LEN]> {
        match &self.mode {
            Mode::Nsec => None,
            Mode::Nsec3(params) => nsec3_hash(name, &params.salt, params.iterations),
        }
    }

    /// The chain record whose owner is `name` (NSEC) or whose hash is
    /// `name`'s (NSEC3).
    pub fn matching(&self, name: &[u8]) -> Option<usize> {
        match self.mode {
            Mode::Nsec => self
                .owners
                .binary_search_by(|owner| canonical_cmp(owner, name))
                .ok(),
            Mode::Nsec3(_) => {
                let hash = self.hash(name)?;
                self.hashes.binary_search(&hash).ok()
            }
        }
    }

    /// The chain record covering `name` (or matching it): the last at or
    /// before it in the chain's order, wrapping round.
    pub fn covering(&self, name: &[u8]) -> Option<usize> {
        let count = self.owners.len();
        let after = match self.mode {
            Mode::Nsec => self
                .owners
                .partition_point(|owner| canonical_cmp(owner, name) != Ordering::Greater),
            Mode::Nsec3(_) => {
                let hash = self.hash(name)?;
                self.hashes.partition_point(|owner| *owner <= hash)
            }
        };
        Some(if after == 0 { count - 1 } else { after - 1 })
    }

    /// The closest ancestor of `name` (or `name` itself) with a matching
    /// NSEC3, and the next closer name below it: the closest provable
    /// encloser (RFC 5155 §7.2.1). `None` when nothing matches (a broken
    /// chain without the apex).
    pub fn closest_provable_encloser<'n>(&self, name: &'n [u8]) -> Option<(usize, &'n [u8])> {
        let mut current = name;
        loop {
            if let Some(index) = self.matching(current) {
                let next = next_closer(name, current.len()).unwrap_or(name);
                return Some((index, next));
            }
            current = name::parent(current)?;
        }
    }

    /// True for an NSEC3 owner name (a hash below the apex), which is not
    /// part of the zone's namespace (RFC 5155 §7.2.8).
    pub fn is_nsec3_owner(&self, owner: &[u8]) -> bool {
        matches!(self.mode, Mode::Nsec3(_))
            && nsec3_owner_hash(owner).is_some_and(|hash| self.hashes.binary_search(&hash).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(names: &[&str]) -> DenialChain {
        let mut chain = DenialChain {
            kind: ChainKind::Nsec,
            keys: Vec::new(),
            starts: vec![0],
            pieces: Vec::new(),
        };
        for (index, text) in names.iter().enumerate() {
            chain
                .keys
                .extend_from_slice(&crate::wire::name::from_text(text).unwrap());
            chain.starts.push(chain.keys.len() as u32);
            chain.pieces.push(index as u32);
        }
        chain
    }

    #[test]
    fn covering_finds_the_predecessor_in_canonical_order() {
        let chain = chain(&["example", "a.example", "b.a.example", "z.example"]);
        let cover = |text: &str| {
            let name = crate::wire::name::from_text(text).unwrap();
            chain.covering(|key| canonical_cmp(key, &name)).unwrap()
        };
        assert_eq!(cover("0.example"), 0);
        assert_eq!(cover("a.example"), 1);
        assert_eq!(cover("0.a.example"), 1);
        assert_eq!(cover("c.a.example"), 2);
        assert_eq!(cover("y.example"), 2);
        assert_eq!(cover("zz.example"), 3);
        assert_eq!(cover("a.z.example"), 3);
        // Before the first key: the last one covers it, round the end.
        assert_eq!(chain.covering(|_| Ordering::Greater), Some(3));
    }
}
