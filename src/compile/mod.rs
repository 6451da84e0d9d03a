//! Zones → one immutable `AnswerTable`: every answer the server can give,
//! decided before any query arrives.
//!
//! The table maps each name that exists in a served zone (owners and empty
//! non-terminals, never names hidden below a zone cut) to a `Node`: what a
//! query for exactly that name gets, by type, and what a query for a name
//! below it gets when it is the closest encloser (NXDOMAIN, a wildcard
//! synthesis, a referral, a DNAME substitution). Answers are precompiled
//! bodies (see `body`); the fast path looks up, copies and patches.
//!
//! This module never touches sockets and is never called on the fast path
//! except through `AnswerTable::resolve`, which only reads.

mod body;
mod build;
mod dnssec;

pub use body::{AdditionalCut, Body, BodyBuilder, Owner, Section};
pub use build::{ZoneInput, compile};
pub use dnssec::{Denial, DenialChain, Piece};

use crate::wire::name;

pub type AnswerId = u32;

/// One precompiled response outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub rcode: u8,
    pub authoritative: bool,
    pub counts: [u16; 3],
    pub body_start: u32,
    pub body_len: u32,
    /// Offset within the body where the authority section starts.
    pub authority_at: u32,
    /// Offset within the body where the additional section starts.
    pub additional_at: u32,
    pub fixup_start: u32,
    pub fixup_len: u16,
    /// Pointers to the whole question name, stored after the fixups.
    pub question_pointer_len: u16,
    /// Where the additional section may be cut (see `AdditionalCut`).
    pub cuts_start: u32,
    pub cuts_len: u16,
    /// Length of the name this body was compiled for (see `body`).
    pub encloser_len: u8,
    /// The answer to give a query with the DO bit (RFC 3225): this one
    /// again, unless the zone is signed.
    pub dnssec: AnswerId,
    /// For DO answers whose proof depends on the question name: the
    /// NSEC/NSEC3 record block to add to the authority section, chosen per
    /// query (see `dnssec`).
    pub denial: Option<Denial>,
}

/// Answers for one name, by query type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypedAnswers {
    start: u32,
    len: u32,
    /// For every type not listed.
    other: AnswerId,
}

/// What a query for a name below a node gets when that node is its closest
/// existing ancestor (its closest encloser, RFC 4592 §3.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Below {
    /// The same answer for every name and type: NXDOMAIN, a referral, or
    /// SERVFAIL for a zone that failed to load.
    Fixed(AnswerId),
    /// Synthesised from the wildcard `*.<node>` (owner = the question).
    Wildcard(TypedAnswers),
    /// DNAME substitution (RFC 6672): the DNAME answer, then a CNAME made
    /// per query from the question and `target`; when `follow`, the
    /// substituted name is answered too (it is in the same zone).
    Dname {
        answer: AnswerId,
        target: u32,
        ttl: u32,
        follow: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    /// Where the node's name is in `AnswerTable::names`.
    name_start: u32,
    name_len: u8,
    pub exact: TypedAnswers,
    pub below: Below,
}

/// Outcome of looking a question up.
#[derive(Clone, Copy, Debug)]
pub enum Resolution<'a> {
    Answer(&'a Answer),
    /// A DNAME applies: write `answer`, synthesise the CNAME, then (when
    /// `follow`) answer the substituted name.
    Dname {
        answer: &'a Answer,
        target: &'a [u8],
        ttl: u32,
        follow: bool,
    },
    /// The name is in no served zone.
    NotAuthoritative,
}

