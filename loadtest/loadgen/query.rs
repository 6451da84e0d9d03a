//! The query file: parsed and encoded once at start, so that the send loop
//! only copies bytes and patches the message ID.

/// Largest encoded query: header 12 + name 255 + type/class 4 + OPT 11.
pub const MAX_QUERY_LEN: usize = 12 + 255 + 4 + 11;

/// How each query is encoded (the same for every line of the file).
#[derive(Clone, Copy, Debug, Default)]
pub struct Encoding {
    /// EDNS UDP payload size; `None` sends no OPT record.
    pub edns: Option<u16>,
    /// Set the DO bit in the OPT record (only meaningful with `edns`).
    pub dnssec_ok: bool,
}

/// One pre-encoded query inside [`Queries::wire`].
#[derive(Clone, Copy, Debug)]
pub struct Query {
    /// Offset of the message in `wire`.
    off: u32,
    /// Length of the whole message.
    len: u16,
    /// Length of the question name (the question is `name` + 4 bytes).
    name_len: u16,
}

/// Every query of the file, encoded back to back in one buffer.
pub struct Queries {
    wire: Vec<u8>,
    list: Vec<Query>,
}

impl Queries {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The encoded message of query `i` (its ID bytes are zero).
    #[inline]
    pub fn message(&self, i: usize) -> &[u8] {
        let q = self.list[i];
        &self.wire[q.off as usize..q.off as usize + q.len as usize]
    }

    /// Parses a dnsperf-format query file. Bad lines are reported in
    /// `warnings` (as `line N: why`) and skipped, as dnsperf does; an
    /// error is returned only when no query at all is usable.
    pub fn parse(text: &str, enc: Encoding, warnings: &mut Vec<String>) -> Result<Queries, String> {
        let mut q = Queries {
            wire: Vec::new(),
            list: Vec::new(),
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(name), Some(qtype)) = (fields.next(), fields.next()) else {
                warnings.push(format!("line {}: expected `name type`", n + 1));
                continue;
            };
            if let Err(e) = q.push(name, qtype, enc) {
                warnings.push(format!("line {}: {e}", n + 1));
            }
        }
        if q.list.is_empty() {
            return Err("no usable query in the file".into());
        }
        Ok(q)
    }

    /// Encodes one query and appends it.
    fn push(&mut self, name: &str, qtype: &str, enc: Encoding) -> Result<(), String> {
        let qtype = parse_type(qtype).ok_or_else(|| format!("unknown query type `{qtype}`"))?;
        let off = self.wire.len();
        let w = &mut self.wire;
        // Header: ID 0 (patched per send), flags 0 (QUERY, RD clear),
        // QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 1 with EDNS.
        w.extend_from_slice(&[
            0,
            0,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            u8::from(enc.edns.is_some()),
        ]);
        let name_len = match encode_name(name, w) {
            Ok(n) => n,
            Err(e) => {
                w.truncate(off);
                return Err(e);
            }
        };
        w.extend_from_slice(&qtype.to_be_bytes());
        w.extend_from_slice(&1u16.to_be_bytes()); // class IN
        if let Some(payload) = enc.edns {
            // OPT: root owner, TYPE 41, CLASS = payload size, TTL = extended
            // RCODE 0, version 0, flags (DO is the top bit), RDLENGTH 0.
            let flags: u16 = if enc.dnssec_ok { 0x8000 } else { 0 };
            w.push(0);
            w.extend_from_slice(&41u16.to_be_bytes());
            w.extend_from_slice(&payload.to_be_bytes());
            w.extend_from_slice(&[0, 0]);
            w.extend_from_slice(&flags.to_be_bytes());
            w.extend_from_slice(&[0, 0]);
        }
        let len = self.wire.len() - off;
        debug_assert!(len <= MAX_QUERY_LEN);
        self.list.push(Query {
            off: u32::try_from(off).map_err(|_| "query file too large")?,
            len: len as u16,
            name_len: name_len as u16,
        });
        Ok(())
    }

    /// Checks that `reply` answers query `i`: QR set, exactly one question,
    /// equal to the query's (name compared ASCII case-insensitively, type
    /// and class exactly). The ID was already matched by the caller.
    #[inline]
    pub fn reply_matches(&self, i: usize, reply: &[u8]) -> bool {
        let q = self.list[i];
        let qname = q.name_len as usize;
        let end = 12 + qname + 4;
        if reply.len() < end || reply[2] & 0x80 == 0 || reply[4] != 0 || reply[5] != 1 {
            return false;
        }
        let query = self.message(i);
        // Label length bytes are < 64, so folding them is harmless; the
        // type and class bytes are compared as they are (0x41 'A' is type 65).
        reply[12..12 + qname].eq_ignore_ascii_case(&query[12..12 + qname])
            && reply[12 + qname..end] == query[12 + qname..end]
    }
}

