//! The protocol core: query bytes + answer table → reply bytes.
//!
//! A pure function with no I/O, no allocation and no locks, so the fast
//! path, the TCP slow path, unit tests, benchmarks and fuzzers all call the
//! same code. Every outcome is decided here from the precompiled table; the
//! work per query is a parse, a lookup, a copy and a few patches.

use crate::compile::{Answer, AnswerTable, Resolution};
use crate::wire::query::{HEADER_LEN, Malformed, Query};
use crate::wire::rtype;

/// The EDNS UDP payload size we advertise and never exceed (the DNS flag
/// day 2020 recommendation).
pub const UDP_PAYLOAD_SIZE_MAX: u16 = 1232;
/// Largest DNS message over TCP (RFC 1035 §4.2.2: 16-bit length prefix).
pub const TCP_MESSAGE_LEN_MAX: usize = 65535;
/// Plain DNS over UDP (RFC 1035 §4.2.1).
const UDP_LEN_CLASSIC: usize = 512;
const OPT_LEN: usize = 11;

pub mod rcode {
    pub const NOERROR: u8 = 0;
    pub const FORMERR: u8 = 1;
    pub const SERVFAIL: u8 = 2;
    pub const NXDOMAIN: u8 = 3;
    pub const NOTIMP: u8 = 4;
    pub const REFUSED: u8 = 5;
    pub const YXDOMAIN: u8 = 6;
    /// Extended RCODE 16 (RFC 6891 §9): upper bits go in the OPT record.
    pub const BADVERS: u16 = 16;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_CD: u16 = 0x0010;
const OPCODE_MASK: u16 = 0x7800;

/// Answers `packet` from `table` into `out`; returns the reply length, or 0
/// when no reply must be sent. `query` is scratch space reused between
/// calls. `out` should hold at least 65535 bytes for TCP and the largest
/// UDP payload for UDP; the reply never exceeds it.
pub fn respond(
    query: &mut Query,
    packet: &[u8],
    table: &AnswerTable,
    transport: Transport,
    out: &mut [u8],
) -> usize {
    match query.parse(packet) {
        Ok(()) => {}
        Err(Malformed::Drop) => return 0,
        Err(Malformed::FormErr { question_end }) => {
            return error_reply(packet, question_end, rcode::FORMERR, out);
        }
        Err(Malformed::NotImp { question_end }) => {
            return error_reply(packet, question_end, rcode::NOTIMP, out);
        }
    }
    let limit = match transport {
        Transport::Tcp => TCP_MESSAGE_LEN_MAX,
        Transport::Udp => match query.edns {
            Some(edns) => edns.udp_payload_size.min(UDP_PAYLOAD_SIZE_MAX) as usize,
            None => UDP_LEN_CLASSIC,
        },
    }
    .min(out.len());
    let mut reply = Reply {
        query,
        packet,
        out,
        limit,
    };
    if let Some(edns) = reply.query.edns
        && edns.version > 0
    {
        return reply.empty(0, rcode::BADVERS, false);
    }
    if reply.query.qclass != rtype::CLASS_IN {
        return reply.empty(0, rcode::REFUSED as u16, false);
    }
    if matches!(reply.query.qtype, rtype::AXFR | rtype::IXFR) || reply.query.qtype == rtype::OPT {
        // Zone transfers are the slow path's (not served yet): refuse.
        return reply.empty(0, rcode::REFUSED as u16, false);
    }
    match table.resolve(reply.query.qname(), reply.query.qtype) {
        Resolution::Answer(answer) => reply.answer(table, answer, None),
        Resolution::Dname {
            answer,
            target,
            ttl,
        } => reply.answer(table, answer, Some((target, ttl))),
        Resolution::NotAuthoritative => reply.empty(0, rcode::REFUSED as u16, false),
    }
}

/// FORMERR or NOTIMP with the header (and question, when it could be read)
/// echoed, as Knot and NSD reply.
fn error_reply(packet: &[u8], question_end: usize, code: u8, out: &mut [u8]) -> usize {
    let Some(echo) = packet.get(..question_end) else {
        return 0;
    };
    let Some(target) = out.get_mut(..question_end) else {
        return 0;
    };
    target.copy_from_slice(echo);
    let flags = u16::from_be_bytes([echo[2], echo[3]]);
    let flags = FLAG_QR | (flags & (OPCODE_MASK | FLAG_RD | FLAG_CD)) | code as u16;
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    let qdcount = u16::from(question_end > HEADER_LEN);
    out[4..6].copy_from_slice(&qdcount.to_be_bytes());
    out[6..12].fill(0);
    question_end
}

struct Reply<'a> {
    query: &'a Query,
    packet: &'a [u8],
    out: &'a mut [u8],
    limit: usize,
}

