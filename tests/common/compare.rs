//! The comparison machinery of the differential tests: a query list
//! ([`Case`]) is sent unchanged to Knot, NSD and ringdns, and ringdns must
//! agree with the references on every field where they agree with each
//! other ([`run`]). Fields the references dispute are only reported, with
//! the side ringdns took.
//!
//! Compared per reply: RCODE, opcode, the QR AA TC RD RA AD CD flags, the
//! question (case-exact, for 0x20), the answer/authority/additional
//! sections as sets of records (see [`super::Rr`]), and the OPT record
//! (present or not, EDNS version, DO bit, extended RCODE; not the payload
//! size).

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use domain::base::iana::Rtype;

use super::{
    Edns, QueryOpts, Reply, Rr, ServerProcess, TempDir, build_query, exchange_udp, parse_reply,
    rcode_name,
};

/// One query of the list: a description for the report and the wire bytes
/// sent unchanged (same ID) to every server.
pub struct Case {
    pub desc: String,
    pub wire: Vec<u8>,
    /// False for queries whose answer is a product choice rather than a
    /// protocol rule (server identity over CHAOS): ringdns's differences
    /// there are reported, never failures.
    pub checked: bool,
}

/// A checked query for `name`/`rtype` with `opts`.
pub fn case(name: &str, rtype: Rtype, opts: QueryOpts) -> Case {
    Case {
        desc: describe(name, rtype, &opts),
        wire: build_query(name, rtype, &opts),
        checked: true,
    }
}

/// `name class type` plus the options that differ from the defaults.
pub fn describe(name: &str, rtype: Rtype, opts: &QueryOpts) -> String {
    let mut d = format!("{name} {} {rtype}", opts.class);
    match opts.edns {
        None => d.push_str(" noedns"),
        Some(Edns {
            payload,
            do_bit,
            version,
        }) => {
            d.push_str(&format!(" edns={payload}"));
            if version != 0 {
                d.push_str(&format!(" ednsver={version}"));
            }
            if do_bit {
                d.push_str(" +do");
            }
        }
    }
    for (on, flag) in [(opts.rd, "+rd"), (opts.cd, "+cd"), (opts.ad, "+ad")] {
        if on {
            d.push(' ');
            d.push_str(flag);
        }
    }
    if opts.opcode != 0 {
        d.push_str(&format!(" opcode={}", opts.opcode));
    }
    d
}

/// 0x20 mixed case: alternates upper/lower within each label, starting
/// upper ("www.diff.test." -> "WwW.DiFf.TeSt.").
pub fn mixed_case(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            if c == '.' {
                upper = true;
                return c;
            }
            if !c.is_ascii_alphabetic() {
                return c;
            }
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = !upper;
            out
        })
        .collect()
}

/// `<tmp>/<name>`, created.
pub fn subdir(tmp: &TempDir, name: &str) -> PathBuf {
    let dir = tmp.join(name);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir
}

/// What a server did with one query.
pub enum Outcome {
    NoReply,
    Unparsable(String),
    Reply(Reply),
}

impl Outcome {
    pub fn get(server: &ServerProcess, wire: &[u8]) -> Outcome {
        match exchange_udp(server.addr, wire) {
            None => Outcome::NoReply,
            Some(bytes) => match parse_reply(&bytes) {
                Ok(reply) => Outcome::Reply(reply),
                Err(e) => Outcome::Unparsable(e),
            },
        }
    }

    pub fn short(&self) -> String {
        match self {
            Outcome::NoReply => "no reply".into(),
            Outcome::Unparsable(e) => format!("unparsable reply ({e})"),
            Outcome::Reply(r) => r.summary(),
        }
    }

    pub fn full(&self) -> String {
        match self {
            Outcome::Reply(r) => r.to_string(),
            other => format!("{}\n", other.short()),
        }
    }
}

/// One field on which two outcomes differ, with the explanation lines.
pub struct FieldDiff {
    pub field: &'static str,
    pub text: String,
}

