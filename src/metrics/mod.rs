//! Query counters, one set per worker (and one for TCP), and their sum in
//! the Prometheus text format with CoreDNS's metric names and labels, so
//! CoreDNS dashboards and alerts keep working.
//!
//! This module owns counting and rendering. The fast path only calls
//! `QueryCounters::record` on its own worker's counters: a plain load and
//! store on cache lines no other core writes. Scrapes sum all workers.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Query types with their own `type` label, as CoreDNS lists them; every
/// other type is counted as `other`.
pub const TYPES: [(u16, &str); 20] = [
    (1, "A"),
    (28, "AAAA"),
    (2, "NS"),
    (12, "PTR"),
    (6, "SOA"),
    (5, "CNAME"),
    (15, "MX"),
    (16, "TXT"),
    (33, "SRV"),
    (35, "NAPTR"),
    (13, "HINFO"),
    (43, "DS"),
    (48, "DNSKEY"),
    (46, "RRSIG"),
    (47, "NSEC"),
    (50, "NSEC3"),
    (251, "IXFR"),
    (252, "AXFR"),
    (255, "ANY"),
    (65, "HTTPS"),
];
const TYPE_SLOTS: usize = TYPES.len() + 1;
/// RCODE names (RFC 6895 registry) for the `rcode` label; 24 and up are
/// `other`.
const RCODES: [&str; 24] = [
    "NOERROR",
    "FORMERR",
    "SERVFAIL",
    "NXDOMAIN",
    "NOTIMP",
    "REFUSED",
    "YXDOMAIN",
    "YXRRSET",
    "NXRRSET",
    "NOTAUTH",
    "NOTZONE",
    "DSOTYPENI",
    "RCODE12",
    "RCODE13",
    "RCODE14",
    "RCODE15",
    "BADVERS",
    "BADKEY",
    "BADTIME",
    "BADMODE",
    "BADNAME",
    "BADALG",
    "BADTRUNC",
    "BADCOOKIE",
];
const RCODE_SLOTS: usize = RCODES.len() + 1;

/// The mnemonic of an RCODE, `other` past the ones listed.
pub fn rcode_name(rcode: u16) -> &'static str {
    RCODES.get(rcode as usize).copied().unwrap_or("other")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp = 0,
    Tcp = 1,
}

/// `family` label: 1 for IPv4, 2 for IPv6, as CoreDNS writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4 = 0,
    V6 = 1,
}

/// Server-block zones with a `zone` label of their own; queries in more
/// zones than this count under the last slot, labelled ".".
pub const ZONE_SLOTS: usize = 16;

/// The `zone` label of each query: the longest server-block zone (as
/// CoreDNS labels it) that contains the question name.
#[derive(Clone, Debug, Default)]
pub struct ZoneLabels {
    /// (lowercased wire name, label text), at most `ZONE_SLOTS` of them.
    zones: Vec<(Vec<u8>, String)>,
}

impl ZoneLabels {
    /// From the server blocks' zone names (presentation form, "." for the
    /// root), longest first so the most specific zone wins.
    pub fn new(zone_names: &[String]) -> ZoneLabels {
        let mut zones: Vec<(Vec<u8>, String)> = zone_names
            .iter()
            .filter_map(|text| Some((crate::wire::name::from_text(text)?, text.clone())))
            .collect();
        zones.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        zones.dedup();
        zones.truncate(ZONE_SLOTS);
        ZoneLabels { zones }
    }

    /// The slot of `qname` (lowercased wire format): its zone's index, or
    /// `ZONE_SLOTS` for none. Walks the name's label starts, no allocation.
    #[inline]
    pub fn slot(&self, qname: &[u8]) -> usize {
        let mut start = 0;
        loop {
            let suffix = qname.get(start..).unwrap_or(&[]);
            if let Some(index) = self
                .zones
                .iter()
                .position(|(zone, _)| zone.as_slice() == suffix)
            {
                return index;
            }
            match qname.get(start) {
                Some(&length) if length > 0 => start += 1 + usize::from(length),
                _ => return ZONE_SLOTS,
            }
        }
    }