impl Reply<'_> {
    /// Writes header and question; returns the offset after the question.
    fn head(&mut self, flags: u16, extended_rcode: u16, counts: [u16; 3]) -> usize {
        let end = self.query.question_end;
        self.out[..end].copy_from_slice(&self.packet[..end]);
        let flags =
            FLAG_QR | flags | (self.query.flags & (FLAG_RD | FLAG_CD)) | (extended_rcode & 0xF);
        self.out[2..4].copy_from_slice(&flags.to_be_bytes());
        self.out[4..6].copy_from_slice(&1u16.to_be_bytes());
        self.set_counts(counts);
        end
    }

    fn set_counts(&mut self, counts: [u16; 3]) {
        let additional = counts[2] + u16::from(self.query.edns.is_some());
        self.out[6..8].copy_from_slice(&counts[0].to_be_bytes());
        self.out[8..10].copy_from_slice(&counts[1].to_be_bytes());
        self.out[10..12].copy_from_slice(&additional.to_be_bytes());
    }

    fn opt_len(&self) -> usize {
        if self.query.edns.is_some() {
            OPT_LEN
        } else {
            0
        }
    }

    /// Appends our OPT record (RFC 6891 §6.1.2) when the query had one.
    fn opt(&mut self, at: usize, extended_rcode: u16) -> usize {
        let Some(edns) = self.query.edns else {
            return at;
        };
        let record = &mut self.out[at..at + OPT_LEN];
        record[0] = 0;
        record[1..3].copy_from_slice(&rtype::OPT.to_be_bytes());
        record[3..5].copy_from_slice(&UDP_PAYLOAD_SIZE_MAX.to_be_bytes());
        record[5] = (extended_rcode >> 4) as u8;
        record[6] = 0; // version
        record[7] = if edns.dnssec_ok { 0x80 } else { 0 };
        record[8] = 0;
        record[9..11].fill(0);
        at + OPT_LEN
    }

    /// A reply with no records (REFUSED, BADVERS, or TC).
    fn empty(&mut self, flags: u16, extended_rcode: u16, truncated: bool) -> usize {
        let tc = if truncated { FLAG_TC } else { 0 };
        let end = self.head(flags | tc, extended_rcode, [0; 3]);
        self.opt(end, extended_rcode)
    }

    fn answer(
        &mut self,
        table: &AnswerTable,
        answer: &Answer,
        dname: Option<(&[u8], u32)>,
    ) -> usize {
        let qname_len = self.query.qname_len;
        let Some(delta) = qname_len.checked_sub(answer.encloser_len as usize) else {
            return self.empty(0, rcode::SERVFAIL as u16, false);
        };
        let mut flags = if answer.authoritative { FLAG_AA } else { 0 };
        let mut rcode = answer.rcode as u16;
        let body = table.body(answer);
        let question_end = self.query.question_end;
        let opt_len = self.opt_len();

        // The CNAME a DNAME synthesises (RFC 6672 §3.1): the question's
        // labels above the DNAME owner, then the DNAME target.
        let mut synthesized_len = 0;
        if let Some((target, _)) = dname {
            let name_len = delta + target.len();
            if name_len > crate::wire::name::NAME_LEN_MAX {
                rcode = rcode::YXDOMAIN as u16;
            } else {
                synthesized_len = 2 + 10 + name_len;
            }
        }

        let full = question_end + body.len() + synthesized_len + opt_len;
        let mut counts = answer.counts;
        let mut body_len = body.len();
        if full > self.limit {
            let without_additional =
                question_end + answer.additional_at as usize + synthesized_len + opt_len;
            if without_additional <= self.limit && synthesized_len == 0 {
                body_len = answer.additional_at as usize;
                counts[2] = 0;
                if answer.glue_required {
                    flags |= FLAG_TC;
                }
            } else {
                return self.empty(flags, rcode, true);
            }
        }

        let end = self.head(flags, rcode, counts);
        let body_out = &mut self.out[end..end + body_len];
        body_out.copy_from_slice(&body[..body_len]);
        if delta != 0 {
            for &fixup in table.fixups(answer) {
                let at = fixup as usize;
                if at + 1 < body_len {
                    let pointer =
                        u16::from_be_bytes([body_out[at], body_out[at + 1]]) + delta as u16;
                    body_out[at..at + 2].copy_from_slice(&pointer.to_be_bytes());
                }
            }
        }
        let mut at = end + body_len;
        if let Some((target, ttl)) = dname
            && synthesized_len > 0
        {
            at = self.synthesized_cname(at, delta, target, ttl);
            counts[0] += 1;
            self.set_counts(counts);
        }
        self.opt(at, rcode)
    }

    fn synthesized_cname(
        &mut self,
        at: usize,
        prefix_len: usize,
        target: &[u8],
        ttl: u32,
    ) -> usize {
        let rdata_len = prefix_len + target.len();
        let record = &mut self.out[at..at + 12 + rdata_len];
        record[0..2].copy_from_slice(&[0xC0, HEADER_LEN as u8]);
        record[2..4].copy_from_slice(&rtype::CNAME.to_be_bytes());
        record[4..6].copy_from_slice(&rtype::CLASS_IN.to_be_bytes());
        record[6..10].copy_from_slice(&ttl.to_be_bytes());
        record[10..12].copy_from_slice(&(rdata_len as u16).to_be_bytes());
        record[12..12 + prefix_len]
            .copy_from_slice(&self.packet[HEADER_LEN..HEADER_LEN + prefix_len]);
        record[12 + prefix_len..].copy_from_slice(target);
        at + 12 + rdata_len
    }
}

#[cfg(test)]
mod tests;
