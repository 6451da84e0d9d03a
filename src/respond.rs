//! The protocol core: query bytes + answer table → reply bytes.
//!
//! A pure function with no I/O, no allocation and no locks, so the fast
//! path, the TCP slow path, unit tests, benchmarks and fuzzers all call the
//! same code. Every outcome is decided here from the precompiled table; the
//! work per query is a parse, a lookup, a copy and a few patches.

use std::net::IpAddr;

use crate::compile::{Answer, AnswerTable, Resolution};
use crate::cookie::{self, CookieSecrets};
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
/// Highest offset a compression pointer reaches (14 bits).
const POINTER_MAX: usize = 0x3FFF;

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
const OPCODE_MASK: u16 = 0x7800;

/// What answering DNS cookies (RFC 7873) takes: the server's secrets, the
/// client's address, and a clock that is read only for a query with a
/// COOKIE option.
#[derive(Clone, Copy)]
pub struct Cookies<'a> {
    pub secrets: &'a CookieSecrets,
    pub client: IpAddr,
    /// Unix seconds: `cookie::now_s`, or a fixed time in tests.
    pub clock: fn() -> u32,
}

impl<'a> Cookies<'a> {
    /// An IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d) is
    /// taken as the IPv4 address, so its cookie is the same on every socket.
    pub fn new(secrets: &'a CookieSecrets, client: IpAddr) -> Self {
        Cookies {
            secrets,
            client: client.to_canonical(),
            clock: cookie::now_s,
        }
    }
}

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
    respond_with_cookies(query, packet, table, transport, None, out)
}

/// `respond`, answering a query's COOKIE option when `cookies` is given:
/// every reply with our OPT record (errors and TC included) then carries
/// the client cookie and our server cookie, whether the query's server
/// cookie was valid or not (RFC 7873 §5.2.3, §5.2.4: we do not enforce),
/// and a malformed option is FORMERR. `query.cookie_answer` says how the
/// cookie checked out.
pub fn respond_with_cookies(
    query: &mut Query,
    packet: &[u8],
    table: &AnswerTable,
    transport: Transport,
    cookies: Option<Cookies<'_>>,
    out: &mut [u8],
) -> usize {
    query.cookie_answer = None;
    // Room for the largest reply that ignores the limit: a header, the
    // longest question and an OPT record.
    if out.len() < UDP_LEN_CLASSIC {
        return 0;
    }
    let not_implemented = match query.parse(packet) {
        Ok(()) => false,
        Err(Malformed::Drop) => return 0,
        Err(Malformed::FormErr { question_end }) => {
            return error_reply(packet, question_end, rcode::FORMERR, out);
        }
        // Without a readable question there is nothing to echo but the header.
        Err(Malformed::NotImp { question_end }) if question_end == HEADER_LEN => {
            return error_reply(packet, question_end, rcode::NOTIMP, out);
        }
        Err(Malformed::NotImp { .. }) => true,
    };
    if let Some(cookies) = cookies
        && let Some(option) = query.edns.and_then(|edns| edns.cookie)
    {
        // A malformed COOKIE option is FORMERR (RFC 7873 §5.2.2) where we
        // implement cookies; without them it is an unknown option, ignored
        // (RFC 6891 §6.1.2), as Knot and NSD do.
        let Some(client_cookie) = option.client_cookie(packet) else {
            return error_reply(packet, query.question_end, rcode::FORMERR, out);
        };
        query.cookie_answer = Some(cookie::answer(
            &cookies.secrets.load(),
            client_cookie,
            option.server_cookie(packet),
            cookies.client,
            (cookies.clock)(),
        ));
    }
    let limit = match transport {
        Transport::Tcp => TCP_MESSAGE_LEN_MAX,
        Transport::Udp => match query.edns {
            Some(edns) => edns.udp_payload_size.min(UDP_PAYLOAD_SIZE_MAX) as usize,
            None => UDP_LEN_CLASSIC,
        },
    }
    .min(out.len());
    let nsid = query
        .edns
        .filter(|edns| edns.nsid_requested)
        .and_then(|_| table.nsid());
    // EDNS EXPIRE (RFC 7314) on an SOA query (or IXFR over UDP, answered
    // with the SOA) for a zone apex: the SOA's expire from a primary, the
    // seconds left of a secondary's copy.
    let soa_answer =
        query.qtype == rtype::SOA || (query.qtype == rtype::IXFR && transport == Transport::Udp);
    if soa_answer && query.edns.is_some_and(|edns| edns.expire_requested) {
        query.expire_answer = table.expire_seconds(query.qname(), u64::from(cookie::now_s()));
    }
    let mut reply = Reply {
        query,
        packet,
        out,
        limit,
        nsid,
    };
    if not_implemented {
        return reply.empty(0, rcode::NOTIMP as u16, false);
    }
    if let Some(edns) = reply.query.edns
        && edns.version > 0
    {
        return reply.empty(0, rcode::BADVERS, false);
    }
    // Class ANY (RFC 1035 §3.2.5) is answered like IN, as Knot and NSD do.
    if !matches!(reply.query.qclass, rtype::CLASS_IN | rtype::CLASS_ANY) {
        return reply.empty(0, rcode::REFUSED as u16, false);
    }
    let mut qtype = reply.query.qtype;
    match qtype {
        // AXFR needs TCP (RFC 5936 §4.2); over TCP the slow path serves
        // transfers before `respond` is reached.
        rtype::AXFR if transport == Transport::Udp => {
            return reply.empty(0, rcode::NOTIMP as u16, false);
        }
        // IXFR over UDP (RFC 1995 §2): the current SOA alone, which tells a
        // client that is behind to ask again over TCP, and one that is
        // current that nothing changed.
        rtype::IXFR if transport == Transport::Udp => qtype = rtype::SOA,
        rtype::AXFR | rtype::IXFR => return reply.empty(0, rcode::REFUSED as u16, false),
        _ => {}
    }
    match table.resolve(reply.query.qname(), qtype) {
        Resolution::Answer(answer) => reply.answer(table, answer),
        Resolution::Dname {
            answer,
            target,
            ttl,
            follow,
        } => reply.dname(table, answer, target, ttl, follow),
        Resolution::NotAuthoritative => reply.empty(0, rcode::REFUSED as u16, false),
    }
}

