//! The query log (`log`): one line per answered query in CoreDNS's default
//! format, written by one thread off the fast path.
//!
//! Each worker pushes fixed-size records into its own bounded lock-free
//! queue; a full queue drops the record and counts it, so logging never
//! slows or blocks answering. The writer thread drains every queue to
//! standard output, as CoreDNS's log plugin writes.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

/// Records a worker may have waiting before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 4096;

/// Which replies are logged (CoreDNS's `class` sub-directive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogClasses {
    pub success: bool,
    pub denial: bool,
    pub error: bool,
}

impl LogClasses {
    pub const ALL: LogClasses = LogClasses {
        success: true,
        denial: true,
        error: true,
    };

    /// CoreDNS's classes: denial is NXDOMAIN or NODATA, error any RCODE but
    /// NOERROR and NXDOMAIN, success the rest (answers and referrals).
    pub fn includes(&self, reply: &[u8]) -> bool {
        let Some(header) = reply.get(..12) else {
            return false;
        };
        let rcode = header[3] & 0x0F;
        let authoritative = header[2] & 0x04 != 0;
        let answers = u16::from_be_bytes([header[6], header[7]]);
        match rcode {
            3 => self.denial,
            0 if answers == 0 && authoritative => self.denial,
            0 => self.success,
            _ => self.error,
        }
    }
}

/// One answered query, as the worker saw it. Fixed size: no allocation.
#[derive(Clone, Copy)]
pub struct LogRecord {
    pub peer: SocketAddr,
    pub tcp: bool,
    pub id: u16,
    pub qtype: u16,
    pub qclass: u16,
    /// The question name as received (case kept), wire format.
    pub qname: [u8; 255],
    pub qname_len: u8,
    pub query_len: u16,
    pub dnssec_ok: bool,
    pub udp_payload_size: u16,
    pub reply_flags: u16,
    pub rcode: u16,
    pub reply_len: u16,
    pub duration: Duration,
}

/// One worker's queue and its count of dropped records.
pub struct LogQueue {
    records: ArrayQueue<LogRecord>,
    pub dropped: AtomicU64,
    pub classes: LogClasses,
}

impl LogQueue {
    pub fn new(classes: LogClasses) -> Self {
        LogQueue {
            records: ArrayQueue::new(QUEUE_CAPACITY),
            dropped: AtomicU64::new(0),
            classes,
        }
    }

