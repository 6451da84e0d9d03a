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

/// The end of one additional-section RRset in a body: where the section
/// may be cut when the whole body does not fit the client's limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdditionalCut {
    /// Body length up to and including this RRset.
    pub end: u32,
    /// Additional records up to and including this RRset.
    pub count: u16,
    /// Glue for a name server inside the delegated zone: leaving it out
    /// sets TC (RFC 9471 §3); other additional data is optional.
    pub required: bool,
}

/// A finished body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Body {
    /// The message as compiled: a header placeholder, the question (the
    /// encloser name, type and class), then the body from `base` on.
    image: Vec<u8>,
    base: usize,
    /// Offsets in the body of compression pointers into the encloser or the
    /// body itself: they move when the question or the body does.
    pub fixups: Vec<u32>,
    /// Offsets in the body of pointers to the whole question name (the
    /// owner of synthesised records): they follow the question name.
    pub question_pointers: Vec<u32>,
    pub counts: [u16; 3],
    /// Offset in the body where the authority section starts.
    pub authority_at: usize,
    /// Offset in the body where the additional section starts.
    pub additional_at: usize,
    pub additional_cuts: Vec<AdditionalCut>,
}

impl Body {
    /// The bytes after the question.
    pub fn bytes(&self) -> &[u8] {
        self.image.get(self.base..).unwrap_or(&[])
    }
}

pub struct BodyBuilder {
    body: Body,
    /// Offsets in the image where a name (or a suffix of one) starts: the
    /// compression dictionary. Bodies hold few names, so a list scanned
    /// with a byte comparison beats hashing every suffix.
    dictionary: Vec<u16>,
    section: Section,
    /// False for self-contained record blocks (see `self_contained`).
    compress: bool,
}

impl BodyBuilder {
    /// A builder for questions ending in `encloser`.
    pub fn new(encloser: &[u8]) -> Self {
        let mut image = Vec::with_capacity(HEADER_LEN + encloser.len() + 4 + 128);
        image.resize(HEADER_LEN, 0);
        image.extend_from_slice(encloser);
        image.extend_from_slice(&[0; 4]);
        let mut dictionary = Vec::new();
        let mut offset = HEADER_LEN;
        let mut suffix = encloser;
        while let Some(up) = name::parent(suffix) {
            dictionary.push(offset as u16);
            offset += suffix.len() - up.len();
            suffix = up;
        }
        let base = image.len();
        BodyBuilder {
            body: Body {
                image,
                base,
                ..Body::default()
            },
            dictionary,
            section: Section::Answer,
            compress: true,
        }
    }

    /// A builder for a block of records that can be copied anywhere in a
    /// reply (the NSEC/NSEC3 records chosen per query, see `dnssec`): no
    /// name is compressed, so the block holds no pointer to fix up.
    pub fn self_contained() -> Self {
        let mut builder = BodyBuilder::new(&[0]);
        builder.compress = false;
        builder
    }

    fn len(&self) -> usize {
        self.body.image.len() - self.body.base
    }

    /// Moves on to a later section; sections are written in order.
    pub fn section(&mut self, section: Section) {
        debug_assert!(section >= self.section, "sections must be written in order");
        if self.section == Section::Answer && section != Section::Answer {
            self.body.authority_at = self.len();
        }
        self.section = section;
        if section == Section::Additional && self.body.counts[2] == 0 {
            self.body.additional_at = self.len();
        }
    }

    pub fn add_rrset(&mut self, owner: Owner<'_>, record_type: u16, ttl: u32, rdatas: &[Vec<u8>]) {
        for rdata in rdatas {
            self.add_record(owner, record_type, ttl, rdata);
        }
    }

    /// Adds an additional-section RRset and marks where the section may be
    /// cut after it; `required` for glue the referral cannot do without.
    pub fn add_additional_rrset(
        &mut self,
        owner: Owner<'_>,
        record_type: u16,
        ttl: u32,
        rdatas: &[Vec<u8>],
        required: bool,
    ) {
        debug_assert_eq!(self.section, Section::Additional);
        self.add_rrset(owner, record_type, ttl, rdatas);
        self.cut_additional(required);
    }

    /// Marks the end of an additional-section RRset (with its signatures,
    /// when they follow it) as a place the section may be cut.
    pub fn cut_additional(&mut self, required: bool) {
        let cut = AdditionalCut {
            end: self.len() as u32,
            count: self.body.counts[2],
            required,
        };
        self.body.additional_cuts.push(cut);
    }