/// Length of the OPT record `respond` appends for `query` (0 without EDNS),
/// so callers can find it at the end of a reply.
pub fn opt_record_len(query: &Query, table: &AnswerTable) -> usize {
    let nsid = query
        .edns
        .filter(|edns| edns.nsid_requested)
        .and_then(|_| table.nsid());
    opt_len(query, nsid)
}

fn opt_len(query: &Query, nsid: Option<&[u8]>) -> usize {
    if query.edns.is_none() {
        return 0;
    }
    let nsid_len = nsid.map_or(0, |nsid| 4 + nsid.len());
    let cookie_len = match query.cookie_answer {
        Some(_) => cookie::REPLY_OPTION_LEN,
        None => 0,
    };
    let expire_len = if query.expire_answer.is_some() { 8 } else { 0 };
    OPT_LEN + nsid_len + cookie_len + expire_len
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
    let flags = FLAG_QR | (flags & (OPCODE_MASK | FLAG_RD)) | code as u16;
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
    /// Our NSID, when the query asked for it (RFC 5001).
    nsid: Option<&'a [u8]>,
}

impl Reply<'_> {
    /// Writes header and question; returns the offset after the question.
    /// RD and the opcode are copied. CD is not, although RFC 4035 §3.1.6
    /// asks security-aware servers to copy it: Knot 3.2 and NSD 4.6 clear
    /// it, on signed zones too and with DO set, which the differential
    /// tests check. AD is never set: an authoritative server has validated
    /// nothing (RFC 4035 §3.1.6).
    fn head(&mut self, flags: u16, extended_rcode: u16, counts: [u16; 3]) -> usize {
        let end = self.query.question_end;
        self.out[..end].copy_from_slice(&self.packet[..end]);
        let flags =
            FLAG_QR | flags | (self.query.flags & (OPCODE_MASK | FLAG_RD)) | (extended_rcode & 0xF);
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
        opt_len(self.query, self.nsid)
    }

    /// Appends our OPT record (RFC 6891 §6.1.2) when the query had one,
    /// with NSID, COOKIE and EXPIRE options when they are answered.
    fn opt(&mut self, at: usize, extended_rcode: u16) -> usize {
        let Some(edns) = self.query.edns else {
            return at;
        };
        let end = at + self.opt_len();
        let record = &mut self.out[at..end];
        record[0] = 0;
        record[1..3].copy_from_slice(&rtype::OPT.to_be_bytes());
        record[3..5].copy_from_slice(&UDP_PAYLOAD_SIZE_MAX.to_be_bytes());
        record[5] = (extended_rcode >> 4) as u8;
        record[6] = 0; // version
        record[7] = if edns.dnssec_ok { 0x80 } else { 0 };
        record[8] = 0;
        record[9..11].copy_from_slice(&((end - at - OPT_LEN) as u16).to_be_bytes());
        let mut options = &mut record[OPT_LEN..];
        if let Some(nsid) = self.nsid {
            let (option, rest) = options.split_at_mut(4 + nsid.len());
            option[..2].copy_from_slice(&crate::wire::query::OPTION_NSID.to_be_bytes());
            option[2..4].copy_from_slice(&(nsid.len() as u16).to_be_bytes());
            option[4..].copy_from_slice(nsid);
            options = rest;
        }
        if let Some(answer) = self.query.cookie_answer {
            let data_len = cookie::REPLY_OPTION_LEN - 4;
            let (option, rest) = options.split_at_mut(cookie::REPLY_OPTION_LEN);
            option[..2].copy_from_slice(&cookie::OPTION_COOKIE.to_be_bytes());
            option[2..4].copy_from_slice(&(data_len as u16).to_be_bytes());
            option[4..12].copy_from_slice(&answer.client_cookie);
            option[12..].copy_from_slice(&answer.server_cookie);
            options = rest;
        }
        if let Some(seconds) = self.query.expire_answer {
            options[..2].copy_from_slice(&crate::wire::query::OPTION_EXPIRE.to_be_bytes());
            options[2..4].copy_from_slice(&4u16.to_be_bytes());
            options[4..8].copy_from_slice(&seconds.to_be_bytes());
        }
        end
    }

    /// A reply with no records (REFUSED, BADVERS, or TC).
    fn empty(&mut self, flags: u16, extended_rcode: u16, truncated: bool) -> usize {
        let tc = if truncated { FLAG_TC } else { 0 };
        let end = self.head(flags | tc, extended_rcode, [0; 3]);
        self.opt(end, extended_rcode)
    }

    /// True when the query set the DO bit (RFC 3225): it gets the DNSSEC
    /// variant of every answer.
    fn dnssec_ok(&self) -> bool {
        self.query.edns.is_some_and(|edns| edns.dnssec_ok)
    }

    fn answer(&mut self, table: &AnswerTable, answer: &Answer) -> usize {
        let answer = match self.dnssec_ok() {
            true => table.dnssec_variant(answer),
            false => answer,
        };
        let qname_len = self.query.qname_len;
        if qname_len < answer.encloser_len as usize {
            return self.empty(0, rcode::SERVFAIL as u16, false);
        }
        // The NSEC/NSEC3 proof that depends on the question name, placed
        // at the end of the authority section (see `compile::dnssec`).
        // It is left out in the one case its pointers cannot reach it: an
        // answer section of more than 16 KB (over TCP).
        let piece = answer
            .denial
            .and_then(|denial| {
                table.denial_piece(&denial, self.query.qname(), answer.encloser_len as usize)
            })
            .filter(|_| self.query.question_end + answer.additional_at as usize <= POINTER_MAX);
        let (gap, piece_count) = piece.map_or((0, 0), |piece| (piece.len as usize, piece.count));
        let mut flags = if answer.authoritative { FLAG_AA } else { 0 };
        let question_end = self.query.question_end;
        let opt_len = self.opt_len();
        let mut counts = answer.counts;
        counts[1] += piece_count;
        let mut body_len = answer.body_len as usize;
        // Compression pointers into an additional section moved by the gap
        // must stay within 14 bits: past that, the section is left out.
        let limit = match gap > 0 && answer.body_len > answer.additional_at {
            true => self
                .limit
                .min(POINTER_MAX - crate::wire::name::NAME_LEN_MAX),
            false => self.limit,
        };
        if question_end + body_len + gap + opt_len > limit {
            // Keep the answer and authority sections whole and as many whole
            // additional RRsets as fit: additional data is optional (RFC
            // 2181 §9), except glue for name servers inside a delegated zone,
            // whose absence sets TC (RFC 9471 §3). Knot and NSD do the same.
            // Signatures are cut with the RRset they cover (RFC 4035
            // §3.1.1 lets an additional RRSIG go without TC).
            let room = limit.saturating_sub(question_end + opt_len);
            if answer.additional_at as usize + gap > room {
                return self.answer_section_only(table, answer, flags, room);
            }
            body_len = answer.additional_at as usize;
            counts[2] = 0;
            for cut in table.additional_cuts(answer) {
                if cut.end as usize + gap <= room {
                    body_len = cut.end as usize;
                    counts[2] = cut.count;
                } else if cut.required {
                    flags |= FLAG_TC;
                }
            }
        }
        self.head(flags, answer.rcode as u16, counts);
        let placed = Placement {
            at: question_end,
            name_at: HEADER_LEN,
            name_len: qname_len,
            gap,
        };
        place_body(self.out, table, answer, body_len, placed);
        if let Some(piece) = piece {
            let piece_at = question_end + answer.additional_at as usize;
            table.write_piece(piece, self.out, piece_at, HEADER_LEN, qname_len);
        }
        self.opt(question_end + body_len + gap, answer.rcode as u16)
    }

    /// TC with the answer section alone when it fits and the authority
    /// section does not (DO answers with a small payload): RFC 4035 §3.1.1
    /// asks for TC then, and Knot and NSD keep the answer records that fit
    /// (their partial authority sections differ; we send none). Otherwise
    /// TC with no records.
    fn answer_section_only(
        &mut self,
        table: &AnswerTable,
        answer: &Answer,
        flags: u16,
        room: usize,
    ) -> usize {
        let answer_len = answer.authority_at as usize;
        if answer.counts[0] == 0 || answer_len > room {
            return self.empty(flags, answer.rcode as u16, true);
        }
        let question_end = self.query.question_end;
        self.head(
            flags | FLAG_TC,
            answer.rcode as u16,
            [answer.counts[0], 0, 0],
        );
        let placed = Placement {
            at: question_end,
            name_at: HEADER_LEN,
            name_len: self.query.qname_len,
            gap: 0,
        };
        place_body(self.out, table, answer, answer_len, placed);
        self.opt(question_end + answer_len, answer.rcode as u16)
    }

    /// DNAME substitution (RFC 6672 §3.1): the DNAME, a CNAME from the
    /// question to the substituted name, then that name's own answer when it
    /// lies in the same zone. The CNAME's target is written in full, and the
    /// follow-up answer's pointers are relocated to refer to it.
    fn dname(
        &mut self,
        table: &AnswerTable,
        dname: &Answer,
        target: &[u8],
        ttl: u32,
        follow: bool,
    ) -> usize {
        // DO gets the signed DNAME; the CNAME made here has no signature
        // (RFC 6672 §5.3.1: validators synthesise it from the DNAME).
        let dnssec_ok = self.dnssec_ok();
        let dname = match dnssec_ok {
            true => table.dnssec_variant(dname),
            false => dname,
        };
        let qname_len = self.query.qname_len;
        let Some(prefix_len) = qname_len.checked_sub(dname.encloser_len as usize) else {
            return self.empty(0, rcode::SERVFAIL as u16, false);
        };
        let question_end = self.query.question_end;
        let opt_len = self.opt_len();
        let substituted_len = prefix_len + target.len();
        if substituted_len > crate::wire::name::NAME_LEN_MAX {
            // The substituted name would be too long (RFC 6672 §2.2).
            let body_len = dname.body_len as usize;
            if question_end + body_len + opt_len > self.limit {
                return self.empty(FLAG_AA, rcode::YXDOMAIN as u16, true);
            }
            self.head(FLAG_AA, rcode::YXDOMAIN as u16, dname.counts);
            let placed = Placement {
                at: question_end,
                name_at: HEADER_LEN,
                name_len: qname_len,
                gap: 0,
            };
            place_body(self.out, table, dname, body_len, placed);
            return self.opt(question_end + body_len, rcode::YXDOMAIN as u16);
        }

        // The substituted name, lowercased, to look up.
        let mut substituted = [0u8; crate::wire::name::NAME_LEN_MAX];
        substituted[..prefix_len].copy_from_slice(&self.query.qname()[..prefix_len]);
        substituted[prefix_len..substituted_len].copy_from_slice(target);
        substituted[prefix_len..substituted_len].make_ascii_lowercase();
        // The synthesised CNAME already answers a CNAME question.
        let followed = match follow && self.query.qtype != rtype::CNAME {
            true => match table.resolve(&substituted[..substituted_len], self.query.qtype) {
                Resolution::Answer(answer) => Some(match dnssec_ok {
                    true => table.dnssec_variant(answer),
                    false => answer,
                })
                .filter(|answer| (answer.encloser_len as usize) <= substituted_len),
                _ => None,
            },
            false => None,
        };

        let cname_at = question_end + dname.body_len as usize;
        let cname_len = 12 + substituted_len;
        let followed_at = cname_at + cname_len;
        // The followed answer's per-query proof (DO), for the substituted
        // name.
        let piece = followed.and_then(|answer| {
            let denial = answer.denial?;
            let name = &substituted[..substituted_len];
            table.denial_piece(&denial, name, answer.encloser_len as usize)
        });
        let (gap, piece_count) = piece.map_or((0, 0), |piece| (piece.len as usize, piece.count));
        // The follow-up answer's pointers must stay below 0x3FFF, and it must
        // fit: without it, the DNAME and CNAME still answer (RFC 6672 §3.1).
        let reachable = |answer: &&Answer| {
            followed_at + answer.body_len as usize + gap + opt_len <= POINTER_MAX
        };
        let followed = followed.filter(reachable);
        // Knot and NSD send TC and the followed answer's RCODE when it does
        // not fit.
        let mut flags = FLAG_AA;
        let mut rcode = dname.rcode as u16;
        let followed = followed.filter(|answer| {
            let fits = followed_at + answer.body_len as usize + gap + opt_len <= self.limit;
            if !fits {
                flags |= FLAG_TC;
                rcode = answer.rcode as u16;
            }
            fits
        });
        let (gap, piece_count) = match followed {
            Some(_) => (gap, piece_count),
            None => (0, 0),
        };
        let followed_len = followed.map_or(0, |answer| answer.body_len as usize + gap);
        if followed_at + followed_len + opt_len > self.limit {
            return self.empty(FLAG_AA, dname.rcode as u16, true);
        }
        let mut counts = dname.counts;
        counts[0] += 1;
        if let Some(answer) = followed {
            counts[0] += answer.counts[0];
            counts[1] += answer.counts[1] + piece_count;
            counts[2] += answer.counts[2];
            rcode = answer.rcode as u16;
        }
        self.head(flags, rcode, counts);
        let placed = Placement {
            at: question_end,
            name_at: HEADER_LEN,
            name_len: qname_len,
            gap: 0,
        };
        place_body(self.out, table, dname, dname.body_len as usize, placed);
        let record = &mut self.out[cname_at..followed_at];
        record[0..2].copy_from_slice(&[0xC0, HEADER_LEN as u8]);
        record[2..4].copy_from_slice(&rtype::CNAME.to_be_bytes());
        record[4..6].copy_from_slice(&rtype::CLASS_IN.to_be_bytes());
        record[6..10].copy_from_slice(&ttl.to_be_bytes());
        record[10..12].copy_from_slice(&(substituted_len as u16).to_be_bytes());
        record[12..12 + prefix_len]
            .copy_from_slice(&self.packet[HEADER_LEN..HEADER_LEN + prefix_len]);
        record[12 + prefix_len..].copy_from_slice(target);
        if let Some(answer) = followed {
            let placed = Placement {
                at: followed_at,
                name_at: cname_at + 12,
                name_len: substituted_len,
                gap,
            };
            place_body(self.out, table, answer, answer.body_len as usize, placed);
            if let Some(piece) = piece {
                let piece_at = followed_at + answer.additional_at as usize;
                table.write_piece(piece, self.out, piece_at, cname_at + 12, substituted_len);
            }
        }
        self.opt(followed_at + followed_len, rcode)
    }
}

