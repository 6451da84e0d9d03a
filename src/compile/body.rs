//! Builds the bytes that follow the question in a response: the answer,
//! authority and additional sections, with name compression.
//!
//! A body is compiled for a question of a known shape: the question name is
//! some prefix (unknown, possibly empty) followed by the `encloser` name the
//! body was compiled for. Compression pointers may point into that encloser
//! inside the question, or into the body itself; both move when the prefix
//! is longer than nothing, so their positions are listed as fixups and the
//! fast path relocates them (see `respond`). Pointers to the whole question
//! name (`Owner::Question`, offset 12) are listed apart: they only move when
//! the body answers a name other than the question (after a DNAME).

use std::collections::HashMap;

use crate::wire::name::{self, NAME_LEN_MAX};
use crate::wire::query::HEADER_LEN;
use crate::wire::rtype::{self, RdataNames};

/// The owner name of a record being written.
#[derive(Clone, Copy, Debug)]
pub enum Owner<'a> {
    /// Whatever the question name is (wildcard synthesis, RFC 4592 §3.3.1).
    Question,
    /// A name from the zone (lowercased wire format).
    Name(&'a [u8]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Answer = 0,
    Authority = 1,
    Additional = 2,
}

/// Highest offset a compression target may have: pointers hold 14 bits and
/// the fast path may add up to a whole name's length to them.
const POINTER_TARGET_MAX: usize = 0x3FFF - NAME_LEN_MAX;

/// A finished body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Body {
    pub bytes: Vec<u8>,
    /// Offsets in `bytes` of compression pointers into the encloser or the
    /// body itself: they move when the question or the body does.
    pub fixups: Vec<u16>,
    /// Offsets in `bytes` of pointers to the whole question name (the
    /// owner of synthesised records): they follow the question name.
    pub question_pointers: Vec<u16>,
    pub counts: [u16; 3],
    /// Offset in `bytes` where the additional section starts.
    pub additional_at: usize,
}

pub struct BodyBuilder {
    body: Body,
    /// Absolute message offset of body byte 0 for the compiled question.
    base: usize,
    /// Lowercased name (suffix) → absolute offset where it was written.
    dictionary: HashMap<Vec<u8>, usize>,
    section: Section,
}

impl BodyBuilder {
    /// A builder for questions ending in `encloser`.
    pub fn new(encloser: &[u8]) -> Self {
        let mut dictionary = HashMap::new();
        let mut offset = HEADER_LEN;
        let mut suffix = encloser;
        while let Some(up) = name::parent(suffix) {
            dictionary.insert(name::to_lowercase(suffix), offset);
            offset += suffix.len() - up.len();
            suffix = up;
        }
        BodyBuilder {
            body: Body::default(),
            base: HEADER_LEN + encloser.len() + 4,
            dictionary,
            section: Section::Answer,
        }
    }

    /// Moves on to a later section; sections are written in order.
    pub fn section(&mut self, section: Section) {
        debug_assert!(section >= self.section, "sections must be written in order");
        self.section = section;
        if section == Section::Additional && self.body.counts[2] == 0 {
            self.body.additional_at = self.body.bytes.len();
        }
    }

    pub fn add_rrset(&mut self, owner: Owner<'_>, record_type: u16, ttl: u32, rdatas: &[Vec<u8>]) {
        for rdata in rdatas {
            self.add_record(owner, record_type, ttl, rdata);
        }
    }

