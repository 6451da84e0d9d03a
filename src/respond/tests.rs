//! `respond()` against a zone with every case of the core issue. Replies are
//! parsed back with a small independent reader so each section can be
//! checked record by record.

use super::*;
use crate::compile::{ZoneInput, compile};
use crate::wire::name::{from_text, read_compressed, to_text};
use std::path::Path;

const ZONE: &str = r#"
$ORIGIN example.
$TTL 3600
@        SOA   ns1 hostmaster 2026112601 7200 900 1209600 300
         NS    ns1
         NS    ns2.sub
         MX    10 mail
ns1      A     192.0.2.1
         AAAA  2001:db8::1
mail     A     192.0.2.25
www      A     192.0.2.80
alias    CNAME www
chain1   CNAME chain2
chain2   CNAME alias
loop1    CNAME loop2
loop2    CNAME loop1
outside  CNAME www.example.net.
dangling CNAME nothing
a.b.c    TXT   "deep"
*.wild   A     192.0.2.100
*.wild   TXT   "wild"
x.y.blk  A     192.0.2.7
*.blk    A     192.0.2.8
*.wcname CNAME www
sub      NS    ns1.sub
sub      NS    ns2.sub
sub      DS    12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE49FD46E6C4B45C55D4AC69CB
ns1.sub  A     192.0.2.53
ns2.sub  A     192.0.2.54
red      DNAME blue
blue     A     192.0.2.9
x.blue   A     192.0.2.10
$GENERATE 1-40 big A 10.0.0.$
"#;

struct Parsed {
    id: u16,
    flags: u16,
    rcode: u16,
    question: Vec<u8>,
    /// (section, owner text, type, ttl, rdata as text-ish)
    records: Vec<(usize, String, u16, u32, String)>,
    opt: Option<(u16, u32)>,
}

fn parse(reply: &[u8]) -> Parsed {
    let count = |at: usize| u16::from_be_bytes([reply[at], reply[at + 1]]) as usize;
    let mut position = 12;
    let mut question = Vec::new();
    for _ in 0..count(4) {
        let mut name = Vec::new();
        let end = read_compressed(reply, position, &mut name).expect("question name");
        question = reply[position..end + 4].to_vec();
        position = end + 4;
    }
    let mut records = Vec::new();
    let mut opt = None;
    let mut extended = 0;
    let counts = [count(6), count(8), count(10)];
    for (section, total) in counts.into_iter().enumerate() {
        for _ in 0..total {
            let mut owner = Vec::new();
            position = read_compressed(reply, position, &mut owner).expect("owner");
            let field = |at: usize| u16::from_be_bytes([reply[at], reply[at + 1]]);
            let rtype = field(position);
            let class = field(position + 2);
            let ttl = u32::from_be_bytes(reply[position + 4..position + 8].try_into().unwrap());
            let length = field(position + 8) as usize;
            let rdata_at = position + 10;
            position = rdata_at + length;
            assert!(position <= reply.len(), "record runs past the end");
            if rtype == rtype::OPT {
                opt = Some((class, ttl));
                extended = (ttl >> 24) << 4;
                continue;
            }
            let rdata = match rtype {
                rtype::CNAME | rtype::NS | rtype::DNAME => {
                    let mut target = Vec::new();
                    read_compressed(reply, rdata_at, &mut target).expect("rdata name");
                    to_text(&target)
                }
                rtype::A => reply[rdata_at..position]
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join("."),
                _ => format!("{} bytes", length),
            };
            records.push((section, to_text(&owner), rtype, ttl, rdata));
        }
    }
    assert_eq!(position, reply.len(), "trailing bytes");
    let flags = u16::from_be_bytes([reply[2], reply[3]]);
    Parsed {
        id: u16::from_be_bytes([reply[0], reply[1]]),
        flags,
        rcode: (flags & 0xF) | extended as u16,
        question,
        records,
        opt,
    }
}