/// Encodes a presentation-format name (always taken as absolute) in wire
/// format onto `out`; returns the encoded length. Handles `\.`, `\X` and
/// `\DDD` escapes.
fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<usize, String> {
    let start = out.len();
    if name != "." {
        let bytes = name.as_bytes();
        let mut i = 0;
        let mut label_start = out.len();
        out.push(0); // length byte of the first label, written when it ends
        let mut after_dot = false;
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            after_dot = false;
            let c = match b {
                b'.' => {
                    close_label(out, label_start, name)?;
                    after_dot = true;
                    label_start = out.len();
                    out.push(0);
                    continue;
                }
                b'\\' => {
                    let d = &bytes[i..];
                    if d.len() >= 3 && d[..3].iter().all(u8::is_ascii_digit) {
                        let v = u32::from(d[0] - b'0') * 100
                            + u32::from(d[1] - b'0') * 10
                            + u32::from(d[2] - b'0');
                        i += 3;
                        u8::try_from(v).map_err(|_| format!("bad escape in `{name}`"))?
                    } else if let Some(&x) = d.first() {
                        i += 1;
                        x
                    } else {
                        return Err(format!("name `{name}` ends in a backslash"));
                    }
                }
                _ => b,
            };
            out.push(c);
        }
        if after_dot {
            out.pop(); // a trailing dot opened no label: the root follows
        } else {
            close_label(out, label_start, name)?;
        }
    }
    out.push(0);
    let len = out.len() - start;
    if len > 255 {
        return Err(format!("name `{name}` is longer than 255 bytes"));
    }
    Ok(len)
}

/// Writes the length byte of the label that started at `label_start`.
fn close_label(out: &mut [u8], label_start: usize, name: &str) -> Result<(), String> {
    let len = out.len() - label_start - 1;
    if len == 0 {
        return Err(format!("empty label in `{name}`"));
    }
    if len > 63 {
        return Err(format!("label longer than 63 bytes in `{name}`"));
    }
    out[label_start] = len as u8;
    Ok(())
}

