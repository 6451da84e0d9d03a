//! Parse a received DNS query: the 12-byte header, the one question and an
//! EDNS OPT record (RFC 1035 §4.1, RFC 6891). Nothing else of the message is
//! interpreted.
//!
//! This runs once per packet on the fast path: it never allocates and never
//! panics on any input. The question name is lowercased into a fixed buffer
//! for the table lookup; the client's own bytes stay in the packet and are
//! echoed from there (0x20 case randomisation survives).

use super::name::NAME_LEN_MAX;
use crate::cookie::{
    CLIENT_COOKIE_LEN, CookieAnswer, OPTION_COOKIE, SERVER_COOKIE_LEN_MAX, SERVER_COOKIE_LEN_MIN,
};

pub const HEADER_LEN: usize = 12;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_TSIG: u16 = 250;

/// EDNS parameters of a query (RFC 6891 §6.1.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Edns {
    /// Requestor's UDP payload size, raised to 512 as RFC 6891 §6.2.3 says.
    pub udp_payload_size: u16,
    pub version: u8,
    /// The DO bit (RFC 3225).
    pub dnssec_ok: bool,
    /// The query carried an NSID option (RFC 5001).
    pub nsid_requested: bool,
    /// The query carried an EDNS EXPIRE option (RFC 7314).
    pub expire_requested: bool,
    /// The query's COOKIE option (RFC 7873), the first when it had more.
    pub cookie: Option<CookieOption>,
}

/// EDNS option code of NSID (RFC 5001).
pub const OPTION_NSID: u16 = 3;
/// EDNS option code of EXPIRE (RFC 7314).
pub const OPTION_EXPIRE: u16 = 9;

/// Where a COOKIE option (RFC 7873 §4) lies in the packet, so it is read
/// from there and never copied. Recorded whatever its length: whether a
/// malformed one is an error depends on whether we implement cookies
/// (`respond` decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieOption {
    /// Offset of the option's data (the client cookie first) in the packet.
    pub data_at: usize,
    pub data_len: usize,
}

impl CookieOption {
    /// A client cookie alone (8 bytes), or with a server cookie of 8 to 32
    /// bytes (RFC 7873 §5.2.2).
    pub fn is_well_formed(&self) -> bool {
        self.data_len == CLIENT_COOKIE_LEN
            || (CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN_MIN
                ..=CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN_MAX)
                .contains(&self.data_len)
    }

    /// The client cookie; `None` when the option is not well formed.
    pub fn client_cookie<'p>(&self, packet: &'p [u8]) -> Option<&'p [u8; CLIENT_COOKIE_LEN]> {
        if !self.is_well_formed() {
            return None;
        }
        packet.get(self.data_at..)?.first_chunk()
    }

    /// Empty when the query carried a client cookie alone.
    pub fn server_cookie<'p>(&self, packet: &'p [u8]) -> &'p [u8] {
        let at = self.data_at + CLIENT_COOKIE_LEN;
        let end = self.data_at + self.data_len;
        packet.get(at..end).unwrap_or(&[])
    }
}

/// What the options in OPT RDATA ask of us.
struct EdnsOptions {
    nsid: bool,
    cookie: Option<CookieOption>,
    expire: bool,
}

/// Reads the options in OPT RDATA (RFC 6891 §6.1.2), which starts at
/// offset `rdata_at` of the packet: NSID, and the first COOKIE option
/// (later ones are ignored, RFC 7873 §5.2). `None` (FORMERR) when an
/// option runs past the RDATA.
fn read_options(mut options: &[u8], rdata_at: usize) -> Option<EdnsOptions> {
    let mut read = EdnsOptions {
        nsid: false,
        cookie: None,
        expire: false,
    };
    let mut at = rdata_at;
    while !options.is_empty() {
        let header = options.get(..4)?;
        let code = u16::from_be_bytes([header[0], header[1]]);
        let length = u16::from_be_bytes([header[2], header[3]]) as usize;
        options = options.get(4 + length..)?;
        match code {
            OPTION_NSID => read.nsid = true,
            OPTION_EXPIRE => read.expire = true,
            OPTION_COOKIE if read.cookie.is_none() => {
                read.cookie = Some(CookieOption {
                    data_at: at + 4,
                    data_len: length,
                });
            }
            _ => {}
        }
        at += 4 + length;
    }
    Some(read)
}