fn query(name: &str, qtype: u16, edns: Option<(u16, u32)>) -> Vec<u8> {
    let mut packet = vec![
        0xAB,
        0xCD,
        0x01,
        0x00,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        u8::from(edns.is_some()),
    ];
    // Keep the caller's case: build the wire name by hand.
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.push(0);
    packet.extend_from_slice(&qtype.to_be_bytes());
    packet.extend_from_slice(&1u16.to_be_bytes());
    if let Some((size, ttl)) = edns {
        packet.extend_from_slice(&[0, 0, 41]);
        packet.extend_from_slice(&size.to_be_bytes());
        packet.extend_from_slice(&ttl.to_be_bytes());
        packet.extend_from_slice(&[0, 0]);
    }
    packet
}

fn table() -> AnswerTable {
    let origin = from_text("example").unwrap();
    let loaded = crate::zone::load_text(&origin, ZONE, Path::new("test.zone")).expect("zone loads");
    compile(&[ZoneInput::Loaded(&loaded.zone)])
}

fn ask(table: &AnswerTable, packet: &[u8], transport: Transport) -> Option<Parsed> {
    let mut out = vec![0u8; 65535];
    let mut scratch = Query::default();
    let length = respond(&mut scratch, packet, table, transport, &mut out);
    (length > 0).then(|| parse(&out[..length]))
}

fn udp(table: &AnswerTable, name: &str, qtype: u16) -> Parsed {
    ask(table, &query(name, qtype, None), Transport::Udp).expect("a reply")
}

fn section(parsed: &Parsed, wanted: usize) -> Vec<(String, u16, String)> {
    parsed
        .records
        .iter()
        .filter(|r| r.0 == wanted)
        .map(|r| (r.1.clone(), r.2, r.4.clone()))
        .collect()
}

fn aa(parsed: &Parsed) -> bool {
    parsed.flags & FLAG_AA != 0
}

#[test]
fn positive_answer_echoes_header_and_question_case() {
    let table = table();
    let packet = query("WwW.ExAmple", rtype::A, None);
    let reply = ask(&table, &packet, Transport::Udp).unwrap();
    assert_eq!(reply.id, 0xABCD);
    assert!(aa(&reply));
    assert_eq!(reply.flags & 0x8000, 0x8000, "QR");
    assert_eq!(reply.flags & FLAG_RD, FLAG_RD, "RD copied");
    assert_eq!(reply.flags & 0x0080, 0, "RA clear");
    assert_eq!(
        reply.question,
        packet[12..].to_vec(),
        "question echoed byte for byte"
    );
    assert_eq!(
        section(&reply, 0),
        vec![(
            "WwW.ExAmple.".to_string(),
            rtype::A,
            "192.0.2.80".to_string()
        )]
    );
    assert!(reply.opt.is_none(), "no OPT without one in the query");
}

#[test]
fn negative_answers_carry_the_soa_with_the_negative_ttl() {
    let table = table();
    let nxdomain = udp(&table, "nope.a.b.c.nothing.example", rtype::A);
    assert_eq!(nxdomain.rcode, rcode::NXDOMAIN as u16);
    assert!(aa(&nxdomain));
    let authority: Vec<_> = nxdomain.records.iter().filter(|r| r.0 == 1).collect();
    assert_eq!(authority.len(), 1);
    assert_eq!(
        (authority[0].1.as_str(), authority[0].2, authority[0].3),
        ("example.", rtype::SOA, 300)
    );
    // Empty non-terminals and missing types are NODATA.
    for (name, qtype) in [
        ("b.c.example", rtype::A),
        ("c.example", rtype::TXT),
        ("www.example", rtype::MX),
    ] {
        let nodata = udp(&table, name, qtype);
        assert_eq!(nodata.rcode, 0, "{name}");
        assert!(section(&nodata, 0).is_empty());
        assert_eq!(section(&nodata, 1)[0].1, rtype::SOA);
    }
}

