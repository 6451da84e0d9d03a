//! Whole DNS messages on the slow path: reading every record of a received
//! message (zone transfers in, IXFR requests, NOTIFY) and writing messages
//! record by record with name compression (zone transfers out, NOTIFY,
//! SOA queries). The fast path never uses this: it copies precompiled
//! bodies.

use std::collections::HashMap;

use super::name::{self, read_compressed};
use super::rtype::{self, RdataNames};

pub const HEADER_LEN: usize = 12;

/// One record read from a message, names uncompressed. The owner is
/// lowercased (zones key on lowercase names); names inside RDATA keep
/// their case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    pub owner: Vec<u8>,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
}

/// The header fields the slow path looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub fn read(message: &[u8]) -> Option<Header> {
        let bytes = message.get(..HEADER_LEN)?;
        let field = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        Some(Header {
            id: field(0),
            flags: field(2),
            qdcount: field(4),
            ancount: field(6),
            nscount: field(8),
            arcount: field(10),
        })
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xF) as u8
    }

    pub fn rcode(&self) -> u8 {
        (self.flags & 0xF) as u8
    }

    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }
}

/// A parsed message: the question (lowercased name, type, class) and the
/// records of each section.
#[derive(Clone, Debug, Default)]
pub struct ReadMessage {
    pub question: Option<(Vec<u8>, u16, u16)>,
    pub answer: Vec<ReadRecord>,
    pub authority: Vec<ReadRecord>,
    pub additional: Vec<ReadRecord>,
}

/// Reads every section of `message`; `None` when anything is out of
/// bounds or malformed.
pub fn read_message(message: &[u8]) -> Option<ReadMessage> {
    let header = Header::read(message)?;
    let mut position = HEADER_LEN;
    let mut read = ReadMessage::default();
    if header.qdcount > 1 {
        return None;
    }
    if header.qdcount == 1 {
        let mut qname = Vec::new();
        position = read_compressed(message, position, &mut qname)?;
        let fixed = message.get(position..position + 4)?;
        read.question = Some((
            name::to_lowercase(&qname),
            u16::from_be_bytes([fixed[0], fixed[1]]),
            u16::from_be_bytes([fixed[2], fixed[3]]),
        ));
        position += 4;
    }
    for (count, section) in [
        (header.ancount, &mut read.answer),
        (header.nscount, &mut read.authority),
        (header.arcount, &mut read.additional),
    ] {
        for _ in 0..count {
            let (record, next) = read_record(message, position)?;
            section.push(record);
            position = next;
        }
    }
    Some(read)
}

/// Reads the record at `start`; returns it and the offset after it.
pub fn read_record(message: &[u8], start: usize) -> Option<(ReadRecord, usize)> {
    let mut owner = Vec::new();
    let position = read_compressed(message, start, &mut owner)?;
    let fixed = message.get(position..position + 10)?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let rdlength = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    let rdata_start = position + 10;
    let next = rdata_start.checked_add(rdlength)?;
    let raw = message.get(rdata_start..next)?;
    let rdata = match rtype::rdata_names(rtype) {
        RdataNames::Opaque => raw.to_vec(),
        names => {
            // Names in RFC 1035 types may be compressed: expand them, and
            // check they end exactly where the RDATA does.
            let mut rdata = Vec::with_capacity(raw.len());
            let mut at = rdata_start;
            if names == RdataNames::AfterPreference {
                rdata.extend_from_slice(message.get(at..at + 2)?);
                at += 2;
            }
            at = read_compressed(message, at, &mut rdata)?;
            if names == RdataNames::TwoThenFixed {
                at = read_compressed(message, at, &mut rdata)?;
                rdata.extend_from_slice(message.get(at..at + 20)?);
                at += 20;
            }
            if at != next {
                return None;
            }
            rdata
        }
    };
    Some((
        ReadRecord {
            owner: name::to_lowercase(&owner),
            rtype,
            class,
            ttl,
            rdata,
        },
        next,
    ))
}