    /// The label text of every slot in use, the fallback "." last.
    pub fn names(&self) -> Vec<String> {
        self.zones.iter().map(|(_, text)| text.clone()).collect()
    }
}

/// One worker's counts. Aligned so no two workers share a cache line.
#[repr(align(128))]
pub struct QueryCounters {
    /// Per zone slot (`ZoneLabels`; the last is "."), protocol, family, type.
    requests: [[[[AtomicU64; TYPE_SLOTS]; 2]; 2]; ZONE_SLOTS + 1],
    /// Per zone slot, protocol, rcode.
    responses: [[[AtomicU64; RCODE_SLOTS]; 2]; ZONE_SLOTS + 1],
    dnssec_ok: [AtomicU64; 2],
    /// Responses response rate limiting dropped or truncated.
    rrl_limited: AtomicU64,
    /// Queries with a COOKIE option, by `ServerCookieCheck` (absent,
    /// valid, invalid).
    cookies: [AtomicU64; 3],
    /// Request and response sizes per protocol, in CoreDNS's buckets (a
    /// count per bucket, not cumulative: summed up at scrape), and sums.
    request_sizes: [[AtomicU64; SIZE_BUCKETS.len() + 1]; 2],
    response_sizes: [[AtomicU64; SIZE_BUCKETS.len() + 1]; 2],
    size_sums: [[AtomicU64; 2]; 2],
    /// Durations in CoreDNS's buckets (per bucket), and their sum in
    /// nanoseconds.
    durations: [AtomicU64; DURATION_BUCKETS + 1],
    duration_sum_ns: AtomicU64,
}

/// CoreDNS's size buckets (bytes), `coredns_dns_{request,response}_size_bytes`.
pub const SIZE_BUCKETS: [u32; 14] = [
    0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000,
];
/// CoreDNS's duration buckets: 0.25 ms doubling, 16 of them (up to 8.192 s).
pub const DURATION_BUCKETS: usize = 16;
const DURATION_FIRST_NS: u64 = 250_000;

fn size_bucket(size: usize) -> usize {
    SIZE_BUCKETS
        .iter()
        .position(|bound| size <= *bound as usize)
        .unwrap_or(SIZE_BUCKETS.len())
}

fn duration_bucket(nanos: u64) -> usize {
    let mut bound = DURATION_FIRST_NS;
    for bucket in 0..DURATION_BUCKETS {
        if nanos <= bound {
            return bucket;
        }
        bound *= 2;
    }
    DURATION_BUCKETS
}

impl Default for QueryCounters {
    fn default() -> Self {
        QueryCounters {
            requests: std::array::from_fn(|_| {
                std::array::from_fn(|_| {
                    std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                })
            }),
            responses: std::array::from_fn(|_| {
                std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0)))
            }),
            dnssec_ok: std::array::from_fn(|_| AtomicU64::new(0)),
            rrl_limited: AtomicU64::new(0),
            cookies: std::array::from_fn(|_| AtomicU64::new(0)),
            request_sizes: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            response_sizes: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            size_sums: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            durations: std::array::from_fn(|_| AtomicU64::new(0)),
            duration_sum_ns: AtomicU64::new(0),
        }
    }
}

fn type_slot(qtype: u16) -> usize {
    TYPES
        .iter()
        .position(|(number, _)| *number == qtype)
        .unwrap_or(TYPES.len())
}

fn cookie_slot(check: crate::cookie::ServerCookieCheck) -> usize {
    use crate::cookie::ServerCookieCheck;
    match check {
        ServerCookieCheck::Absent => 0,
        ServerCookieCheck::Valid => 1,
        ServerCookieCheck::Invalid => 2,
    }
}