/// Query type mnemonics (RFC 1035 and later) and `TYPEnnn` (RFC 3597).
pub fn parse_type(s: &str) -> Option<u16> {
    const TYPES: &[(&str, u16)] = &[
        ("A", 1),
        ("NS", 2),
        ("MD", 3),
        ("MF", 4),
        ("CNAME", 5),
        ("SOA", 6),
        ("MB", 7),
        ("MG", 8),
        ("MR", 9),
        ("NULL", 10),
        ("WKS", 11),
        ("PTR", 12),
        ("HINFO", 13),
        ("MINFO", 14),
        ("MX", 15),
        ("TXT", 16),
        ("RP", 17),
        ("AFSDB", 18),
        ("X25", 19),
        ("ISDN", 20),
        ("RT", 21),
        ("NSAP", 22),
        ("NSAP-PTR", 23),
        ("SIG", 24),
        ("KEY", 25),
        ("PX", 26),
        ("GPOS", 27),
        ("AAAA", 28),
        ("LOC", 29),
        ("NXT", 30),
        ("SRV", 33),
        ("NAPTR", 35),
        ("KX", 36),
        ("CERT", 37),
        ("A6", 38),
        ("DNAME", 39),
        ("OPT", 41),
        ("APL", 42),
        ("DS", 43),
        ("SSHFP", 44),
        ("IPSECKEY", 45),
        ("RRSIG", 46),
        ("NSEC", 47),
        ("DNSKEY", 48),
        ("DHCID", 49),
        ("NSEC3", 50),
        ("NSEC3PARAM", 51),
        ("TLSA", 52),
        ("SMIMEA", 53),
        ("HIP", 55),
        ("CDS", 59),
        ("CDNSKEY", 60),
        ("OPENPGPKEY", 61),
        ("CSYNC", 62),
        ("ZONEMD", 63),
        ("SVCB", 64),
        ("HTTPS", 65),
        ("SPF", 99),
        ("NID", 104),
        ("L32", 105),
        ("L64", 106),
        ("LP", 107),
        ("EUI48", 108),
        ("EUI64", 109),
        ("TKEY", 249),
        ("TSIG", 250),
        ("IXFR", 251),
        ("AXFR", 252),
        ("MAILB", 253),
        ("MAILA", 254),
        ("ANY", 255),
        ("URI", 256),
        ("CAA", 257),
        ("AVC", 258),
        ("DOA", 259),
        ("AMTRELAY", 260),
        ("TA", 32768),
        ("DLV", 32769),
    ];
    if let Some(&(_, v)) = TYPES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        return Some(v);
    }
    let digits = s
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("TYPE"))
        .map(|_| &s[4..])?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    /// Hex dump of a message, for the unit tests' failure messages.
    fn hex(b: &[u8]) -> String {
        let mut s = String::new();
        for x in b {
            let _ = write!(s, "{x:02x}");
        }
        s
    }

    fn wire(name: &str) -> Result<Vec<u8>, String> {
        let mut v = Vec::new();
        encode_name(name, &mut v).map(|_| v)
    }

    #[test]
    fn names() {
        assert_eq!(
            wire("www.example.com").unwrap(),
            b"\x03www\x07example\x03com\x00"
        );
        assert_eq!(
            wire("www.example.com.").unwrap(),
            b"\x03www\x07example\x03com\x00"
        );
        assert_eq!(wire(".").unwrap(), b"\x00");
        assert_eq!(wire("a\\.b.c").unwrap(), b"\x03a.b\x01c\x00");
        assert_eq!(wire("a\\.").unwrap(), b"\x02a.\x00");
        assert_eq!(wire("a\\\\.").unwrap(), b"\x02a\\\x00");
        assert_eq!(wire("\\065b").unwrap(), b"\x02Ab\x00");
        assert!(wire("a..b").is_err());
        assert!(wire(&"x".repeat(64)).is_err());
        assert!(wire(&["abcdefghi"; 26].join(".")).is_err());
    }

    #[test]
    fn types() {
        assert_eq!(parse_type("a"), Some(1));
        assert_eq!(parse_type("AAAA"), Some(28));
        assert_eq!(parse_type("TYPE65"), Some(65));
        assert_eq!(parse_type("type65535"), Some(65535));
        assert_eq!(parse_type("TYPE65536"), None);
        assert_eq!(parse_type("TYPE"), None);
        assert_eq!(parse_type("BOGUS"), None);
    }

    #[test]
    fn file_and_reply_check() {
        let mut warn = Vec::new();
        let text = "# comment\n\nwww.example.com A\nbad\nx.example BOGUS\nexample.com HTTPS\n";
        let enc = Encoding {
            edns: Some(1232),
            dnssec_ok: true,
        };
        let q = Queries::parse(text, enc, &mut warn).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(warn.len(), 2, "{warn:?}");
        let m = q.message(0);
        assert_eq!(
            hex(m),
            "000000000001000000000001\
             03777777076578616d706c6503636f6d0000010001\
             00002904d0000080000000"
        );
        // A reply: QR set, case changed in the name, answer appended.
        let mut r = m.to_vec();
        r[2] |= 0x84;
        r[13] = b'W';
        assert!(q.reply_matches(0, &r));
        r[29] = 28; // type AAAA instead of A
        assert!(!q.reply_matches(0, &r));
        // HTTPS is type 65 = 'A': must not match type 97 = 'a'.
        let mut r = q.message(1).to_vec();
        r[2] |= 0x80;
        let t = 12 + 13 + 1;
        assert_eq!(r[t], 65);
        assert!(q.reply_matches(1, &r));
        r[t] = 97;
        assert!(!q.reply_matches(1, &r));
        // Garbage never panics.
        assert!(!q.reply_matches(0, &[]));
        assert!(!q.reply_matches(0, &[0xff; 20]));
        assert!(Queries::parse("# nothing\n", enc, &mut warn).is_err());
    }
}