#[test]
fn referrals_and_ds_at_the_cut() {
    let table = table();
    for name in ["sub.example", "ns1.sub.example", "deep.below.sub.example"] {
        let referral = udp(&table, name, rtype::A);
        assert!(!aa(&referral), "{name}: referrals are not authoritative");
        assert_eq!(referral.rcode, 0);
        assert!(section(&referral, 0).is_empty());
        assert_eq!(section(&referral, 1).len(), 2);
        assert!(
            section(&referral, 1)
                .iter()
                .all(|r| r.0 == "sub.example." && r.1 == rtype::NS)
        );
        let glue: Vec<String> = section(&referral, 2).into_iter().map(|r| r.2).collect();
        assert_eq!(glue, vec!["192.0.2.53", "192.0.2.54"]);
    }
    let ds = udp(&table, "sub.example", rtype::DS);
    assert!(aa(&ds));
    assert_eq!(section(&ds, 0)[0].1, rtype::DS);
    // Apex NS: the sibling-glue name server's address comes from below the cut.
    let apex = udp(&table, "example", rtype::NS);
    assert!(aa(&apex));
    assert_eq!(section(&apex, 2).len(), 3, "ns1 A+AAAA and ns2.sub A");
}

#[test]
fn cname_chains_loops_and_exits() {
    let table = table();
    let chain = udp(&table, "chain1.example", rtype::A);
    let answer: Vec<(String, u16)> = section(&chain, 0).into_iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(
        answer,
        vec![
            ("chain1.example.".into(), rtype::CNAME),
            ("chain2.example.".into(), rtype::CNAME),
            ("alias.example.".into(), rtype::CNAME),
            ("www.example.".into(), rtype::A)
        ]
    );
    let only = udp(&table, "chain1.example", rtype::CNAME);
    assert_eq!(section(&only, 0).len(), 1);
    let looped = udp(&table, "loop1.example", rtype::A);
    assert_eq!(looped.rcode, 0);
    assert_eq!(section(&looped, 0).len(), 2);
    let outside = udp(&table, "outside.example", rtype::A);
    assert_eq!(
        section(&outside, 0),
        vec![(
            "outside.example.".into(),
            rtype::CNAME,
            "www.example.net.".into()
        )]
    );
    let dangling = udp(&table, "dangling.example", rtype::A);
    assert_eq!(
        dangling.rcode,
        rcode::NXDOMAIN as u16,
        "RFC 6604: the chain's last name decides"
    );
    assert_eq!(section(&dangling, 0).len(), 1);
}

#[test]
fn wildcards_per_rfc_4592() {
    let table = table();
    let wild = udp(&table, "anything.wild.example", rtype::TXT);
    assert_eq!(section(&wild, 0)[0].0, "anything.wild.example.");
    let deeper = udp(&table, "a.b.wild.example", rtype::A);
    assert_eq!(
        section(&deeper, 0),
        vec![("a.b.wild.example.".into(), rtype::A, "192.0.2.100".into())]
    );
    let nodata = udp(&table, "x.wild.example", rtype::MX);
    assert_eq!((nodata.rcode, section(&nodata, 0).len()), (0, 0));
    // The empty non-terminal y.blk blocks *.blk for names below it.
    let blocked = udp(&table, "z.y.blk.example", rtype::A);
    assert_eq!(blocked.rcode, rcode::NXDOMAIN as u16);
    let matched = udp(&table, "q.blk.example", rtype::A);
    assert_eq!(section(&matched, 0)[0].2, "192.0.2.8");
    let wcname = udp(&table, "foo.wcname.example", rtype::A);
    let answer: Vec<(String, u16)> = section(&wcname, 0)
        .into_iter()
        .map(|r| (r.0, r.1))
        .collect();
    assert_eq!(
        answer,
        vec![
            ("foo.wcname.example.".into(), rtype::CNAME),
            ("www.example.".into(), rtype::A)
        ]
    );
}