/// Where a precompiled body lands in a reply: at offset `at`, answering
/// the name written at `name_at` (the question's, at 12, or a DNAME's
/// substituted name) which is `name_len` bytes long, with `gap` bytes left
/// free where its additional section starts (for a per-query proof at the
/// end of the authority section).
#[derive(Clone, Copy)]
struct Placement {
    at: usize,
    name_at: usize,
    name_len: usize,
    gap: usize,
}

/// Copies the first `body_len` bytes of `answer`'s body to `placement.at`
/// (its additional section `placement.gap` bytes further on) and relocates
/// its compression pointers (see `compile::body`): pointers into the
/// encloser follow the name's suffix, pointers into the body follow the
/// body, pointers to the whole name follow the name. For an exact match at
/// the question without a gap nothing moves and the loop is skipped.
fn place_body(
    out: &mut [u8],
    table: &AnswerTable,
    answer: &Answer,
    body_len: usize,
    placement: Placement,
) {
    let body = &table.body(answer)[..body_len];
    let split = (answer.additional_at as usize).min(body_len);
    let gap = placement.gap;
    let target = &mut out[placement.at..placement.at + body_len + gap];
    target[..split].copy_from_slice(&body[..split]);
    target[split + gap..].copy_from_slice(&body[split..]);
    // Body offset -> offset in `target`.
    let moved_in_body = |offset: usize| {
        if offset >= split {
            offset + gap
        } else {
            offset
        }
    };
    let encloser_len = answer.encloser_len as usize;
    let compiled_body_at = HEADER_LEN + encloser_len + 4;
    let encloser_at = placement.name_at + placement.name_len - encloser_len;
    let (fixups, question_pointers) = table.pointers(answer);
    if placement.at != compiled_body_at || encloser_at != HEADER_LEN || gap != 0 {
        for &fixup in fixups {
            let at = fixup as usize;
            if at + 1 >= body_len {
                continue; // in the part left out (the additional section)
            }
            let at = moved_in_body(at);
            let pointer = (u16::from_be_bytes([target[at], target[at + 1]]) & 0x3FFF) as usize;
            let moved = if pointer < compiled_body_at {
                encloser_at + (pointer - HEADER_LEN)
            } else {
                placement.at + moved_in_body(pointer - compiled_body_at)
            };
            target[at..at + 2].copy_from_slice(&(0xC000 | moved as u16).to_be_bytes());
        }
    }
    if placement.name_at != HEADER_LEN {
        for &pointer_at in question_pointers {
            let at = pointer_at as usize;
            if at + 1 < body_len {
                let at = moved_in_body(at);
                target[at..at + 2]
                    .copy_from_slice(&(0xC000 | placement.name_at as u16).to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests;