/// A parsed query. Reused between packets: `parse` overwrites every field.
#[derive(Clone, Debug)]
pub struct Query {
    pub id: u16,
    /// Header bytes 2 and 3 as received (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode).
    pub flags: u16,
    /// Offset just past the question (QTYPE and QCLASS included).
    pub question_end: usize,
    pub qname_len: usize,
    qname_lowercase: [u8; NAME_LEN_MAX],
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
    /// The query carries a TSIG record (RFC 8945): its reply must be
    /// signed, which the slow path's keys do.
    pub signed: bool,
    /// Set by `respond` when it answered the COOKIE option (cookies on and
    /// the query had one); `None` after `parse`.
    pub cookie_answer: Option<CookieAnswer>,
    /// Set by `respond` when it answered an EXPIRE option (RFC 7314): the
    /// seconds the zone stays valid.
    pub expire_answer: Option<u32>,
}

/// Why a packet is not a query we answer normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// No reply at all: shorter than a header, or a response (QR=1).
    Drop,
    /// FORMERR. `question_end` is where the question ended when it could be
    /// read (so the reply can echo it), else `HEADER_LEN`.
    FormErr { question_end: usize },
    /// An opcode other than QUERY: NOTIMP, question echoed when readable.
    NotImp { question_end: usize },
}

impl Default for Query {
    fn default() -> Self {
        Query {
            id: 0,
            flags: 0,
            question_end: HEADER_LEN,
            qname_len: 0,
            qname_lowercase: [0; NAME_LEN_MAX],
            qtype: 0,
            qclass: 0,
            edns: None,
            signed: false,
            cookie_answer: None,
            expire_answer: None,
        }
    }
}

impl Query {
    /// The question name, lowercased, in wire format.
    pub fn qname(&self) -> &[u8] {
        &self.qname_lowercase[..self.qname_len]
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xF) as u8
    }

    pub fn recursion_desired(&self) -> bool {
        self.flags & 0x0100 != 0
    }

    /// Parses `packet` into `self`.
    pub fn parse(&mut self, packet: &[u8]) -> Result<(), Malformed> {
        let header = packet.get(..HEADER_LEN).ok_or(Malformed::Drop)?;
        self.id = u16::from_be_bytes([header[0], header[1]]);
        self.flags = u16::from_be_bytes([header[2], header[3]]);
        self.edns = None;
        self.signed = false;
        self.cookie_answer = None;
        self.expire_answer = None;
        self.question_end = HEADER_LEN;
        if self.flags & 0x8000 != 0 {
            return Err(Malformed::Drop);
        }
        let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        let (qdcount, ancount, nscount, arcount) = (count(4), count(6), count(8), count(10));
        if qdcount != 1 {
            return Err(if self.opcode() != 0 {
                Malformed::NotImp {
                    question_end: HEADER_LEN,
                }
            } else {
                Malformed::FormErr {
                    question_end: HEADER_LEN,
                }
            });
        }
        let form_err_plain = Malformed::FormErr {
            question_end: HEADER_LEN,
        };
        let qname_end = self.read_qname(packet).ok_or(form_err_plain)?;
        let fixed = packet.get(qname_end..qname_end + 4).ok_or(form_err_plain)?;
        self.qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        self.qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
        self.question_end = qname_end + 4;
        let form_err = Malformed::FormErr {
            question_end: self.question_end,
        };
        // Other opcodes get NOTIMP, with our OPT when they carried one
        // (RFC 6891 §7): read on to find it, and never FORMERR them.
        let not_implemented = Malformed::NotImp {
            question_end: self.question_end,
        };
        let form_err = if self.opcode() != 0 {
            not_implemented
        } else {
            form_err
        };

        // Skip answer and authority records; look for OPT in additional.
        let mut position = self.question_end;
        for _ in 0..(ancount as u32 + nscount as u32) {
            position = skip_record(packet, position).ok_or(form_err)?.next;
        }
        for _ in 0..arcount {
            let record = skip_record(packet, position).ok_or(form_err)?;
            if record.rtype == TYPE_OPT {
                // Exactly one OPT, owned by the root (RFC 6891 §6.1.1).
                if self.edns.is_some() || !record.owner_is_root {
                    return Err(form_err);
                }
                let rdata = packet
                    .get(record.rdata_start..record.next)
                    .ok_or(form_err)?;
                let options = read_options(rdata, record.rdata_start).ok_or(form_err)?;
                self.edns = Some(Edns {
                    udp_payload_size: record.class.max(512),
                    version: (record.ttl >> 16) as u8,
                    dnssec_ok: record.ttl & 0x8000 != 0,
                    nsid_requested: options.nsid,
                    expire_requested: options.expire,
                    cookie: options.cookie,
                });
            }
            self.signed |= record.rtype == TYPE_TSIG;
            position = record.next;
        }
        if self.opcode() != 0 {
            return Err(not_implemented);
        }
        Ok(())
    }

    /// Copies the question name, lowercased, and returns the offset after it.
    /// Compression pointers are refused in the question: the question comes
    /// first, so a pointer could only point at itself or forwards.
    fn read_qname(&mut self, packet: &[u8]) -> Option<usize> {
        let mut position = HEADER_LEN;
        let mut written = 0;
        loop {
            let length = *packet.get(position)? as usize;
            if length > 63 {
                return None;
            }
            let label = packet.get(position..position + 1 + length)?;
            let target = self
                .qname_lowercase
                .get_mut(written..written + 1 + length)?;
            for (out, byte) in target.iter_mut().zip(label) {
                *out = byte.to_ascii_lowercase();
            }
            written += 1 + length;
            position += 1 + length;
            if length == 0 {
                self.qname_len = written;
                return Some(position);
            }
        }
    }
}