impl QueryCounters {
    /// Counts one response limited by RRL (the worker's own counters).
    #[inline]
    pub fn record_rate_limited(&self) {
        let counter = &self.rrl_limited;
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Counts one query's COOKIE option (the worker's own counters).
    #[inline]
    pub fn record_cookie(&self, check: crate::cookie::ServerCookieCheck) {
        let counter = &self.cookies[cookie_slot(check)];
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Counts one answered query. `single_writer` is true on a worker's own
    /// counters (a plain load and store), false where threads share them.
    #[inline]
    /// The request's and the reply's sizes (`coredns_dns_request_size_bytes`,
    /// `coredns_dns_response_size_bytes`).
    pub fn record_sizes(&self, proto: Proto, request: usize, response: usize, single_writer: bool) {
        let add = |counter: &AtomicU64, amount: u64| {
            if single_writer {
                counter.store(counter.load(Ordering::Relaxed) + amount, Ordering::Relaxed);
            } else {
                counter.fetch_add(amount, Ordering::Relaxed);
            }
        };
        let proto = proto as usize;
        add(&self.request_sizes[proto][size_bucket(request)], 1);
        add(&self.response_sizes[proto][size_bucket(response)], 1);
        add(&self.size_sums[proto][0], request as u64);
        add(&self.size_sums[proto][1], response as u64);
    }

    /// `count` answers that took `nanos` each: a worker times a whole
    /// batch (two clock reads per batch, not per query) and gives every
    /// answer in it the batch's time, from its receipt to the replies
    /// being queued: an upper bound for each.
    pub fn record_durations(&self, count: u64, nanos: u64, single_writer: bool) {
        let add = |counter: &AtomicU64, amount: u64| {
            if single_writer {
                counter.store(counter.load(Ordering::Relaxed) + amount, Ordering::Relaxed);
            } else {
                counter.fetch_add(amount, Ordering::Relaxed);
            }
        };
        add(&self.durations[duration_bucket(nanos)], count);
        add(&self.duration_sum_ns, count.saturating_mul(nanos));
    }

    pub fn record(
        &self,
        proto: Proto,
        family: Family,
        qtype: u16,
        rcode: u16,
        dnssec_ok: bool,
        single_writer: bool,
    ) {
        self.record_in_zone(
            ZONE_SLOTS,
            proto,
            family,
            qtype,
            rcode,
            dnssec_ok,
            single_writer,
        );
    }

    /// `record`, for a query in zone slot `zone` (`ZoneLabels::slot`).
    #[allow(clippy::too_many_arguments)]
    pub fn record_in_zone(
        &self,
        zone: usize,
        proto: Proto,
        family: Family,
        qtype: u16,
        rcode: u16,
        dnssec_ok: bool,
        single_writer: bool,
    ) {
        let add = |counter: &AtomicU64| {
            if single_writer {
                counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            } else {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        };
        let zone = zone.min(ZONE_SLOTS);
        add(&self.requests[zone][proto as usize][family as usize][type_slot(qtype)]);
        add(&self.responses[zone][proto as usize][(rcode as usize).min(RCODE_SLOTS - 1)]);
        if dnssec_ok {
            add(&self.dnssec_ok[proto as usize]);
        }
    }
}

/// The full RCODE of a reply: the header's 4 bits, plus the upper bits from
/// our OPT record, the reply's last record, `opt_len` bytes long (0 when
/// there is none; RFC 6891 §6.1.3).
#[inline]
pub fn reply_rcode(reply: &[u8], opt_len: usize) -> u16 {
    let Some(header) = reply.get(..12) else {
        return 0;
    };
    let mut rcode = u16::from(header[3] & 0x0F);
    let opt = reply
        .len()
        .checked_sub(opt_len)
        .and_then(|at| reply.get(at..));
    if opt_len >= 11
        && header[10..12] != [0, 0]
        && let Some(opt) = opt
        && opt[..3] == [0, 0, 41]
    {
        rcode |= u16::from(opt[5]) << 4;
    }
    rcode
}

/// The query type to count: the parsed one when the reply echoes the
/// question, 0 ("other") when the question could not be read.
#[inline]
pub fn counted_type(reply: &[u8], parsed_qtype: u16) -> u16 {
    if reply.get(4..6) == Some(&[0, 1]) {
        parsed_qtype
    } else {
        0
    }
}

/// What the scrape renders besides the query counters.
pub struct Snapshot<'a> {
    /// CoreDNS's `server` label, e.g. `dns://:53`.
    pub server: &'a str,
    pub counters: &'a [&'a QueryCounters],
    /// Per worker: (received, answered, dropped).
    pub workers: &'a [(u64, u64, u64)],
    /// Per zone: (name, serial, records, loaded).
    pub zones: &'a [(String, u32, usize, bool)],
    pub table_names: usize,
    /// Reloads that left the served zones as they were (an error, or a
    /// zone whose data changed without a newer serial).
    pub reload_failed: u64,
    /// The `zone` label of each zone slot (`ZoneLabels::names`).
    pub zone_labels: &'a [String],
    /// Transfers and NOTIFYs, when the server has a zone store.
    pub replication: Option<&'a crate::slowpath::zones::ReplicationCounters>,
    /// Per zone: bytes in its IXFR journal.
    pub journals: &'a [(String, u64)],
    /// Per zone with data: when it was loaded or transferred (unix time).
    pub loaded_at: &'a [(String, u64)],
    /// Tables published so far, and the last one's compile time (ns).
    pub table_generation: u64,
    pub table_compile_ns: u64,
    /// Per secondary zone with a copy: (name, last confirmed by a primary,
    /// expires), unix seconds.
    pub secondaries: &'a [(String, u64, u64)],
}