#[test]
fn dname_synthesises_a_cname() {
    let table = table();
    let reply = udp(&table, "x.Red.example", rtype::A);
    let answer = section(&reply, 0);
    assert_eq!(
        answer[0],
        ("Red.example.".into(), rtype::DNAME, "blue.example.".into())
    );
    assert_eq!(
        answer[1],
        (
            "x.Red.example.".into(),
            rtype::CNAME,
            "x.blue.example.".into()
        )
    );
    assert_eq!(reply.rcode, 0);
}

#[test]
fn refusals_and_errors() {
    let table = table();
    let outside = udp(&table, "www.example.org", rtype::A);
    assert_eq!(outside.rcode, rcode::REFUSED as u16);
    assert!(!aa(&outside));
    let mut chaos = query("version.bind", rtype::TXT, None);
    let class_at = chaos.len() - 2;
    chaos[class_at..].copy_from_slice(&3u16.to_be_bytes());
    assert_eq!(
        ask(&table, &chaos, Transport::Udp).unwrap().rcode,
        rcode::REFUSED as u16
    );
    let mut response = query("www.example", rtype::A, None);
    response[2] |= 0x80;
    assert!(
        ask(&table, &response, Transport::Udp).is_none(),
        "QR=1 is dropped"
    );
    let mut status = query("www.example", rtype::A, None);
    status[2] = 0x10;
    assert_eq!(
        ask(&table, &status, Transport::Udp).unwrap().rcode,
        rcode::NOTIMP as u16
    );
    let badvers = ask(
        &table,
        &query("www.example", rtype::A, Some((1232, 0x0001_0000))),
        Transport::Udp,
    )
    .unwrap();
    assert_eq!(badvers.rcode, rcode::BADVERS);
    assert!(badvers.records.is_empty());
}

#[test]
fn edns_and_truncation() {
    let table = table();
    let with_opt = ask(
        &table,
        &query("www.example", rtype::A, Some((4096, 0x8000))),
        Transport::Udp,
    )
    .unwrap();
    let (payload, ttl) = with_opt.opt.expect("OPT echoed");
    assert_eq!(payload, UDP_PAYLOAD_SIZE_MAX);
    assert_eq!(ttl & 0x8000, 0x8000, "DO echoed");
    // 40 A records: 16*40 + header > 512 without EDNS.
    let truncated = udp(&table, "big.example", rtype::A);
    assert_eq!(truncated.flags & FLAG_TC, FLAG_TC);
    assert!(truncated.records.is_empty());
    let fits = ask(
        &table,
        &query("big.example", rtype::A, Some((1232, 0))),
        Transport::Udp,
    )
    .unwrap();
    assert_eq!(fits.flags & FLAG_TC, 0);
    assert_eq!(section(&fits, 0).len(), 40);
    let tcp = ask(
        &table,
        &query("big.example", rtype::A, None),
        Transport::Tcp,
    )
    .unwrap();
    assert_eq!(section(&tcp, 0).len(), 40);
}

#[test]
fn any_returns_one_rrset_per_rfc_8482() {
    let table = table();
    let any = udp(&table, "ns1.example", rtype::ANY);
    let types: Vec<u16> = section(&any, 0).into_iter().map(|r| r.1).collect();
    assert_eq!(types, vec![rtype::A], "the lowest type, as Knot picks");
    let alias = udp(&table, "alias.example", rtype::ANY);
    assert_eq!(section(&alias, 0).len(), 1);
    assert_eq!(section(&alias, 0)[0].1, rtype::CNAME);
}