/// Writes one message: header, optional question, then records, with
/// names compressed against names already written. Refuses (returns false
/// from `push_record`) a record that would take the message past `limit`.
pub struct MessageWriter {
    bytes: Vec<u8>,
    limit: usize,
    /// Every name suffix written so far → its offset (only offsets below
    /// 0x4000 can be pointed at).
    suffixes: HashMap<Vec<u8>, u16>,
}

impl MessageWriter {
    /// A message with ID `id` and header flags `flags`.
    pub fn new(id: u16, flags: u16, limit: usize) -> MessageWriter {
        let mut bytes = Vec::with_capacity(limit.min(65535));
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend_from_slice(&flags.to_be_bytes());
        bytes.extend_from_slice(&[0; 8]);
        MessageWriter {
            bytes,
            limit,
            suffixes: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.len() == HEADER_LEN
    }

    /// How many records are in the answer, authority and additional
    /// sections together.
    pub fn record_count(&self) -> usize {
        (6..12)
            .step_by(2)
            .map(|at| u16::from_be_bytes([self.bytes[at], self.bytes[at + 1]]) as usize)
            .sum()
    }

    fn bump(&mut self, count_at: usize) {
        let count = u16::from_be_bytes([self.bytes[count_at], self.bytes[count_at + 1]]);
        self.bytes[count_at..count_at + 2].copy_from_slice(&count.wrapping_add(1).to_be_bytes());
    }

    /// The question; must come before any record.
    pub fn push_question(&mut self, qname: &[u8], qtype: u16, qclass: u16) {
        self.write_name(qname, true);
        self.bytes.extend_from_slice(&qtype.to_be_bytes());
        self.bytes.extend_from_slice(&qclass.to_be_bytes());
        self.bump(4);
    }

    /// Appends a record to `section` (0 answer, 1 authority, 2 additional)
    /// when it fits under the limit. Sections must be written in order.
    pub fn push_record(
        &mut self,
        section: usize,
        owner: &[u8],
        rtype: u16,
        class: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> bool {
        let rollback = self.bytes.len();
        let suffixes_before = self.suffixes.len();
        self.write_name(owner, true);
        self.bytes.extend_from_slice(&rtype.to_be_bytes());
        self.bytes.extend_from_slice(&class.to_be_bytes());
        self.bytes.extend_from_slice(&ttl.to_be_bytes());
        let length_at = self.bytes.len();
        self.bytes.extend_from_slice(&[0, 0]);
        if !self.write_rdata(rtype, rdata) {
            self.bytes.extend_from_slice(rdata);
        }
        let rdlength = self.bytes.len() - length_at - 2;
        if self.bytes.len() > self.limit || rdlength > usize::from(u16::MAX) {
            self.bytes.truncate(rollback);
            if self.suffixes.len() != suffixes_before {
                self.suffixes
                    .retain(|_, offset| usize::from(*offset) < rollback);
            }
            return false;
        }
        self.bytes[length_at..length_at + 2].copy_from_slice(&(rdlength as u16).to_be_bytes());
        self.bump(6 + 2 * section.min(2));
        true
    }

    /// Writes the names of RFC 1035 types compressed; false (nothing
    /// written) when the RDATA is not of the expected shape or the type's
    /// names may not be compressed.
    fn write_rdata(&mut self, rtype: u16, rdata: &[u8]) -> bool {
        let names = rtype::rdata_names(rtype);
        if names == RdataNames::Opaque {
            return false;
        }
        let start = self.bytes.len();
        let mut at = 0;
        if names == RdataNames::AfterPreference {
            let Some(preference) = rdata.get(..2) else {
                return false;
            };
            self.bytes.extend_from_slice(preference);
            at = 2;
        }
        let name_count = if names == RdataNames::TwoThenFixed {
            2
        } else {
            1
        };
        for _ in 0..name_count {
            let Some(length) = name_length(rdata, at) else {
                self.bytes.truncate(start);
                return false;
            };
            self.write_name(&rdata[at..at + length], true);
            at += length;
        }
        let rest = &rdata[at..];
        let expected_rest = if names == RdataNames::TwoThenFixed {
            20
        } else {
            0
        };
        if rest.len() != expected_rest {
            self.bytes.truncate(start);
            return false;
        }
        self.bytes.extend_from_slice(rest);
        true
    }

    /// Writes `name` (uncompressed wire format), pointing at the longest
    /// suffix written before, and remembers its own suffixes.
    fn write_name(&mut self, name: &[u8], compress: bool) {
        let mut at = 0;
        while let Some(&length) = name.get(at) {
            if length == 0 {
                break;
            }
            let suffix = &name[at..];
            let key = name::to_lowercase(suffix);
            if compress && let Some(&offset) = self.suffixes.get(&key) {
                self.bytes
                    .extend_from_slice(&(0xC000 | offset).to_be_bytes());
                return;
            }
            let here = self.bytes.len();
            if here < 0x4000 {
                self.suffixes.insert(key, here as u16);
            }
            let end = (at + 1 + usize::from(length)).min(name.len());
            self.bytes.extend_from_slice(&name[at..end]);
            at = end;
        }
        self.bytes.push(0);
    }

    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// The length of the uncompressed name at `at` in `bytes`.
fn name_length(bytes: &[u8], at: usize) -> Option<usize> {
    let mut position = at;
    loop {
        let length = *bytes.get(position)? as usize;
        if length & 0xC0 != 0 {
            return None;
        }
        position += 1 + length;
        if length == 0 {
            return (position - at <= name::NAME_LEN_MAX && position <= bytes.len())
                .then_some(position - at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_records_read_back_with_compression() {
        let origin = name::from_text("example.com").unwrap();
        let www = name::from_text("www.Example.com").unwrap();
        let mut soa = Vec::new();
        soa.extend_from_slice(&name::from_text("ns1.example.com").unwrap());
        soa.extend_from_slice(&name::from_text("host.example.com").unwrap());
        soa.extend_from_slice(&[0; 20]);
        let mut writer = MessageWriter::new(7, 0x8400, 65535);
        writer.push_question(&origin, rtype::AXFR, 1);
        assert!(writer.push_record(0, &origin, rtype::SOA, 1, 60, &soa));
        assert!(writer.push_record(0, &www, rtype::A, 1, 60, &[192, 0, 2, 1]));
        let mut mx = vec![0, 10];
        mx.extend_from_slice(&www);
        assert!(writer.push_record(0, &origin, rtype::MX, 1, 60, &mx));
        let uncompressed = 12 + 17 + 4 + 3 * 10 + 17 + soa.len() + 21 + 4 + 17 + mx.len();
        let bytes = writer.finish();
        assert!(bytes.len() < uncompressed - 40, "names were compressed");
        let read = read_message(&bytes).unwrap();
        assert_eq!(read.question, Some((origin.clone(), rtype::AXFR, 1)));
        assert_eq!(read.answer.len(), 3);
        assert_eq!(read.answer[0].rdata, soa);
        assert_eq!(read.answer[1].owner, name::to_lowercase(&www));
        assert_eq!(read.answer[2].rdata, mx, "case of RDATA names kept");
    }

    #[test]
    fn a_record_past_the_limit_is_refused_and_leaves_the_message_intact() {
        let owner = name::from_text("a.example").unwrap();
        let mut writer = MessageWriter::new(1, 0, 60);
        assert!(writer.push_record(0, &owner, rtype::TXT, 1, 0, &[3, b'a', b'b', b'c']));
        let before = writer.len();
        assert!(!writer.push_record(0, &owner, rtype::TXT, 1, 0, &[40; 41]));
        assert_eq!(writer.len(), before);
        assert_eq!(writer.record_count(), 1);
        let bytes = writer.finish();
        assert_eq!(read_message(&bytes).unwrap().answer.len(), 1);
    }

    #[test]
    fn truncated_messages_never_panic() {
        let owner = name::from_text("a.example").unwrap();
        let mut writer = MessageWriter::new(1, 0, 512);
        writer.push_question(&owner, 1, 1);
        writer.push_record(0, &owner, rtype::NS, 1, 0, &owner);
        let bytes = writer.finish();
        for cut in 0..bytes.len() {
            assert!(read_message(&bytes[..cut]).is_none());
        }
    }
}