    pub fn add_record(&mut self, owner: Owner<'_>, record_type: u16, ttl: u32, rdata: &[u8]) {
        match owner {
            Owner::Question => {
                self.body.question_pointers.push(self.len() as u32);
                self.body.image.extend_from_slice(&[0xC0, HEADER_LEN as u8]);
            }
            Owner::Name(owner) => self.write_name(owner, true),
        }
        let bytes = &mut self.body.image;
        bytes.extend_from_slice(&record_type.to_be_bytes());
        bytes.extend_from_slice(&rtype::CLASS_IN.to_be_bytes());
        bytes.extend_from_slice(&ttl.to_be_bytes());
        let length_at = bytes.len();
        bytes.extend_from_slice(&[0, 0]);
        match rtype::rdata_names(record_type) {
            RdataNames::Opaque => self.body.image.extend_from_slice(rdata),
            RdataNames::One => self.write_name(rdata, true),
            RdataNames::AfterPreference => {
                self.body.image.extend_from_slice(&rdata[..2]);
                self.write_name(&rdata[2..], true);
            }
            RdataNames::TwoThenFixed => {
                let first_end = name_end(rdata);
                let second_end = first_end + name_end(&rdata[first_end..]);
                self.write_name(&rdata[..first_end], true);
                self.write_name(&rdata[first_end..second_end], true);
                self.body.image.extend_from_slice(&rdata[second_end..]);
            }
        }
        let length = (self.body.image.len() - length_at - 2) as u16;
        self.body.image[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
        self.body.counts[self.section as usize] += 1;
    }

    /// Writes `name`, replacing its longest already-written suffix by a
    /// pointer when `compress` allows, and remembers its new suffixes.
    fn write_name(&mut self, name: &[u8], compress: bool) {
        let mut suffix = name;
        while let Some(up) = name::parent(suffix) {
            if compress
                && self.compress
                && let Some(&target) = self
                    .dictionary
                    .iter()
                    .find(|&&at| name_at_equals(&self.body.image, at as usize, suffix))
            {
                self.body.fixups.push(self.len() as u32);
                self.body
                    .image
                    .extend_from_slice(&(0xC000 | target).to_be_bytes());
                return;
            }
            let absolute = self.body.image.len();
            if absolute <= POINTER_TARGET_MAX && self.compress {
                self.dictionary.push(absolute as u16);
            }
            self.body
                .image
                .extend_from_slice(&suffix[..suffix.len() - up.len()]);
            suffix = up;
        }
        self.body.image.push(0);
    }

    pub fn finish(mut self) -> Body {
        if self.section == Section::Answer {
            self.body.authority_at = self.len();
        }
        if self.body.counts[2] == 0 {
            self.body.additional_at = self.len();
        }
        self.body
    }
}

/// True when the (possibly compressed) name at `at` in `image` equals the
/// uncompressed `name`, ignoring ASCII case.
fn name_at_equals(image: &[u8], mut at: usize, name: &[u8]) -> bool {
    let mut position = 0;
    // Pointers only go backwards in what we write, so this ends; the bound
    // is a second guard.
    for _ in 0..NAME_LEN_MAX {
        let Some(&length) = image.get(at) else {
            return false;
        };
        if length & 0xC0 == 0xC0 {
            let Some(&low) = image.get(at + 1) else {
                return false;
            };
            at = (((length & 0x3F) as usize) << 8) | low as usize;
            continue;
        }
        let length = length as usize;
        let (Some(ours), Some(theirs)) = (
            image.get(at..at + 1 + length),
            name.get(position..position + 1 + length),
        ) else {
            return false;
        };
        if !ours.eq_ignore_ascii_case(theirs) {
            return false;
        }
        if length == 0 {
            return position + 1 == name.len();
        }
        at += 1 + length;
        position += 1 + length;
    }
    false
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
        assert_eq!(&body.bytes()[..2], &[0xC0, 0x0C]);
        assert_eq!(&body.bytes()[10..12], &[0, 6]);
        assert_eq!(&body.bytes()[12..18], &[3, b'w', b'w', b'w', 0xC0, 12]);
        // A owner is a pointer to the "www.example" written at base + 12.
        assert_eq!(
            &body.bytes()[18..20],
            &(0xC000u16 | (base as u16 + 12)).to_be_bytes()
        );
        assert_eq!(body.fixups, vec![16, 18]);
        assert_eq!(body.counts, [2, 0, 0]);
        assert_eq!(body.additional_at, body.bytes().len());
    }
}