    pub fn add_record(&mut self, owner: Owner<'_>, record_type: u16, ttl: u32, rdata: &[u8]) {
        match owner {
            Owner::Question => {
                self.body
                    .question_pointers
                    .push(self.body.bytes.len() as u16);
                self.body.bytes.extend_from_slice(&[0xC0, HEADER_LEN as u8]);
            }
            Owner::Name(owner) => self.write_name(owner, true),
        }
        let bytes = &mut self.body.bytes;
        bytes.extend_from_slice(&record_type.to_be_bytes());
        bytes.extend_from_slice(&rtype::CLASS_IN.to_be_bytes());
        bytes.extend_from_slice(&ttl.to_be_bytes());
        let length_at = bytes.len();
        bytes.extend_from_slice(&[0, 0]);
        match rtype::rdata_names(record_type) {
            RdataNames::Opaque => self.body.bytes.extend_from_slice(rdata),
            RdataNames::One => self.write_name(rdata, true),
            RdataNames::AfterPreference => {
                self.body.bytes.extend_from_slice(&rdata[..2]);
                self.write_name(&rdata[2..], true);
            }
            RdataNames::TwoThenFixed => {
                let first_end = name_end(rdata);
                let second_end = first_end + name_end(&rdata[first_end..]);
                self.write_name(&rdata[..first_end], true);
                self.write_name(&rdata[first_end..second_end], true);
                self.body.bytes.extend_from_slice(&rdata[second_end..]);
            }
        }
        let length = (self.body.bytes.len() - length_at - 2) as u16;
        self.body.bytes[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
        self.body.counts[self.section as usize] += 1;
    }

    /// Writes `name`, replacing its longest already-written suffix by a
    /// pointer when `compress` allows, and remembers its new suffixes.
    fn write_name(&mut self, name: &[u8], compress: bool) {
        let mut suffix = name;
        while let Some(up) = name::parent(suffix) {
            let key = name::to_lowercase(suffix);
            if compress && let Some(&target) = self.dictionary.get(&key) {
                self.body.fixups.push(self.body.bytes.len() as u16);
                self.body
                    .bytes
                    .extend_from_slice(&(0xC000 | target as u16).to_be_bytes());
                return;
            }
            let absolute = self.base + self.body.bytes.len();
            if absolute <= POINTER_TARGET_MAX {
                self.dictionary.insert(key, absolute);
            }
            self.body
                .bytes
                .extend_from_slice(&suffix[..suffix.len() - up.len()]);
            suffix = up;
        }
        self.body.bytes.push(0);
    }

    pub fn is_empty(&self) -> bool {
        self.body.bytes.is_empty()
    }

    pub fn finish(mut self) -> Body {
        if self.body.counts[2] == 0 {
            self.body.additional_at = self.body.bytes.len();
        }
        self.body
    }
}

/// Length of the uncompressed wire name at the start of `bytes`.
fn name_end(bytes: &[u8]) -> usize {
    let mut position = 0;
    while let Some(&length) = bytes.get(position) {
        position += 1 + length as usize;
        if length == 0 {
            break;
        }
    }
    position.min(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::name::from_text;

    #[test]
    fn compresses_against_question_and_body() {
        let encloser = from_text("example").unwrap(); // question at 12, 9 bytes
        let mut builder = BodyBuilder::new(&encloser);
        builder.add_record(
            Owner::Question,
            rtype::CNAME,
            60,
            &from_text("www.example").unwrap(),
        );
        builder.add_record(
            Owner::Name(&from_text("www.example").unwrap()),
            rtype::A,
            60,
            &[192, 0, 2, 1],
        );
        let body = builder.finish();
        let base = 12 + 9 + 4;
        // CNAME: owner C00C, then rdata "www" + pointer to 12 ("example").
        assert_eq!(&body.bytes[..2], &[0xC0, 0x0C]);
        assert_eq!(&body.bytes[10..12], &[0, 6]);
        assert_eq!(&body.bytes[12..18], &[3, b'w', b'w', b'w', 0xC0, 12]);
        // A owner is a pointer to the "www.example" written at base + 12.
        assert_eq!(
            &body.bytes[18..20],
            &(0xC000u16 | (base as u16 + 12)).to_be_bytes()
        );
        assert_eq!(body.fixups, vec![16, 18]);
        assert_eq!(body.counts, [2, 0, 0]);
        assert_eq!(body.additional_at, body.bytes.len());
    }
}
