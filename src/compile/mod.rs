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

use std::collections::HashMap;

pub use body::{Body, BodyBuilder, Owner, Section};
pub use build::{ZoneInput, compile};

use crate::wire::name;

pub type AnswerId = u32;

/// One precompiled response outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub rcode: u8,
    pub authoritative: bool,
    /// A referral whose additional section holds glue for name servers inside
    /// the delegated zone: if it cannot be sent whole, set TC (RFC 9471).
    pub glue_required: bool,
    pub counts: [u16; 3],
    pub body_start: u32,
    pub body_len: u32,
    /// Offset within the body where the additional section starts.
    pub additional_at: u32,
    pub fixup_start: u32,
    pub fixup_len: u32,
    /// Pointers to the whole question name, stored after the fixups.
    pub question_pointer_len: u32,
    /// Length of the name this body was compiled for (see `body`).
    pub encloser_len: u8,
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
    names: HashMap<Box<[u8]>, u32, ahash::RandomState>,
    nodes: Vec<Node>,
    typed: Vec<(u16, AnswerId)>,
    answers: Vec<Answer>,
    bodies: Vec<u8>,
    fixups: Vec<u16>,
    dname_targets: Vec<Box<[u8]>>,
}

impl AnswerTable {
    /// Finds the answer for lowercased `qname` and `qtype`.
    pub fn resolve(&self, qname: &[u8], qtype: u16) -> Resolution<'_> {
        if let Some(&node) = self.names.get(qname) {
            return Resolution::Answer(self.typed_answer(&self.nodes[node as usize].exact, qtype));
        }
        // Walk up to the closest encloser.
        let mut current = qname;
        while let Some(up) = name::parent(current) {
            if let Some(&node) = self.names.get(up) {
                return match self.nodes[node as usize].below {
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

    fn typed_answer(&self, typed: &TypedAnswers, qtype: u16) -> &Answer {
        let listed = &self.typed[typed.start as usize..(typed.start + typed.len) as usize];
        let id = listed
            .iter()
            .find(|(rtype, _)| *rtype == qtype)
            .map_or(typed.other, |(_, id)| *id);
        &self.answers[id as usize]
    }

    pub fn body(&self, answer: &Answer) -> &[u8] {
        &self.bodies[answer.body_start as usize..(answer.body_start + answer.body_len) as usize]
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
        self.names.len()
    }
}