    /// Queues `record`, or counts it dropped when the writer lags.
    #[inline]
    pub fn push(&self, record: LogRecord) {
        if self.records.push(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts the writer thread over every worker's queue.
pub fn start_writer(queues: Vec<Arc<LogQueue>>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("querylog".into())
        .spawn(move || {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
            let mut line = String::with_capacity(256);
            loop {
                let mut wrote = false;
                for queue in &queues {
                    while let Some(record) = queue.records.pop() {
                        line.clear();
                        format_line(&record, &mut line);
                        let _ = out.write_all(line.as_bytes());
                        wrote = true;
                    }
                }
                if wrote {
                    let _ = out.flush();
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        })?;
    Ok(())
}

/// How long repeats of one error are summarised before the next is
/// written in full (CoreDNS's `errors { consolidate }` does the same).
pub const ERROR_SUMMARY_PERIOD: Duration = Duration::from_secs(60);

/// Starts the `errors` writer: SERVFAIL answers (a zone that failed to
/// load, a secondary without a copy or past its expire time) from every
/// worker's queue, to standard error in CoreDNS's errors-plugin form. The
/// first of each (name's zone is unknown here, so: each question type and
/// name) is written at once with its context; repeats within
/// `ERROR_SUMMARY_PERIOD` are only counted, and their count is written
/// when the period ends, so a flood of queries for a broken zone costs one
/// line a minute.
pub fn start_error_writer(queues: Vec<Arc<LogQueue>>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("errors".into())
        .spawn(move || {
            let mut period_started = std::time::Instant::now();
            // (qname, qtype) → repeats this period; bounded.
            let mut repeats: std::collections::HashMap<(Vec<u8>, u16), u64> =
                std::collections::HashMap::new();
            let mut overflow = 0u64;
            loop {
                let mut line = String::new();
                for queue in &queues {
                    while let Some(record) = queue.records.pop() {
                        let key = (
                            crate::wire::name::to_lowercase(&record.qname[..record.qname_len as usize]),
                            record.qtype,
                        );
                        if let Some(count) = repeats.get_mut(&key) {
                            *count += 1;
                        } else if repeats.len() < 1024 {
                            repeats.insert(key, 0);
                            line.clear();
                            format_error(&record, &mut line);
                            eprint!("{line}");
                        } else {
                            overflow += 1;
                        }
                    }
                }
                if period_started.elapsed() >= ERROR_SUMMARY_PERIOD {
                    for ((qname, qtype), count) in repeats.drain() {
                        if count > 0 {
                            eprintln!(
                                "[ERROR] plugin/errors: 2 {} {}: {count} more SERVFAIL answers in the last {} s",
                                crate::wire::name::to_text(&qname),
                                crate::wire::rtype::to_text(qtype),
                                ERROR_SUMMARY_PERIOD.as_secs()
                            );
                        }
                    }
                    if overflow > 0 {
                        eprintln!(
                            "[ERROR] plugin/errors: {overflow} more SERVFAIL answers for other names in the last {} s",
                            ERROR_SUMMARY_PERIOD.as_secs()
                        );
                        overflow = 0;
                    }
                    period_started = std::time::Instant::now();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })?;
    Ok(())
}

/// CoreDNS's errors line: `[ERROR] plugin/errors: RCODE NAME TYPE: why`.
pub fn format_error(record: &LogRecord, line: &mut String) {
    let name = crate::wire::name::to_text(&record.qname[..record.qname_len as usize]);
    let qtype = crate::wire::rtype::to_text(record.qtype);
    let _ = writeln!(
        line,
        "[ERROR] plugin/errors: {} {name} {qtype}: SERVFAIL from {}: the zone has no data (it failed to load, or a secondary has no copy or it expired)",
        record.rcode, record.peer
    );
}

/// CoreDNS's default format:
/// `{remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" {rcode} {>rflags} {rsize} {duration}`.
pub fn format_line(record: &LogRecord, line: &mut String) {
    let remote = match record.peer {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    };
    let name = crate::wire::name::to_text(&record.qname[..record.qname_len as usize]);
    let qtype = crate::wire::rtype::to_text(record.qtype);
    let class = domain::base::iana::Class::from_int(record.qclass).to_string();
    let proto = if record.tcp { "tcp" } else { "udp" };
    let rcode = crate::metrics::rcode_name(record.rcode);
    let mut flags = Vec::new();
    for (bit, name) in [
        (0x8000, "qr"),
        (0x0400, "aa"),
        (0x0200, "tc"),
        (0x0100, "rd"),
        (0x0080, "ra"),
        (0x0020, "ad"),
        (0x0010, "cd"),
    ] {
        if record.reply_flags & bit != 0 {
            flags.push(name);
        }
    }
    let _ = writeln!(
        line,
        "[INFO] {remote}:{} - {} \"{qtype} {class} {name} {proto} {} {} {}\" {rcode} {} {} {:.9}s",
        record.peer.port(),
        record.id,
        record.query_len,
        record.dnssec_ok,
        record.udp_payload_size,
        flags.join(","),
        record.reply_len,
        record.duration.as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_coredns() {
        let mut qname = [0u8; 255];
        let wire = b"\x03WwW\x07example\x03org\x00";
        qname[..wire.len()].copy_from_slice(wire);
        let record = LogRecord {
            peer: "127.0.0.1:52334".parse().unwrap(),
            tcp: false,
            id: 11212,
            qtype: 1,
            qclass: 1,
            qname,
            qname_len: wire.len() as u8,
            query_len: 29,
            dnssec_ok: false,
            udp_payload_size: 512,
            reply_flags: 0x8500,
            rcode: 0,
            reply_len: 89,
            duration: Duration::from_nanos(131_617),
        };
        let mut line = String::new();
        format_line(&record, &mut line);
        assert_eq!(
            line,
            "[INFO] 127.0.0.1:52334 - 11212 \"A IN WwW.example.org. udp 29 false 512\" NOERROR qr,aa,rd 89 0.000131617s\n"
        );
    }

    #[test]
    fn classes_follow_coredns() {
        let reply = |flags: [u8; 2], answers: u8| {
            let mut header = [0u8; 12];
            header[2..4].copy_from_slice(&flags);
            header[7] = answers;
            header
        };
        let only_denial = LogClasses {
            success: false,
            denial: true,
            error: false,
        };
        assert!(only_denial.includes(&reply([0x84, 0x03], 0)), "NXDOMAIN");
        assert!(only_denial.includes(&reply([0x84, 0x00], 0)), "NODATA");
        assert!(
            !only_denial.includes(&reply([0x80, 0x00], 0)),
            "a referral is success"
        );
        assert!(!only_denial.includes(&reply([0x84, 0x00], 1)));
        let only_error = LogClasses {
            success: false,
            denial: false,
            error: true,
        };
        assert!(only_error.includes(&reply([0x80, 0x05], 0)), "REFUSED");
    }
}