struct SkippedRecord {
    next: usize,
    rdata_start: usize,
    rtype: u16,
    class: u16,
    ttl: u32,
    owner_is_root: bool,
}

/// Steps over one resource record (owner may be compressed).
fn skip_record(packet: &[u8], start: usize) -> Option<SkippedRecord> {
    let mut position = start;
    let mut labels = 0;
    loop {
        let length = *packet.get(position)? as usize;
        match length & 0xC0 {
            0x00 if length == 0 => {
                position += 1;
                break;
            }
            0x00 => position += 1 + length,
            0xC0 => {
                position += 2;
                labels += 1;
                break;
            }
            _ => return None,
        }
        labels += 1;
        if labels > 127 {
            return None;
        }
    }
    let fixed = packet.get(position..position + 10)?;
    let rdlength = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    let next = position + 10 + rdlength;
    if next > packet.len() {
        return None;
    }
    Some(SkippedRecord {
        next,
        rdata_start: position + 10,
        rtype: u16::from_be_bytes([fixed[0], fixed[1]]),
        class: u16::from_be_bytes([fixed[2], fixed[3]]),
        ttl: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        owner_is_root: labels == 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn query_bytes(name: &[u8], qtype: u16, opt: Option<(u16, u32)>) -> Vec<u8> {
        let mut packet = vec![
            0x12,
            0x34,
            0x01,
            0x00,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            opt.is_some() as u8,
        ];
        packet.extend_from_slice(name);
        packet.extend_from_slice(&qtype.to_be_bytes());
        packet.extend_from_slice(&1u16.to_be_bytes());
        if let Some((size, ttl)) = opt {
            packet.push(0);
            packet.extend_from_slice(&TYPE_OPT.to_be_bytes());
            packet.extend_from_slice(&size.to_be_bytes());
            packet.extend_from_slice(&ttl.to_be_bytes());
            packet.extend_from_slice(&0u16.to_be_bytes());
        }
        packet
    }

    #[test]
    fn parses_question_and_edns() {
        let packet = query_bytes(b"\x03WwW\x07example\x00", 28, Some((4096, 0x8000)));
        let mut query = Query::default();
        query.parse(&packet).unwrap();
        assert_eq!(query.id, 0x1234);
        assert_eq!(query.qname(), b"\x03www\x07example\x00");
        assert_eq!(query.qtype, 28);
        assert!(query.recursion_desired());
        assert_eq!(
            query.edns,
            Some(Edns {
                udp_payload_size: 4096,
                version: 0,
                dnssec_ok: true,
                nsid_requested: false,
                expire_requested: false,
                cookie: None,
            })
        );
        assert_eq!(query.question_end, 12 + 13 + 4);
    }

    /// The first COOKIE option is recorded where it lies, whatever its
    /// length; later ones are ignored (RFC 7873 §5.2).
    #[test]
    fn finds_the_cookie_option_in_place() {
        let mut packet = query_bytes(b"\x00", 1, Some((1232, 0)));
        let options: &[u8] = &[
            0, 3, 0, 0, // NSID
            0, 10, 0, 24, // COOKIE: client and server cookie
            1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, //
            0, 10, 0, 3, 1, 1, 1, // a second, malformed: ignored
        ];
        let rdlength_at = packet.len() - 2;
        packet[rdlength_at..].copy_from_slice(&(options.len() as u16).to_be_bytes());
        packet.extend_from_slice(options);
        let mut query = Query::default();
        query.parse(&packet).unwrap();
        let edns = query.edns.unwrap();
        assert!(edns.nsid_requested);
        let cookie = edns.cookie.unwrap();
        assert_eq!(cookie.data_at, rdlength_at + 2 + 8);
        assert_eq!(
            cookie.client_cookie(&packet),
            Some(&[1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert_eq!(cookie.server_cookie(&packet), &[9; 16]);
        for (data_len, well_formed) in [
            (0, false),
            (7, false),
            (8, true),
            (9, false),
            (15, false),
            (16, true),
            (40, true),
            (41, false),
        ] {
            let option = CookieOption {
                data_at: 0,
                data_len,
            };
            assert_eq!(option.is_well_formed(), well_formed, "{data_len}");
            assert_eq!(
                option.client_cookie(&[0; 64]).is_some(),
                well_formed,
                "{data_len}"
            );
        }
        // Past the end of the packet: nothing, and no panic.
        let beyond = CookieOption {
            data_at: 60,
            data_len: 24,
        };
        assert_eq!(beyond.client_cookie(&[0; 64]), None);
        assert_eq!(beyond.server_cookie(&[0; 64]), &[] as &[u8]);
    }

    #[test]
    fn rejects_what_it_must() {
        let mut query = Query::default();
        assert_eq!(query.parse(&[0; 11]), Err(Malformed::Drop));
        let mut response = query_bytes(b"\x00", 1, None);
        response[2] |= 0x80;
        assert_eq!(query.parse(&response), Err(Malformed::Drop));
        let mut two_questions = query_bytes(b"\x00", 1, None);
        two_questions[5] = 2;
        assert_eq!(
            query.parse(&two_questions),
            Err(Malformed::FormErr { question_end: 12 })
        );
        let truncated = &query_bytes(b"\x03www\x00", 1, None)[..15];
        assert_eq!(
            query.parse(truncated),
            Err(Malformed::FormErr { question_end: 12 })
        );
        let pointer = query_bytes(b"\xC0\x0C", 1, None);
        assert_eq!(
            query.parse(&pointer),
            Err(Malformed::FormErr { question_end: 12 })
        );
        let mut two_opts = query_bytes(b"\x00", 1, Some((1232, 0)));
        two_opts[11] = 2;
        let opt = two_opts[17..].to_vec();
        two_opts.extend_from_slice(&opt);
        assert_eq!(
            query.parse(&two_opts),
            Err(Malformed::FormErr { question_end: 17 })
        );
        let mut status = query_bytes(b"\x00", 1, None);
        status[2] = 0x10; // opcode 2
        assert_eq!(
            query.parse(&status),
            Err(Malformed::NotImp { question_end: 17 })
        );
        // NOTIMP keeps the query's EDNS, so the reply can carry OPT.
        let mut status_edns = query_bytes(b"\x00", 1, Some((1232, 0)));
        status_edns[2] = 0x10;
        assert_eq!(
            query.parse(&status_edns),
            Err(Malformed::NotImp { question_end: 17 })
        );
        assert!(query.edns.is_some());
        // A name longer than 255 bytes.
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        assert!(matches!(
            query.parse(&query_bytes(&long, 1, None)),
            Err(Malformed::FormErr { .. })
        ));
    }
}