#[test]
fn parent_and_child_zones_served_together() {
    let parent_origin = from_text("example").unwrap();
    let parent = crate::zone::load_text(&parent_origin, ZONE, Path::new("parent.zone")).unwrap();
    let child_origin = from_text("sub.example").unwrap();
    let child_text = "$ORIGIN sub.example.\n@ 60 SOA ns1 hm 7 1 1 1 1\n@ 60 NS ns1\nns1 60 A 192.0.2.53\nwww 60 A 192.0.2.99\n";
    let child = crate::zone::load_text(&child_origin, child_text, Path::new("child.zone")).unwrap();
    let table = compile(&[
        ZoneInput::Loaded(&child.zone),
        ZoneInput::Loaded(&parent.zone),
    ]);
    // The child answers for its own names, authoritatively.
    let www = udp(&table, "www.sub.example", rtype::A);
    assert!(aa(&www));
    assert_eq!(section(&www, 0)[0].2, "192.0.2.99");
    let soa = udp(&table, "sub.example", rtype::SOA);
    assert_eq!(section(&soa, 0)[0].1, rtype::SOA);
    // DS at the child's apex is the parent's (RFC 4035 §3.1.4.1).
    let ds = udp(&table, "sub.example", rtype::DS);
    assert!(aa(&ds));
    assert_eq!(section(&ds, 0).len(), 1);
    assert_eq!(section(&ds, 0)[0].1, rtype::DS);
    // A child that failed to load answers SERVFAIL but keeps the parent's DS.
    let failed = compile(&[
        ZoneInput::Failed {
            origin: child_origin.clone(),
        },
        ZoneInput::Loaded(&parent.zone),
    ]);
    assert_eq!(
        udp(&failed, "www.sub.example", rtype::A).rcode,
        rcode::SERVFAIL as u16
    );
    assert_eq!(
        section(&udp(&failed, "sub.example", rtype::DS), 0)[0].1,
        rtype::DS
    );
}

#[test]
fn answers_too_large_for_any_message() {
    let origin = from_text("example").unwrap();
    let text = "$ORIGIN example.\n@ SOA ns hm 1 2 3 4 5\n NS ns\nns A 192.0.2.1\n$GENERATE 1-1500 big TXT \"0123456789abcdef-$\"\n$GENERATE 1-5000 huge TXT \"0123456789abcdef-$\"\n";
    let loaded = crate::zone::load_text(&origin, text, Path::new("big.zone")).unwrap();
    let table = compile(&[ZoneInput::Loaded(&loaded.zone)]);
    // About 53 KB: whole over TCP, TC over UDP.
    let tcp = ask(
        &table,
        &query("big.example", rtype::TXT, None),
        Transport::Tcp,
    )
    .unwrap();
    assert_eq!(section(&tcp, 0).len(), 1500);
    let udp_reply = udp(&table, "big.example", rtype::TXT);
    assert_eq!(udp_reply.flags & FLAG_TC, FLAG_TC);
    // About 175 KB: no message can carry it.
    let huge = ask(
        &table,
        &query("huge.example", rtype::TXT, None),
        Transport::Tcp,
    )
    .unwrap();
    assert_eq!(huge.rcode, rcode::SERVFAIL as u16);
    assert!(huge.records.is_empty());
}

#[test]
fn nsid_when_asked_and_formerr_for_a_lying_option() {
    let mut table = table();
    table.set_nsid(b"ns1-paris");
    // An OPT whose RDATA is one NSID option with no data (RFC 5001 §2.1).
    let with_option = |option: &[u8]| {
        let mut packet = query("www.example", rtype::A, None);
        packet[11] = 1;
        packet.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0]);
        packet.extend_from_slice(&(option.len() as u16).to_be_bytes());
        packet.extend_from_slice(option);
        packet
    };
    let mut out = vec![0u8; 65535];
    let mut scratch = Query::default();
    let length = respond(
        &mut scratch,
        &with_option(&[0, 3, 0, 0]),
        &table,
        Transport::Udp,
        &mut out,
    );
    let reply = &out[..length];
    assert!(
        reply.ends_with(&[
            0, 13, 0, 3, 0, 9, b'n', b's', b'1', b'-', b'p', b'a', b'r', b'i', b's'
        ]),
        "{reply:?}"
    );
    let parsed = parse(reply);
    assert_eq!(parsed.opt.map(|opt| opt.0), Some(UDP_PAYLOAD_SIZE_MAX));
    assert_eq!(section(&parsed, 0).len(), 1);
    // Without the option, no NSID.
    let plain = ask(
        &table,
        &query("www.example", rtype::A, Some((1232, 0))),
        Transport::Udp,
    )
    .unwrap();
    assert!(plain.opt.is_some());
    let length = respond(
        &mut scratch,
        &query("www.example", rtype::A, Some((1232, 0))),
        &table,
        Transport::Udp,
        &mut out,
    );
    assert!(out[..length].ends_with(&[0, 41, 4, 208, 0, 0, 0, 0, 0, 0]));
    // An option claiming more bytes than the OPT holds.
    let lying = ask(&table, &with_option(&[0, 3, 0, 9, 1]), Transport::Udp).unwrap();
    assert_eq!(lying.rcode, rcode::FORMERR as u16);
}