fn sum(counters: &[&QueryCounters], read: impl Fn(&QueryCounters) -> &AtomicU64) -> u64 {
    counters
        .iter()
        .map(|counters| read(counters).load(Ordering::Relaxed))
        .sum()
}

/// Picks one of a worker's (received, answered, dropped) counts.
type WorkerCount = fn(&(u64, u64, u64)) -> u64;

/// A metric family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The Prometheus text exposition (format 0.0.4).
pub fn render(snapshot: &Snapshot<'_>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let server = snapshot.server;
    let counters = snapshot.counters;
    let proto_names = ["udp", "tcp"];
    family(
        &mut out,
        "coredns_build_info",
        "gauge",
        "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
    );
    let _ = writeln!(
        out,
        "coredns_build_info{{version=\"ringdns-{}\",revision=\"\",goversion=\"\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    family(
        &mut out,
        "coredns_panics_total",
        "counter",
        "A metrics that counts the number of panics.",
    );
    let _ = writeln!(out, "coredns_panics_total 0");
    family(
        &mut out,
        "coredns_dns_requests_total",
        "counter",
        "Counter of DNS requests made per zone, protocol and family.",
    );
    let zone_label =
        |zone: usize| -> &str { snapshot.zone_labels.get(zone).map_or(".", String::as_str) };
    for zone in 0..=ZONE_SLOTS {
        for (proto, proto_name) in proto_names.iter().enumerate() {
            for family in 0..2 {
                for slot in 0..TYPE_SLOTS {
                    let value = sum(counters, |c| &c.requests[zone][proto][family][slot]);
                    if value == 0 {
                        continue;
                    }
                    let type_name = TYPES.get(slot).map_or("other", |(_, name)| name);
                    let _ = writeln!(
                        out,
                        "coredns_dns_requests_total{{server=\"{server}\",zone=\"{}\",view=\"\",proto=\"{proto_name}\",family=\"{}\",type=\"{type_name}\"}} {value}",
                        zone_label(zone),
                        family + 1
                    );
                }
            }
        }
    }
    family(
        &mut out,
        "coredns_dns_responses_total",
        "counter",
        "Counter of response status codes.",
    );
    for zone in 0..=ZONE_SLOTS {
        for slot in 0..RCODE_SLOTS {
            let value: u64 = (0..2)
                .map(|proto| sum(counters, |c| &c.responses[zone][proto][slot]))
                .sum();
            if value == 0 {
                continue;
            }
            let rcode = RCODES.get(slot).copied().unwrap_or("other");
            let _ = writeln!(
                out,
                "coredns_dns_responses_total{{server=\"{server}\",zone=\"{}\",view=\"\",rcode=\"{rcode}\",plugin=\"file\"}} {value}",
                zone_label(zone)
            );
        }
    }
    family(
        &mut out,
        "coredns_dns_do_requests_total",
        "counter",
        "Counter of DNS requests with DO bit set per zone.",
    );
    let dnssec_ok: u64 = (0..2)
        .map(|proto| sum(counters, |c| &c.dnssec_ok[proto]))
        .sum();
    let _ = writeln!(
        out,
        "coredns_dns_do_requests_total{{server=\"{server}\",zone=\".\",view=\"\"}} {dnssec_ok}"
    );
    render_histograms(&mut out, server, counters);
    family(
        &mut out,
        "coredns_reload_failed_total",
        "counter",
        "Counter of the number of failed reload attempts.",
    );
    let _ = writeln!(
        out,
        "coredns_reload_failed_total {}",
        snapshot.reload_failed
    );

    let worker_families: [(&str, &str, WorkerCount); 3] = [
        (
            "ringdns_worker_received_total",
            "Datagrams a UDP worker received.",
            |counts| counts.0,
        ),
        (
            "ringdns_worker_answered_total",
            "Replies a UDP worker sent.",
            |counts| counts.1,
        ),
        (
            "ringdns_worker_dropped_total",
            "Datagrams a UDP worker dropped without a reply (malformed, responses, send failures).",
            |counts| counts.2,
        ),
    ];
    for (metric, help, value_of) in worker_families {
        family(&mut out, metric, "counter", help);
        for (worker, counts) in snapshot.workers.iter().enumerate() {
            let _ = writeln!(out, "{metric}{{worker=\"{worker}\"}} {}", value_of(counts));
        }
    }
    family(
        &mut out,
        "ringdns_rrl_limited_total",
        "counter",
        "Responses response rate limiting dropped or sent truncated.",
    );
    let _ = writeln!(
        out,
        "ringdns_rrl_limited_total {}",
        sum(counters, |c| &c.rrl_limited)
    );
    let cookie_families = [
        (
            "ringdns_cookie_client_only_total",
            "UDP queries with a client cookie and no server cookie (a first contact).",
            crate::cookie::ServerCookieCheck::Absent,
        ),
        (
            "ringdns_cookie_valid_total",
            "UDP queries with a valid server cookie: their address is proven, and rate limiting lets them by.",
            crate::cookie::ServerCookieCheck::Valid,
        ),
        (
            "ringdns_cookie_invalid_total",
            "UDP queries with a server cookie that is not ours, not for this address, or expired.",
            crate::cookie::ServerCookieCheck::Invalid,
        ),
    ];
    for (metric, help, check) in cookie_families {
        family(&mut out, metric, "counter", help);
        let value = sum(counters, |c| &c.cookies[cookie_slot(check)]);
        let _ = writeln!(out, "{metric} {value}");
    }
    family(
        &mut out,
        "ringdns_table_names",
        "gauge",
        "Names in the published answer table.",
    );
    let _ = writeln!(out, "ringdns_table_names {}", snapshot.table_names);
    for (metric, help) in [
        (
            "ringdns_zone_loaded",
            "1 when the zone loaded and is served, 0 when it failed (its names answer SERVFAIL).",
        ),
        ("ringdns_zone_serial", "The served SOA serial."),
        ("ringdns_zone_records", "Records in the served zone."),
    ] {
        family(&mut out, metric, "gauge", help);
        for (zone, serial, records, loaded) in snapshot.zones {
            let value = match metric {
                "ringdns_zone_loaded" => u64::from(*loaded),
                "ringdns_zone_serial" => u64::from(*serial),
                _ => *records as u64,
            };
            let _ = writeln!(out, "{metric}{{zone=\"{zone}\"}} {value}");
        }
    }
    family(
        &mut out,
        "ringdns_tables_published_total",
        "counter",
        "Answer tables published (start-up, reloads, transfers, expiries).",
    );
    let _ = writeln!(
        out,
        "ringdns_tables_published_total {}",
        snapshot.table_generation
    );
    family(
        &mut out,
        "ringdns_table_compile_seconds",
        "gauge",
        "How long the last published table took to compile, all zones.",
    );
    let _ = writeln!(
        out,
        "ringdns_table_compile_seconds {}",
        snapshot.table_compile_ns as f64 / 1e9
    );
    family(
        &mut out,
        "ringdns_zone_loaded_timestamp_seconds",
        "gauge",
        "When the served data of the zone was loaded or transferred (unix time).",
    );
    for (zone, at) in snapshot.loaded_at {
        let _ = writeln!(
            out,
            "ringdns_zone_loaded_timestamp_seconds{{zone=\"{zone}\"}} {at}"
        );
    }
    family(
        &mut out,
        "ringdns_journal_bytes",
        "gauge",
        "Bytes in the zone's IXFR journal.",
    );
    for (zone, bytes) in snapshot.journals {
        let _ = writeln!(out, "ringdns_journal_bytes{{zone=\"{zone}\"}} {bytes}");
    }
    for (metric, help) in [
        (
            "ringdns_secondary_refresh_timestamp_seconds",
            "When a primary last confirmed the secondary zone's copy (unix time).",
        ),
        (
            "ringdns_secondary_expire_timestamp_seconds",
            "When the secondary zone's copy expires without a primary (unix time).",
        ),
    ] {
        family(&mut out, metric, "gauge", help);
        for (zone, refreshed, expires) in snapshot.secondaries {
            let value = if metric.contains("refresh") {
                refreshed
            } else {
                expires
            };
            let _ = writeln!(out, "{metric}{{zone=\"{zone}\"}} {value}");
        }
    }
    if let Some(replication) = snapshot.replication {
        render_replication(&mut out, replication);
    }
    out
}