/// The immutable table the fast path answers from.
#[derive(Debug, Default)]
pub struct AnswerTable {
    hasher: ahash::RandomState,
    /// Node indices, found by the hash of the node's name. Names live in
    /// one arena rather than one allocation each: a million-name zone
    /// would otherwise spend more on allocator overhead than on answers.
    index: hashbrown::HashTable<u32>,
    /// Every node's name (lowercased wire format), end to end.
    names: Vec<u8>,
    nodes: Vec<Node>,
    typed: Vec<(u16, AnswerId)>,
    answers: Vec<Answer>,
    bodies: Vec<u8>,
    fixups: Vec<u16>,
    additional_cuts: Vec<AdditionalCut>,
    dname_targets: Vec<Box<[u8]>>,
    /// Self-contained NSEC/NSEC3 record blocks (bytes in `bodies`).
    pieces: Vec<Piece>,
    /// Each signed zone's NSEC or NSEC3 chain.
    chains: Vec<DenialChain>,
    /// This server's identifier for NSID (RFC 5001), when configured.
    nsid: Option<Box<[u8]>>,
    /// Each zone's answer to EDNS EXPIRE (RFC 7314), shared with the slow
    /// path, which moves a secondary's expiry on every successful SOA check
    /// without publishing a new table.
    expiry: std::sync::Arc<ExpiryBoard>,
}

/// What an EDNS EXPIRE option is answered with for a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneExpiry {
    /// A primary: the SOA's expire.
    Fixed(u32),
    /// A secondary: its copy expires at this unix time.
    Until(u64),
}

/// Each zone's EXPIRE answer, by apex name: a primary's SOA expire
/// (fixed), or the unix time a secondary's copy expires (an atomic, moved
/// forward by the secondary's refresh thread; workers read it relaxed).
#[derive(Debug, Default)]
pub struct ExpiryBoard {
    zones: Vec<(Box<[u8]>, bool, std::sync::atomic::AtomicU64)>,
}

impl ExpiryBoard {
    pub fn new(zones: Vec<(Box<[u8]>, ZoneExpiry)>) -> ExpiryBoard {
        ExpiryBoard {
            zones: zones
                .into_iter()
                .map(|(origin, expiry)| match expiry {
                    ZoneExpiry::Fixed(seconds) => (
                        origin,
                        false,
                        std::sync::atomic::AtomicU64::new(u64::from(seconds)),
                    ),
                    ZoneExpiry::Until(at) => (origin, true, std::sync::atomic::AtomicU64::new(at)),
                })
                .collect(),
        }
    }

    /// A secondary zone's copy now expires at `at` (unix seconds).
    pub fn set_until(&self, apex: &[u8], at: u64) {
        if let Some((_, true, until)) = self.zones.iter().find(|(origin, _, _)| &**origin == apex) {
            until.store(at, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The EXPIRE value for zone `apex` at unix time `now`.
    pub fn seconds(&self, apex: &[u8], now: u64) -> Option<u32> {
        let (_, until, value) = self.zones.iter().find(|(origin, _, _)| &**origin == apex)?;
        let value = value.load(std::sync::atomic::Ordering::Relaxed);
        let seconds = if *until {
            value.saturating_sub(now)
        } else {
            value
        };
        Some(u32::try_from(seconds).unwrap_or(u32::MAX))
    }
}

impl AnswerTable {
    /// Finds the answer for lowercased `qname` and `qtype`.
    pub fn resolve(&self, qname: &[u8], qtype: u16) -> Resolution<'_> {
        if let Some(node) = self.find(qname) {
            return Resolution::Answer(self.typed_answer(&node.exact, qtype));
        }
        // Walk up to the closest encloser.
        let mut current = qname;
        while let Some(up) = name::parent(current) {
            if let Some(node) = self.find(up) {
                return match node.below {
                    Below::Fixed(answer) => Resolution::Answer(&self.answers[answer as usize]),
                    Below::Wildcard(typed) => Resolution::Answer(self.typed_answer(&typed, qtype)),
                    Below::Dname {
                        answer,
                        target,
                        ttl,
                        follow,
                    } => Resolution::Dname {
                        answer: &self.answers[answer as usize],
                        target: &self.dname_targets[target as usize],
                        ttl,
                        follow,
                    },
                };
            }
            current = up;
        }
        Resolution::NotAuthoritative
    }

    fn find(&self, name: &[u8]) -> Option<&Node> {
        let hash = self.hasher.hash_one(name);
        let id = self.index.find(hash, |&id| self.node_name(id) == name)?;
        self.nodes.get(*id as usize)
    }

    fn node_name(&self, id: u32) -> &[u8] {
        let node = &self.nodes[id as usize];
        &self.names[node.name_start as usize..node.name_start as usize + node.name_len as usize]
    }

    /// Adds the node for `name`, replacing one already there (a deeper
    /// zone's apex replaces its parent's delegation).
    fn insert_node(&mut self, name: &[u8], exact: TypedAnswers, below: Below) {
        let id = self.nodes.len() as u32;
        self.nodes.push(Node {
            name_start: self.names.len() as u32,
            name_len: name.len() as u8,
            exact,
            below,
        });
        self.names.extend_from_slice(name);
        let hash = self.hasher.hash_one(name);
        let (nodes, names, hasher) = (&self.nodes, &self.names, &self.hasher);
        let name_of = |id: u32| {
            let node = &nodes[id as usize];
            &names[node.name_start as usize..node.name_start as usize + node.name_len as usize]
        };
        match self.index.entry(
            hash,
            |&other| name_of(other) == name,
            |&other| hasher.hash_one(name_of(other)),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut occupied) => *occupied.get_mut() = id,
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(id);
            }
        }
    }