mod cookies {
    use super::*;
    use crate::cookie::{SecretPair, ServerCookieCheck, server_cookie};

    const SECRET: [u8; 16] = *b"0123456789abcdef";
    const CLIENT_COOKIE: [u8; 8] = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];
    const NOW: u32 = 1_700_000_000;

    fn fixed_clock() -> u32 {
        NOW
    }

    fn client() -> IpAddr {
        "192.0.2.33".parse().unwrap()
    }

    /// A query for `name` with an OPT (payload 1232, `version`) holding
    /// `options`, each given as (code, data).
    fn query_with(name: &str, qtype: u16, version: u8, options: &[(u16, &[u8])]) -> Vec<u8> {
        let mut packet = query(name, qtype, None);
        packet[11] = 1;
        packet.extend_from_slice(&[0, 0, 41, 4, 208, 0, version, 0, 0]);
        let rdata_len: usize = options.iter().map(|(_, data)| 4 + data.len()).sum();
        packet.extend_from_slice(&(rdata_len as u16).to_be_bytes());
        for (code, data) in options {
            packet.extend_from_slice(&code.to_be_bytes());
            packet.extend_from_slice(&(data.len() as u16).to_be_bytes());
            packet.extend_from_slice(data);
        }
        packet
    }

    /// The reply and how the query's cookie checked out.
    fn ask_cookies(
        table: &AnswerTable,
        packet: &[u8],
        transport: Transport,
        secrets: &CookieSecrets,
    ) -> (Vec<u8>, Option<ServerCookieCheck>) {
        let mut out = vec![0u8; 65535];
        let mut scratch = Query::default();
        let cookies = Cookies {
            secrets,
            client: client(),
            clock: fixed_clock,
        };
        let length = respond_with_cookies(
            &mut scratch,
            packet,
            table,
            transport,
            Some(cookies),
            &mut out,
        );
        let check = scratch.cookie_answer.map(|answer| answer.check);
        out.truncate(length);
        (out, check)
    }

    fn secrets() -> CookieSecrets {
        CookieSecrets::new(SecretPair {
            current: SECRET,
            previous: SECRET,
        })
    }

    /// The COOKIE option that ends a reply: client cookie and server cookie.
    fn reply_cookie(reply: &[u8]) -> ([u8; 8], [u8; 16]) {
        let option = &reply[reply.len() - 28..];
        assert_eq!(option[..4], [0, 10, 0, 24], "{reply:?}");
        (
            option[4..12].try_into().unwrap(),
            option[12..].try_into().unwrap(),
        )
    }

    #[test]
    fn a_client_cookie_gets_ours_and_ours_comes_back_valid() {
        let mut table = table();
        table.set_nsid(b"ns1");
        let secrets = secrets();
        let expected = server_cookie(&SECRET, &CLIENT_COOKIE, client(), NOW);
        // NSID first, then the cookie; both in one OPT.
        let packet = query_with(
            "www.example",
            rtype::A,
            0,
            &[(3, &[]), (10, &CLIENT_COOKIE)],
        );
        let (reply, check) = ask_cookies(&table, &packet, Transport::Udp, &secrets);
        assert_eq!(check, Some(ServerCookieCheck::Absent));
        assert_eq!(reply_cookie(&reply), (CLIENT_COOKIE, expected));
        let parsed = parse(&reply);
        assert_eq!(section(&parsed, 0).len(), 1);
        let nsid_at = reply.len() - 28 - 7;
        assert_eq!(reply[nsid_at..nsid_at + 7], [0, 3, 0, 3, b'n', b's', b'1']);
        let opt_at = reply.len() - opt_record_len_for(&table, &packet, &secrets);
        assert_eq!(reply[opt_at..opt_at + 3], [0, 0, 41]);
        assert_eq!(
            u16::from_be_bytes([reply[opt_at + 9], reply[opt_at + 10]]),
            7 + 28
        );

        let mut returned = CLIENT_COOKIE.to_vec();
        returned.extend_from_slice(&expected);
        let packet = query_with("www.example", rtype::A, 0, &[(10, &returned)]);
        for transport in [Transport::Udp, Transport::Tcp] {
            let (reply, check) = ask_cookies(&table, &packet, transport, &secrets);
            assert_eq!(check, Some(ServerCookieCheck::Valid));
            assert_eq!(reply_cookie(&reply), (CLIENT_COOKIE, expected));
        }

        // From another secret: still answered, with a fresh cookie of ours.
        let other = CookieSecrets::new(SecretPair {
            current: [1; 16],
            previous: [1; 16],
        });
        let (reply, check) = ask_cookies(&table, &packet, Transport::Udp, &other);
        assert_eq!(check, Some(ServerCookieCheck::Invalid));
        assert_eq!(parse(&reply).rcode, rcode::NOERROR as u16);
        assert_eq!(
            reply_cookie(&reply).1,
            server_cookie(&[1; 16], &CLIENT_COOKIE, client(), NOW)
        );
    }

    fn opt_record_len_for(table: &AnswerTable, packet: &[u8], secrets: &CookieSecrets) -> usize {
        let mut out = vec![0u8; 65535];
        let mut scratch = Query::default();
        let cookies = Cookies {
            secrets,
            client: client(),
            clock: fixed_clock,
        };
        respond_with_cookies(
            &mut scratch,
            packet,
            table,
            Transport::Udp,
            Some(cookies),
            &mut out,
        );
        opt_record_len(&scratch, table)
    }

    #[test]
    fn without_cookies_configured_no_cookie_is_answered() {
        let table = table();
        let packet = query_with("www.example", rtype::A, 0, &[(10, &CLIENT_COOKIE)]);
        let mut out = vec![0u8; 65535];
        let mut scratch = Query::default();
        let length = respond(&mut scratch, &packet, &table, Transport::Udp, &mut out);
        assert!(out[..length].ends_with(&[0, 41, 4, 208, 0, 0, 0, 0, 0, 0]));
        assert_eq!(scratch.cookie_answer, None);
        // Nor without a COOKIE option when they are.
        let plain = query_with("www.example", rtype::A, 0, &[]);
        let (reply, check) = ask_cookies(&table, &plain, Transport::Udp, &secrets());
        assert_eq!(check, None);
        assert!(reply.ends_with(&[0, 41, 4, 208, 0, 0, 0, 0, 0, 0]));
    }

    /// RFC 7873 §5.2.2: 8 bytes, or 16 to 40; anything else is FORMERR
    /// with cookies configured, and ignored without (as Knot and NSD).
    #[test]
    fn malformed_lengths_are_formerr_and_only_the_first_option_counts() {
        let table = table();
        let secrets = secrets();
        let data = [7u8; 41];
        for length in [0, 1, 7, 9, 15, 41] {
            let packet = query_with("www.example", rtype::A, 0, &[(10, &data[..length])]);
            let (reply, _) = ask_cookies(&table, &packet, Transport::Udp, &secrets);
            assert_eq!(parse(&reply).rcode, rcode::FORMERR as u16, "{length} bytes");
            let plain = ask(&table, &packet, Transport::Udp).unwrap();
            assert_eq!(plain.rcode, rcode::NOERROR as u16, "{length} bytes");
            assert_eq!(section(&plain, 0).len(), 1);
        }
        for length in [8, 16, 24, 40] {
            let packet = query_with("www.example", rtype::A, 0, &[(10, &data[..length])]);
            let (reply, check) = ask_cookies(&table, &packet, Transport::Udp, &secrets);
            assert_eq!(parse(&reply).rcode, rcode::NOERROR as u16, "{length} bytes");
            let expected = match length {
                8 => ServerCookieCheck::Absent,
                _ => ServerCookieCheck::Invalid,
            };
            assert_eq!(check, Some(expected), "{length} bytes");
            assert_eq!(reply_cookie(&reply).0, [7; 8]);
        }
        // A second COOKIE option, even a malformed one, is ignored (§5.2).
        let packet = query_with(
            "www.example",
            rtype::A,
            0,
            &[(10, &CLIENT_COOKIE), (10, &data[..3])],
        );
        let (reply, check) = ask_cookies(&table, &packet, Transport::Udp, &secrets);
        assert_eq!(check, Some(ServerCookieCheck::Absent));
        assert_eq!(reply_cookie(&reply).0, CLIENT_COOKIE);
    }

    #[test]
    fn truncated_and_error_replies_carry_the_cookie() {
        let table = table();
        let secrets = secrets();
        let expected = server_cookie(&SECRET, &CLIENT_COOKIE, client(), NOW);
        // 40 A records: truncated or not, the reply ends in the cookie.
        let big = query_with("big.example", rtype::A, 0, &[(10, &CLIENT_COOKIE)]);
        let (reply, _) = ask_cookies(&table, &big, Transport::Udp, &secrets);
        let parsed = parse(&reply);
        assert!(reply.len() <= UDP_PAYLOAD_SIZE_MAX as usize);
        if parsed.flags & FLAG_TC != 0 {
            assert!(parsed.records.is_empty());
        }
        assert_eq!(reply_cookie(&reply), (CLIENT_COOKIE, expected));
        // REFUSED (not ours), NOTIMP (AXFR over UDP), BADVERS.
        for (packet, code) in [
            (
                query_with("www.example.org", rtype::A, 0, &[(10, &CLIENT_COOKIE)]),
                rcode::REFUSED as u16,
            ),
            (
                query_with("example", rtype::AXFR, 0, &[(10, &CLIENT_COOKIE)]),
                rcode::NOTIMP as u16,
            ),
            (
                query_with("www.example", rtype::A, 1, &[(10, &CLIENT_COOKIE)]),
                rcode::BADVERS,
            ),
        ] {
            let (reply, check) = ask_cookies(&table, &packet, Transport::Udp, &secrets);
            assert_eq!(parse(&reply).rcode, code);
            assert_eq!(check, Some(ServerCookieCheck::Absent));
            assert_eq!(reply_cookie(&reply), (CLIENT_COOKIE, expected));
        }
    }

    /// A payload of 512 with a long answer: the TC form still has room for
    /// OPT with the cookie, and the cookie's bytes count against the limit.
    #[test]
    fn the_cookie_counts_against_the_payload_limit() {
        let table = table();
        let secrets = secrets();
        for payload in [512u16, 600, 1232] {
            let mut packet = query_with("big.example", rtype::A, 0, &[(10, &CLIENT_COOKIE)]);
            let at = packet.len() - 4 - 8 - 8;
            packet[at..at + 2].copy_from_slice(&payload.to_be_bytes());
            let (reply, _) = ask_cookies(&table, &packet, Transport::Udp, &secrets);
            assert!(
                reply.len() <= payload as usize,
                "{payload}: {}",
                reply.len()
            );
            assert_eq!(reply_cookie(&reply).0, CLIENT_COOKIE);
        }
    }
}