/// CoreDNS's duration and size histograms, cumulative buckets summed over
/// every worker. Duration has no `type` label: workers time batches, not
/// single queries.
fn render_histograms(out: &mut String, server: &str, counters: &[&QueryCounters]) {
    family(
        out,
        "coredns_dns_request_duration_seconds",
        "histogram",
        "Histogram of the time (in seconds) each request took per zone.",
    );
    let labels = format!("server=\"{server}\",zone=\".\",view=\"\"");
    let mut cumulative = 0;
    let mut bound = DURATION_FIRST_NS as f64 / 1e9;
    for bucket in 0..DURATION_BUCKETS {
        cumulative += sum(counters, |c| &c.durations[bucket]);
        let _ = writeln!(
            out,
            "coredns_dns_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
        );
        bound *= 2.0;
    }
    cumulative += sum(counters, |c| &c.durations[DURATION_BUCKETS]);
    let _ = writeln!(
        out,
        "coredns_dns_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cumulative}"
    );
    let seconds = sum(counters, |c| &c.duration_sum_ns) as f64 / 1e9;
    let _ = writeln!(
        out,
        "coredns_dns_request_duration_seconds_sum{{{labels}}} {seconds}"
    );
    let _ = writeln!(
        out,
        "coredns_dns_request_duration_seconds_count{{{labels}}} {cumulative}"
    );
    for (metric, help, side) in [
        (
            "coredns_dns_request_size_bytes",
            "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
            0,
        ),
        (
            "coredns_dns_response_size_bytes",
            "Size of the returned response in bytes.",
            1,
        ),
    ] {
        family(out, metric, "histogram", help);
        for (proto, proto_name) in ["udp", "tcp"].iter().enumerate() {
            let labels = format!("{labels},proto=\"{proto_name}\"");
            let buckets = |c: &QueryCounters, bucket: usize| -> u64 {
                let counter = if side == 0 {
                    &c.request_sizes[proto][bucket]
                } else {
                    &c.response_sizes[proto][bucket]
                };
                counter.load(Ordering::Relaxed)
            };
            let mut cumulative = 0;
            for (bucket, bound) in SIZE_BUCKETS.iter().enumerate() {
                cumulative += counters.iter().map(|c| buckets(c, bucket)).sum::<u64>();
                let _ = writeln!(
                    out,
                    "{metric}_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            cumulative += counters
                .iter()
                .map(|c| buckets(c, SIZE_BUCKETS.len()))
                .sum::<u64>();
            let _ = writeln!(out, "{metric}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
            let total = sum(counters, |c| &c.size_sums[proto][side]);
            let _ = writeln!(out, "{metric}_sum{{{labels}}} {total}");
            let _ = writeln!(out, "{metric}_count{{{labels}}} {cumulative}");
        }
    }
}

/// Transfers out and in, by type and result, and NOTIFYs both ways.
fn render_replication(out: &mut String, counters: &crate::slowpath::zones::ReplicationCounters) {
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    // (name, help, [(labels, value)])
    type Family<'a> = (&'a str, &'a str, Vec<(&'a str, u64)>);
    let families: [Family<'_>; 4] = [
        (
            "ringdns_transfers_out_total",
            "Zone transfers served to secondaries, by type and result.",
            vec![
                (
                    "type=\"AXFR\",result=\"success\"",
                    load(&counters.transfers_out[0]),
                ),
                (
                    "type=\"IXFR\",result=\"success\"",
                    load(&counters.transfers_out[1]),
                ),
                ("result=\"refused\"", load(&counters.transfers_out_refused)),
                ("result=\"failed\"", load(&counters.transfers_out_failed)),
            ],
        ),
        (
            "ringdns_transfers_in_total",
            "Zone transfers from primaries applied or failed, by type.",
            vec![
                (
                    "type=\"AXFR\",result=\"success\"",
                    load(&counters.transfers_in[0]),
                ),
                (
                    "type=\"IXFR\",result=\"success\"",
                    load(&counters.transfers_in[1]),
                ),
                ("result=\"failed\"", load(&counters.transfers_in_failed)),
            ],
        ),
        (
            "ringdns_notify_sent_total",
            "NOTIFY messages sent to secondaries, by result.",
            vec![
                ("result=\"acknowledged\"", load(&counters.notifies_sent)),
                ("result=\"failed\"", load(&counters.notifies_failed)),
            ],
        ),
        (
            "ringdns_notify_received_total",
            "NOTIFY messages received, by result.",
            vec![
                (
                    "result=\"accepted\"",
                    load(&counters.notifies_received)
                        .saturating_sub(load(&counters.notifies_refused)),
                ),
                ("result=\"refused\"", load(&counters.notifies_refused)),
            ],
        ),
    ];
    for (name, help, series) in families {
        family(out, name, "counter", help);
        for (labels, value) in series {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_count_under_the_longest_block_zone() {
        let labels = ZoneLabels::new(&[
            "example.com.".to_string(),
            "sub.example.com.".to_string(),
            "org.".to_string(),
        ]);
        let slot = |name: &str| labels.slot(&crate::wire::name::from_text(name).unwrap());
        let names = labels.names();
        assert_eq!(names[slot("a.sub.example.com")], "sub.example.com.");
        assert_eq!(names[slot("www.example.com")], "example.com.");
        assert_eq!(names[slot("example.com")], "example.com.");
        assert_eq!(names[slot("example.org")], "org.");
        assert_eq!(slot("example.net"), ZONE_SLOTS, "no zone: the '.' slot");
        assert_eq!(slot("xexample.com"), ZONE_SLOTS, "labels, not bytes");
    }

    /// A snapshot of `counters` and nothing else.
    fn snapshot<'a>(counters: &'a [&'a QueryCounters]) -> Snapshot<'a> {
        Snapshot {
            server: "dns://:53",
            counters,
            workers: &[],
            zones: &[],
            zone_labels: &[],
            replication: None,
            journals: &[],
            loaded_at: &[],
            table_generation: 1,
            table_compile_ns: 0,
            secondaries: &[],
            table_names: 0,
            reload_failed: 0,
        }
    }

    #[test]
    fn counts_sum_across_workers_and_render() {
        let (first, second) = (QueryCounters::default(), QueryCounters::default());
        first.record(Proto::Udp, Family::V4, 1, 0, false, true);
        first.record(Proto::Udp, Family::V4, 1, 3, true, true);
        second.record(Proto::Tcp, Family::V6, 9999, 16, false, false);
        let zones = [("example.".to_string(), 7, 12, true)];
        let text = render(&Snapshot {
            workers: &[(3, 2, 1)],
            zones: &zones,
            table_names: 5,
            ..snapshot(&[&first, &second])
        });
        assert!(text.contains("coredns_dns_requests_total{server=\"dns://:53\",zone=\".\",view=\"\",proto=\"udp\",family=\"1\",type=\"A\"} 2\n"));
        assert!(text.contains("proto=\"tcp\",family=\"2\",type=\"other\"} 1\n"));
        assert!(text.contains("rcode=\"NXDOMAIN\",plugin=\"file\"} 1\n"));
        assert!(text.contains("rcode=\"BADVERS\",plugin=\"file\"} 1\n"));
        assert!(text.contains(
            "coredns_dns_do_requests_total{server=\"dns://:53\",zone=\".\",view=\"\"} 1\n"
        ));
        assert!(text.contains("ringdns_zone_serial{zone=\"example.\"} 7\n"));
        assert!(text.contains("ringdns_cookie_valid_total 0\n"));
    }

    #[test]
    fn cookie_checks_are_counted_apart() {
        use crate::cookie::ServerCookieCheck;
        let counters = QueryCounters::default();
        counters.record_cookie(ServerCookieCheck::Valid);
        counters.record_cookie(ServerCookieCheck::Valid);
        counters.record_cookie(ServerCookieCheck::Invalid);
        let text = render(&snapshot(&[&counters]));
        assert!(text.contains("ringdns_cookie_valid_total 2\n"));
        assert!(text.contains("ringdns_cookie_invalid_total 1\n"));
        assert!(text.contains("ringdns_cookie_client_only_total 0\n"));
    }

    #[test]
    fn reply_rcode_reads_the_extended_bits_and_types_map_to_slots() {
        // Header (NOERROR, QDCOUNT 1), question "a." AAAA IN, OPT with
        // extended RCODE bits 1 (so BADVERS = 16).
        let mut reply = vec![
            0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, b'a', 0, 0, 28, 0, 1,
        ];
        reply.extend_from_slice(&[0, 0, 41, 4, 208, 1, 0, 0, 0, 0, 0]);
        assert_eq!(reply_rcode(&reply, 11), 16);
        assert_eq!(reply_rcode(&reply[..19], 0), 0);
        assert_eq!(counted_type(&reply, 28), 28);
        assert_eq!(counted_type(&[0; 12], 28), 0);
        assert_eq!(TYPES[type_slot(28)].1, "AAAA");
        assert_eq!(TYPES[type_slot(65)].1, "HTTPS");
        assert_eq!(type_slot(64), TYPES.len());
        assert_eq!(type_slot(65400), TYPES.len());
    }
}