/// The fields on which two outcomes differ, labelling the two sides `la`
/// and `lb`. Empty means "agree". If either side is not a parsed reply the
/// only field is "reply".
pub fn diff(a: &Outcome, b: &Outcome, la: &str, lb: &str) -> Vec<FieldDiff> {
    let (x, y) = match (a, b) {
        (Outcome::Reply(x), Outcome::Reply(y)) => (x, y),
        (Outcome::NoReply, Outcome::NoReply) => return vec![],
        _ => {
            return vec![FieldDiff {
                field: "reply",
                text: format!("{la}: {}; {lb}: {}", a.short(), b.short()),
            }];
        }
    };
    let mut out = Vec::new();
    let mut scalar = |field: &'static str, vx: String, vy: String| {
        if vx != vy {
            out.push(FieldDiff {
                field,
                text: format!("{la}: {vx}; {lb}: {vy}"),
            });
        }
    };
    scalar("opcode", x.opcode.to_string(), y.opcode.to_string());
    scalar(
        "rcode",
        rcode_name(x.rcode.into()),
        rcode_name(y.rcode.into()),
    );
    scalar("flags", x.flags.to_string(), y.flags.to_string());
    let question = |r: &Reply| {
        if r.question.is_empty() {
            "(none)".to_string()
        } else {
            r.question.join(", ")
        }
    };
    scalar("question", question(x), question(y));
    let opt = |r: &Reply| r.opt.map_or("none".to_string(), |o| o.to_string());
    scalar("opt", opt(x), opt(y));
    for (field, sx, sy) in [
        ("answer", &x.answer, &y.answer),
        ("authority", &x.authority, &y.authority),
        ("additional", &x.additional, &y.additional),
    ] {
        if sx == sy {
            continue;
        }
        let list = |only: Vec<&Rr>| -> String {
            if only.is_empty() {
                "        (nothing)\n".to_string()
            } else {
                only.iter().map(|rr| format!("        {rr}\n")).collect()
            }
        };
        let text = format!(
            "\n      only {la}:\n{}      only {lb}:\n{}",
            list(sx.difference(sy).collect()),
            list(sy.difference(sx).collect())
        );
        out.push(FieldDiff {
            field,
            text: text.trim_end().to_string(),
        });
    }
    out
}

/// Formats a query's field differences as an indented block.
pub fn render(desc: &str, diffs: &[FieldDiff]) -> String {
    let mut s = desc.to_string();
    for d in diffs {
        s.push_str(&format!("\n    {}: {}", d.field, d.text));
    }
    s
}

/// Which reference ringdns followed on the fields Knot and NSD dispute.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Side {
    Knot,
    Nsd,
    Both,
    Neither,
}

/// One ringdns mismatch on fields where Knot and NSD agree.
pub struct Mismatch {
    /// The query's description.
    pub desc: String,
    /// The fields that differ ("rcode", "answer", ...).
    pub fields: Vec<&'static str>,
    /// The full report: query, field differences, both summaries.
    pub text: String,
}

/// The result of sending a query list to the three servers.
#[derive(Default)]
pub struct Comparison {
    /// Size of the query list.
    pub queries: usize,
    /// Queries with `checked` set.
    pub checked: usize,
    /// Whether ringdns took part.
    pub ringdns_ran: bool,
    /// Queries on which Knot and NSD agree on every field.
    pub peers_agree: usize,
    /// Queries on which ringdns matches every field Knot and NSD agree on
    /// (checked queries only).
    pub ring_match: usize,
    /// Checked queries where ringdns differs on an agreed field.
    pub mismatches: Vec<Mismatch>,
    /// Knot-vs-NSD differences, one block per query.
    pub disagreements: Vec<String>,
    /// Disputed field set -> number of queries.
    pub by_fields: BTreeMap<String, usize>,
    /// On disputed fields: whom ringdns followed.
    pub sides: BTreeMap<Side, usize>,
    /// Disputed fields where ringdns followed neither reference.
    pub ring_neither: Vec<String>,
    /// ringdns's differences on informational-only queries.
    pub unchecked: Vec<String>,
}