    /// The answer listed for `rtype` at exactly `name`, if the node lists
    /// one (not the default for unlisted types).
    fn listed_answer(&self, name: &[u8], rtype: u16) -> Option<AnswerId> {
        let node = self.find(name)?;
        let start = node.exact.start as usize;
        let listed = &self.typed[start..start + node.exact.len as usize];
        listed
            .iter()
            .find(|(listed_type, _)| *listed_type == rtype)
            .map(|(_, id)| *id)
    }

    /// `typed` with `rtype` answered by `answer` (added or replaced).
    fn with_listed(&mut self, typed: TypedAnswers, rtype: u16, answer: AnswerId) -> TypedAnswers {
        let start = typed.start as usize;
        let mut listed: Vec<(u16, AnswerId)> =
            self.typed[start..start + typed.len as usize].to_vec();
        listed.retain(|(listed_type, _)| *listed_type != rtype);
        listed.push((rtype, answer));
        let new_start = self.typed.len() as u32;
        self.typed.extend_from_slice(&listed);
        TypedAnswers {
            start: new_start,
            len: listed.len() as u32,
            other: typed.other,
        }
    }

    /// Adds the apex node of a zone. Where a parent zone served here
    /// delegates to it, the parent's DS answer is kept: DS is the parent's
    /// data (RFC 4035 §3.1.4.1), as Knot and NSD answer it.
    fn insert_apex(&mut self, name: &[u8], exact: TypedAnswers, below: Below) {
        let exact = match self.listed_answer(name, crate::wire::rtype::DS) {
            Some(parent_ds) => self.with_listed(exact, crate::wire::rtype::DS, parent_ds),
            None => exact,
        };
        self.insert_node(name, exact, below);
    }

    fn typed_answer(&self, typed: &TypedAnswers, qtype: u16) -> &Answer {
        let listed = &self.typed[typed.start as usize..(typed.start + typed.len) as usize];
        let id = listed
            .iter()
            .find(|(rtype, _)| *rtype == qtype)
            .map_or(typed.other, |(_, id)| *id);
        &self.answers[id as usize]
    }

    /// The answer for a query with the DO bit set.
    pub fn dnssec_variant<'a>(&'a self, answer: &'a Answer) -> &'a Answer {
        self.answers.get(answer.dnssec as usize).unwrap_or(answer)
    }

    pub fn body(&self, answer: &Answer) -> &[u8] {
        &self.bodies[answer.body_start as usize..(answer.body_start + answer.body_len) as usize]
    }