/// Sends every case to Knot, NSD and (if given) ringdns, one after the
/// other, and compares the replies field by field. With `verbose`, prints
/// every query and every reply.
pub fn run(
    knot: &ServerProcess,
    nsd: &ServerProcess,
    ringdns: Option<&ServerProcess>,
    cases: &[Case],
    verbose: bool,
) -> Comparison {
    let mut cmp = Comparison {
        queries: cases.len(),
        checked: cases.iter().filter(|c| c.checked).count(),
        ringdns_ran: ringdns.is_some(),
        ..Comparison::default()
    };
    for c in cases {
        let k = Outcome::get(knot, &c.wire);
        let n = Outcome::get(nsd, &c.wire);
        let r = ringdns.map(|s| Outcome::get(s, &c.wire));
        if verbose {
            println!("=== {}", c.desc);
            println!("--- knot: {}", k.full());
            println!("--- nsd: {}", n.full());
            if let Some(r) = &r {
                println!("--- ringdns: {}", r.full());
            }
        }

        // Fields the references dispute are reported, not checked.
        let peer_diff = diff(&k, &n, "knot", "nsd");
        let disputed: Vec<&str> = peer_diff.iter().map(|d| d.field).collect();
        if disputed.is_empty() {
            cmp.peers_agree += 1;
        } else {
            *cmp.by_fields.entry(disputed.join("+")).or_default() += 1;
            cmp.disagreements.push(render(&c.desc, &peer_diff));
        }
        let Some(r) = r else { continue };
        if disputed.contains(&"reply") {
            // One reference did not answer at all: nothing is agreed on.
            continue;
        }

        // Every field the references agree on must match.
        let ring_diff: Vec<FieldDiff> = diff(&k, &r, "knot+nsd", "ringdns")
            .into_iter()
            .filter(|d| !disputed.contains(&d.field))
            .collect();
        if !c.checked {
            if !ring_diff.is_empty() {
                cmp.unchecked.push(render(&c.desc, &ring_diff));
            }
        } else if ring_diff.is_empty() {
            cmp.ring_match += 1;
        } else {
            cmp.mismatches.push(Mismatch {
                desc: c.desc.clone(),
                fields: ring_diff.iter().map(|d| d.field).collect(),
                text: format!(
                    "{}\n    knot+nsd: {}\n    ringdns:  {}",
                    render(&c.desc, &ring_diff),
                    k.short(),
                    r.short()
                ),
            });
        }

        // Information: on the disputed fields, whom did ringdns follow?
        if !disputed.is_empty() {
            let same = |peer: &Outcome| {
                diff(peer, &r, "", "")
                    .iter()
                    .all(|d| !disputed.contains(&d.field))
            };
            let side = match (same(&k), same(&n)) {
                (true, true) => Side::Both,
                (true, false) => Side::Knot,
                (false, true) => Side::Nsd,
                (false, false) => Side::Neither,
            };
            *cmp.sides.entry(side).or_default() += 1;
            if side == Side::Neither {
                let ring_vs_knot: Vec<FieldDiff> = diff(&k, &r, "knot", "ringdns")
                    .into_iter()
                    .filter(|d| disputed.contains(&d.field))
                    .collect();
                cmp.ring_neither.push(render(&c.desc, &ring_vs_knot));
            }
        }
    }
    cmp
}

impl Comparison {
    /// Prints the disagreements, the mismatches and the summary to stdout.
    pub fn report(&self) {
        println!("\n##### Knot vs NSD disagreements (information only) #####");
        for d in &self.disagreements {
            println!("{d}");
        }
        println!("\n##### Knot vs NSD disagreements by disputed fields #####");
        for (fields, count) in &self.by_fields {
            println!("{count:5}  {fields}");
        }
        if !self.ring_neither.is_empty() {
            println!(
                "\n##### Disputed fields where ringdns follows neither (information only) #####"
            );
            for d in &self.ring_neither {
                println!("{d}");
            }
        }
        if !self.unchecked.is_empty() {
            println!("\n##### ringdns differences on informational-only queries #####");
            for d in &self.unchecked {
                println!("{d}");
            }
        }
        if !self.mismatches.is_empty() {
            println!("\n##### ringdns mismatches (on fields where Knot and NSD agree) #####");
            for m in &self.mismatches {
                println!("{}", m.text);
            }
        }
        println!("\n##### Summary #####");
        println!("queries:                        {}", self.queries);
        println!("Knot and NSD agree fully:       {}", self.peers_agree);
        println!(
            "Knot and NSD dispute a field:   {}",
            self.disagreements.len()
        );
        if self.ringdns_ran {
            println!(
                "ringdns matches the agreed fields: {} of {} checked queries",
                self.ring_match, self.checked
            );
            println!(
                "informational-only queries:     {} (ringdns differs on {})",
                self.queries - self.checked,
                self.unchecked.len()
            );
            println!("ringdns on disputed fields:     {:?}", self.sides);
        } else {
            println!("ringdns:                        not run");
        }
    }

    /// Guards against a silently broken harness, then fails the test if
    /// ringdns differs from Knot+NSD anywhere they agree. The query list
    /// must be as large as promised, and the references must mostly agree
    /// (if they did not, the zone or the configs would be wrong and the
    /// comparison would prove little).
    pub fn assert_sound_and_no_mismatches(&self, queries_min: usize) {
        assert!(self.queries >= queries_min, "only {} queries", self.queries);
        assert!(
            self.peers_agree * 10 >= self.queries * 7,
            "Knot and NSD agree on only {} of {} queries: check the zone and configs",
            self.peers_agree,
            self.queries
        );
        self.assert_no_mismatches();
    }

    /// Fails the test if ringdns differs from Knot+NSD on any agreed field
    /// of a checked query, listing every such query.
    pub fn assert_no_mismatches(&self) {
        assert!(
            self.mismatches.is_empty(),
            "ringdns differs from Knot+NSD on {} of {} checked queries (listed above):\n\n{}",
            self.mismatches.len(),
            self.checked,
            self.mismatches
                .iter()
                .map(|m| m.text.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