    /// Sets the NSID this table's replies carry when a query asks for it;
    /// at most 128 bytes are kept.
    pub fn set_nsid(&mut self, nsid: &[u8]) {
        self.nsid = Some(nsid[..nsid.len().min(128)].into());
    }

    pub fn nsid(&self) -> Option<&[u8]> {
        self.nsid.as_deref()
    }

    /// Sets the board of each zone's EXPIRE answer.
    pub fn set_expiry(&mut self, expiry: std::sync::Arc<ExpiryBoard>) {
        self.expiry = expiry;
    }

    /// The EXPIRE value for zone `apex` at unix time `now`: the SOA expire
    /// of a primary, the seconds left of a secondary's copy. A short scan:
    /// only queries that carry the option ask.
    pub fn expire_seconds(&self, apex: &[u8], now: u64) -> Option<u32> {
        self.expiry.seconds(apex, now)
    }

    /// Where the answer's additional section may be cut, in body order.
    pub fn additional_cuts(&self, answer: &Answer) -> &[AdditionalCut] {
        let start = answer.cuts_start as usize;
        &self.additional_cuts[start..start + answer.cuts_len as usize]
    }

    /// The body's movable pointers, and its pointers to the question name.
    pub fn pointers(&self, answer: &Answer) -> (&[u16], &[u16]) {
        let start = answer.fixup_start as usize;
        let middle = start + answer.fixup_len as usize;
        let end = middle + answer.question_pointer_len as usize;
        (&self.fixups[start..middle], &self.fixups[middle..end])
    }

    /// Number of names in the table (owners and empty non-terminals).
    pub fn name_count(&self) -> usize {
        self.index.len()
    }

    /// Room for about `names` nodes, `answers` answers and `body_bytes` of
    /// bodies, reserved up front.
    fn reserve(&mut self, names: usize, answers: usize, body_bytes: usize) {
        let (nodes, names_arena, hasher) = (&self.nodes, &self.names, &self.hasher);
        self.index.reserve(names, |&id| {
            let node = &nodes[id as usize];
            hasher.hash_one(
                &names_arena
                    [node.name_start as usize..node.name_start as usize + node.name_len as usize],
            )
        });
        self.names.reserve(names * 24);
        self.nodes.reserve(names);
        self.typed.reserve(answers + names);
        self.answers.reserve(answers);
        self.bodies.reserve(body_bytes);
        self.fixups.reserve(answers * 2);
    }

    /// Gives back what the vectors over-allocated while growing (up to half
    /// of each): the table is immutable from now on.
    fn shrink_to_fit(&mut self) {
        let (nodes, names, hasher) = (&self.nodes, &self.names, &self.hasher);
        self.index.shrink_to_fit(|&id| {
            let node = &nodes[id as usize];
            hasher.hash_one(
                &names[node.name_start as usize..node.name_start as usize + node.name_len as usize],
            )
        });
        self.names.shrink_to_fit();
        self.nodes.shrink_to_fit();
        self.typed.shrink_to_fit();
        self.answers.shrink_to_fit();
        self.bodies.shrink_to_fit();
        self.fixups.shrink_to_fit();
        self.additional_cuts.shrink_to_fit();
        self.pieces.shrink_to_fit();
        self.chains.shrink_to_fit();
    }

    /// Approximate heap bytes held, by part, for the start-up log.
    pub fn memory_bytes(&self) -> Vec<(&'static str, usize)> {
        use std::mem::size_of;
        vec![
            ("index", self.index.capacity() * (size_of::<u32>() + 1)),
            ("names", self.names.capacity()),
            ("nodes", self.nodes.capacity() * size_of::<Node>()),
            (
                "typed",
                self.typed.capacity() * size_of::<(u16, AnswerId)>(),
            ),
            ("answers", self.answers.capacity() * size_of::<Answer>()),
            ("bodies", self.bodies.capacity()),
            ("fixups", self.fixups.capacity() * size_of::<u16>()),
        ]
    }
}
