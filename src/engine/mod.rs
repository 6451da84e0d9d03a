//! The fast path: one worker per core, each with its own SO_REUSEPORT UDP
//! socket per listen address, answering from the published table.
//!
//! This module owns sockets, threads, CPU placement and per-worker
//! counters. It never parses zones or config and never writes a table; it
//! calls `respond()` and nothing else of the protocol.

mod recvmmsg;
mod uring;

pub use uring::RingOptions;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use socket2::{Domain, Protocol, Socket, Type};

use crate::cookie::{CookieSecrets, ServerCookieCheck};
use crate::metrics::{self, Family, Proto, QueryCounters};
use crate::publish::TableReader;
use crate::querylog::{LogQueue, LogRecord};
use crate::respond::{Cookies, Transport, respond_with_cookies};
use crate::rrl::{RateLimiter, ResponseKind, Verdict};
use crate::slowpath::notify;
use crate::slowpath::zones::ZoneStore;
use crate::wire::query::Query;

/// What a worker does with each datagram. Generic, so the call is inlined:
/// the DNS answerer, or the bare reflector that measures the kernel's cost.
pub trait PacketHandler: Send + 'static {
    /// Writes the reply to `packet`, which arrived over `family` from
    /// `peer`, into `out`; returns its length, 0 for none.
    fn handle(&mut self, packet: &[u8], out: &mut [u8], family: Family, peer: Peer<'_>) -> usize;

    /// After a batch: `answered` replies were made in `nanos` since the
    /// batch was received (for the duration histogram).
    fn batch_done(&mut self, _answered: u64, _nanos: u64) {}
}

/// The sender of a datagram as the kernel gave it (a raw `sockaddr_in` or
/// `sockaddr_in6`), decoded only when something needs it (the query log).
#[derive(Clone, Copy)]
pub struct Peer<'a>(pub &'a [u8]);

impl Peer<'_> {
    pub fn socket_addr(&self) -> Option<std::net::SocketAddr> {
        let bytes = self.0;
        let family = u16::from_ne_bytes([*bytes.first()?, *bytes.get(1)?]);
        let port = u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]);
        match i32::from(family) {
            libc::AF_INET => {
                let address: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
                Some(std::net::SocketAddr::new(
                    std::net::Ipv4Addr::from(address).into(),
                    port,
                ))
            }
            libc::AF_INET6 => {
                let address: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
                Some(std::net::SocketAddr::new(
                    std::net::Ipv6Addr::from(address).into(),
                    port,
                ))
            }
            _ => None,
        }
    }
}

/// Answers DNS queries from the published table, counting them in the
/// worker's own counters.
pub struct DnsHandler {
    reader: TableReader,
    query: Query,
    counters: Arc<QueryCounters>,
    /// This worker's query log queue, when `log` is configured.
    log: Option<Arc<LogQueue>>,
    /// This worker's response rate limiter, when `rrl` is configured.
    rrl: Option<RateLimiter>,
    /// Where NOTIFY messages are checked (secondary zones' primaries).
    zones: Option<Arc<ZoneStore>>,
    /// The server cookie secrets, when `cookies` is configured.
    cookies: Option<Arc<CookieSecrets>>,
    /// `errors`: where SERVFAIL answers are reported.
    errors: Option<Arc<LogQueue>>,
    /// Which server-block zone each query counts under.
    zone_labels: Arc<metrics::ZoneLabels>,
}

impl DnsHandler {
    pub fn new(
        reader: TableReader,
        counters: Arc<QueryCounters>,
        log: Option<Arc<LogQueue>>,
        rrl: Option<RateLimiter>,
        zones: Option<Arc<ZoneStore>>,
    ) -> Self {
        DnsHandler {
            reader,
            query: Query::default(),
            counters,
            log,
            rrl,
            zones,
            cookies: None,
            errors: None,
            zone_labels: Arc::default(),
        }
    }

    /// Answers DNS cookies (RFC 7873) with `cookies`' secrets; a query
    /// whose server cookie is valid is then exempt from rate limiting.
    pub fn with_cookies(mut self, cookies: Option<Arc<CookieSecrets>>) -> Self {
        self.cookies = cookies;
        self
    }

    /// The server-block zones queries are counted under.
    pub fn with_zone_labels(mut self, zone_labels: Arc<metrics::ZoneLabels>) -> Self {
        self.zone_labels = zone_labels;
        self
    }

    /// `errors`: SERVFAIL answers go to this queue (a rare path: it only
    /// costs when a zone is broken).
    pub fn with_errors(mut self, errors: Option<Arc<LogQueue>>) -> Self {
        self.errors = errors;
        self
    }
}

impl PacketHandler for DnsHandler {
    #[inline]
    fn handle(&mut self, packet: &[u8], out: &mut [u8], family: Family, peer: Peer<'_>) -> usize {
        // NOTIFY (opcode 4) is rare control traffic from primaries: checked
        // against the store's fixed primaries list, no lock taken; the
        // reply may allocate, queries never do.
        if packet
            .get(2)
            .is_some_and(|flags| (flags >> 3) & 0xF == notify::OPCODE_NOTIFY)
            && let Some(zones) = &self.zones
            && let Some(peer) = peer.socket_addr()
        {
            return match notify::answer(packet, peer, zones) {
                Some(reply) if reply.len() <= out.len() => {
                    out[..reply.len()].copy_from_slice(&reply);
                    reply.len()
                }
                _ => 0,
            };
        }
        let started = self.log.as_ref().map(|_| std::time::Instant::now());
        // One atomic load per packet: a newly published table is seen on
        // the next packet, and no lock is ever taken.
        let table = self.reader.load();
        let cookies = match &self.cookies {
            Some(secrets) => peer
                .socket_addr()
                .map(|peer| Cookies::new(secrets, peer.ip())),
            None => None,
        };
        let mut length =
            respond_with_cookies(&mut self.query, packet, table, Transport::Udp, cookies, out);
        let cookie_check = self.query.cookie_answer.map(|answer| answer.check);
        if let Some(check) = cookie_check {
            self.counters.record_cookie(check);
        }
        if self.query.qtype == crate::wire::rtype::IXFR
            && length > 0
            && let Some(zones) = &self.zones
            && !peer
                .socket_addr()
                .is_some_and(|peer| zones.may_transfer(packet, self.query.qname(), peer))
        {
            let opt_len = crate::respond::opt_record_len(&self.query, table);
            length = error_keeping_opt(out, length, self.query.question_end, opt_len, 9);
        }
        if self.query.signed
            && length > 0
            && let Some(zones) = &self.zones
        {
            let signed = zones.sign_reply(packet, &out[..length]);
            if signed.len() > out.len() {
                return 0;
            }
            out[..signed.len()].copy_from_slice(&signed);
            length = signed.len();
        }
        // A valid server cookie proves the source address (RFC 7873 §1):
        // rate limiting, a defence against spoofed sources, lets it by.
        if length > 0
            && cookie_check != Some(ServerCookieCheck::Valid)
            && let Some(rrl) = &mut self.rrl
            && let Some(peer) = peer.socket_addr()
        {
            match rrl.check(peer, ResponseKind::of(&out[..length]), self.query.qname()) {
                Verdict::Send => {}
                Verdict::Drop => {
                    self.counters.record_rate_limited();
                    return 0;
                }
                Verdict::Slip => {
                    self.counters.record_rate_limited();
                    // A signed reply ends in its TSIG, not our OPT.
                    let opt_len = match self.query.signed {
                        true => 0,
                        false => crate::respond::opt_record_len(&self.query, table),
                    };
                    length = truncate_to_question(out, length, self.query.question_end, opt_len);
                }
            }
        }
        if length > 0 {
            let reply = &out[..length];
            let edns = self.query.edns;
            let qtype = metrics::counted_type(reply, self.query.qtype);
            let rcode =
                metrics::reply_rcode(reply, crate::respond::opt_record_len(&self.query, table));
            let dnssec_ok = edns.is_some_and(|edns| edns.dnssec_ok);
            let zone = self.zone_labels.slot(self.query.qname());
            self.counters
                .record_in_zone(zone, Proto::Udp, family, qtype, rcode, dnssec_ok, true);
            self.counters
                .record_sizes(Proto::Udp, packet.len(), length, true);
            if let (Some(log), Some(started)) = (&self.log, started)
                && log.classes.includes(reply)
                && let Some(peer) = peer.socket_addr()
                && let Some(record) =
                    log_record(&self.query, packet, reply, rcode, peer, false, started)
            {
                log.push(record);
            }
            if rcode == u16::from(crate::respond::rcode::SERVFAIL)
                && let Some(errors) = &self.errors
                && let Some(peer) = peer.socket_addr()
                && let Some(record) = log_record(
                    &self.query,
                    packet,
                    reply,
                    rcode,
                    peer,
                    false,
                    std::time::Instant::now(),
                )
            {
                errors.push(record);
            }
        }
        length
    }

    fn batch_done(&mut self, answered: u64, nanos: u64) {
        if answered > 0 {
            self.counters.record_durations(answered, nanos, true);
        }
    }
}

/// Rewrites the reply in `out[..length]` as an error with `rcode`: no
/// records but the OPT record (the last `opt_len` bytes), AA cleared.
/// Returns the new length.
fn error_keeping_opt(
    out: &mut [u8],
    length: usize,
    question_end: usize,
    opt_len: usize,
    rcode: u8,
) -> usize {
    if length < question_end + opt_len || question_end < 12 {
        return length;
    }
    out.copy_within(length - opt_len..length, question_end);
    out[2] &= !0x04; // AA
    out[3] = (out[3] & 0xF0) | rcode;
    out[6..10].fill(0);
    out[10..12].copy_from_slice(&u16::from(opt_len > 0).to_be_bytes());
    question_end + opt_len
}

/// Rewrites the reply in `out[..length]` as its truncated form: the header
/// with TC set, the question, and our OPT record (its last `opt_len`
/// bytes, 0 for none) kept so the client still learns its server cookie
/// and can prove its address next time. Returns the new length (0 when
/// the reply had no question to keep).
fn truncate_to_question(
    out: &mut [u8],
    length: usize,
    question_end: usize,
    opt_len: usize,
) -> usize {
    if out.len() < question_end || out.get(4..6) != Some(&[0, 1]) {
        return 0;
    }
    out[2] |= 0x02; // TC
    out[6..12].fill(0);
    let opt_at = length.saturating_sub(opt_len);
    if opt_len > 0
        && opt_at >= question_end
        && length <= out.len()
        && out.get(opt_at..opt_at + 3) == Some(&[0, 0, 41])
    {
        out.copy_within(opt_at..length, question_end);
        out[10..12].copy_from_slice(&1u16.to_be_bytes());
        return question_end + opt_len;
    }
    question_end
}

/// The query log's record of one answered query.
pub fn log_record(
    query: &Query,
    packet: &[u8],
    reply: &[u8],
    rcode: u16,
    peer: std::net::SocketAddr,
    tcp: bool,
    started: std::time::Instant,
) -> Option<LogRecord> {
    if reply.get(4..6) != Some(&[0, 1]) {
        return None; // no question to log
    }
    let mut qname = [0u8; 255];
    let name = packet.get(12..12 + query.qname_len)?;
    qname[..name.len()].copy_from_slice(name);
    Some(LogRecord {
        peer,
        tcp,
        id: query.id,
        qtype: query.qtype,
        qclass: query.qclass,
        qname,
        qname_len: query.qname_len as u8,
        query_len: packet.len() as u16,
        dnssec_ok: query.edns.is_some_and(|edns| edns.dnssec_ok),
        udp_payload_size: query.edns.map_or(512, |edns| edns.udp_payload_size),
        reply_flags: u16::from_be_bytes([reply[2], reply[3]]),
        rcode,
        reply_len: reply.len() as u16,
        duration: started.elapsed(),
    })
}

/// Sends every datagram back with QR and AA set and no DNS work: the
/// ceiling the DNS work is measured against (BENCHMARKS.md).
pub struct Reflector;

impl PacketHandler for Reflector {
    #[inline]
    fn handle(&mut self, packet: &[u8], out: &mut [u8], _family: Family, _peer: Peer<'_>) -> usize {
        if packet.len() < 12 || packet.len() > out.len() {
            return 0;
        }
        out[..packet.len()].copy_from_slice(packet);
        out[2] |= 0x84;
        packet.len()
    }
}

/// How the engine runs; every field has a default that needs no tuning.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub workers: usize,
    /// CPUs to pin worker i to (`cpus[i % len]`); empty = do not pin.
    pub cpus: Vec<usize>,
    /// Datagrams taken per recvmmsg and sent per sendmmsg.
    pub batch: usize,
    /// Socket receive buffer per socket (default `RECEIVE_BUFFER_DEFAULT`).
    pub rcvbuf: Option<usize>,
    pub sndbuf: Option<usize>,
    pub backend: BackendChoice,
    pub ring: RingOptions,
}

/// Which I/O loop the workers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// io_uring when the probe passes, else recvmmsg.
    Auto,
    IoUring,
    Recvmmsg,
}

/// The loop chosen at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    IoUring,
    Recvmmsg,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::IoUring => "io_uring",
            Backend::Recvmmsg => "recvmmsg",
        })
    }
}

/// Picks the backend once, by probing the kernel. The `String` says why
/// io_uring was not taken, for the start-up log.
pub fn choose_backend(choice: BackendChoice) -> io::Result<(Backend, Option<String>)> {
    match choice {
        BackendChoice::Recvmmsg => Ok((Backend::Recvmmsg, None)),
        BackendChoice::IoUring => match uring::probe() {
            Ok(()) => Ok((Backend::IoUring, None)),
            Err(reason) => Err(io::Error::other(format!(
                "backend io_uring was asked for but is unavailable: {reason} (check kernel.io_uring_disabled and seccomp, or use `backend recvmmsg`)"
            ))),
        },
        BackendChoice::Auto => match uring::probe() {
            Ok(()) => Ok((Backend::IoUring, None)),
            Err(reason) => Ok((Backend::Recvmmsg, Some(reason))),
        },
    }
}

impl EngineOptions {
    /// One worker per CPU this process may run on, each pinned to one.
    pub fn defaults() -> Self {
        let cpus: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|core| core.id)
            .collect();
        let workers = cpus.len().max(1);
        EngineOptions {
            workers,
            cpus,
            batch: 64,
            rcvbuf: None,
            sndbuf: None,
            backend: BackendChoice::Auto,
            ring: RingOptions { entries: 1024 },
        }
    }
}

/// Counters one worker writes and the metrics scrape reads. Each worker
/// owns one, on its own cache line, so no two cores write the same line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerCounters {
    pub received: AtomicU64,
    pub answered: AtomicU64,
    pub dropped: AtomicU64,
}

impl WorkerCounters {
    /// Single-writer increment: a plain load and store, no locked instruction.
    #[inline]
    pub fn add(counter: &AtomicU64, value: u64) {
        counter.store(counter.load(Ordering::Relaxed) + value, Ordering::Relaxed);
    }
}

/// A running engine.
pub struct Engine {
    pub backend: Backend,
    pub counters: Vec<Arc<WorkerCounters>>,
    /// Each worker's query counters, for the metrics scrape.
    pub query_counters: Vec<Arc<QueryCounters>>,
    pub threads: Vec<JoinHandle<()>>,
}

/// Opens every socket first (so a busy port fails start-up with a clear
/// error), then starts the workers on the chosen backend.
pub fn start<H: PacketHandler>(
    listen: &[SocketAddr],
    options: &EngineOptions,
    backend: Backend,
    make_handler: impl Fn(Arc<QueryCounters>) -> H,
) -> io::Result<Engine> {
    let workers = options.workers.max(1);
    let mut sockets: Vec<Vec<(Socket, SocketAddr)>> = Vec::new();
    for _ in 0..workers {
        let mut worker_sockets = Vec::new();
        for address in listen {
            let socket = bind_udp(*address, options).map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cannot listen on UDP {address}: {error}"),
                )
            })?;
            worker_sockets.push((socket, *address));
        }
        sockets.push(worker_sockets);
    }
    let mut engine = Engine {
        backend,
        counters: Vec::new(),
        query_counters: Vec::new(),
        threads: Vec::new(),
    };
    for (worker, worker_sockets) in sockets.into_iter().enumerate() {
        let counters = Arc::new(WorkerCounters::default());
        engine.counters.push(Arc::clone(&counters));
        let query_counters = Arc::new(QueryCounters::default());
        engine.query_counters.push(Arc::clone(&query_counters));
        let cpu = (!options.cpus.is_empty()).then(|| options.cpus[worker % options.cpus.len()]);
        match backend {
            Backend::IoUring => {
                let handler = make_handler(Arc::clone(&query_counters));
                let ring = options.ring;
                engine.threads.push(spawn_worker(worker, cpu, move || {
                    if let Err(error) = uring::serve(worker_sockets, handler, &counters, ring) {
                        // A server missing a worker silently serves a fraction
                        // of its queries: stop, so the supervisor restarts it.
                        eprintln!("ringdns: error: io_uring worker {worker} stopped: {error}");
                        std::process::exit(1);
                    }
                })?);
            }
            Backend::Recvmmsg => {
                // One thread per socket: recvmmsg blocks on one descriptor.
                for (socket, address) in worker_sockets {
                    let handler = make_handler(Arc::clone(&query_counters));
                    let counters = Arc::clone(&counters);
                    let batch = options.batch.clamp(1, 1024);
                    engine.threads.push(spawn_worker(worker, cpu, move || {
                        recvmmsg::serve(socket, address, handler, &counters, batch)
                    })?);
                }
            }
        }
    }
    Ok(engine)
}

fn spawn_worker(
    worker: usize,
    cpu: Option<usize>,
    body: impl FnOnce() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("udp-{worker}"))
        .spawn(move || {
            if let Some(cpu) = cpu
                && !core_affinity::set_for_current(core_affinity::CoreId { id: cpu })
            {
                eprintln!("ringdns: warning: could not pin worker {worker} to CPU {cpu}");
            }
            body()
        })
}

/// The kernel's default UDP receive buffer (212,992 bytes on most systems)
/// holds about 1,000 queries: a 1-2 ms stall of a worker's CPU at 500k
/// queries/s overflows it, and the kernel drops the rest (RcvbufErrors).
/// 4 MiB rides out such stalls (loadtest/README.md measures it).
pub const RECEIVE_BUFFER_DEFAULT: usize = 4 << 20;

/// Sets the receive buffer, past net.core.rmem_max when we may
/// (SO_RCVBUFFORCE needs CAP_NET_ADMIN), and says so when the kernel caps it.
fn set_receive_buffer(socket: &Socket, size: usize) {
    let value = size.min(i32::MAX as usize / 2) as libc::c_int;
    // SAFETY: setsockopt reads one c_int from a live local.
    let forced = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(socket),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    } == 0;
    if !forced {
        let _ = socket.set_recv_buffer_size(size);
    }
    // Linux reports twice the size asked for (it counts its own overhead).
    let granted = socket.recv_buffer_size().unwrap_or(0) / 2;
    static WARNED: std::sync::Once = std::sync::Once::new();
    if granted < size {
        WARNED.call_once(|| {
            eprintln!(
                "ringdns: warning: UDP receive buffer capped at {granted} bytes (asked {size}); raise net.core.rmem_max (see tuning/README.md)"
            )
        });
    }
}

fn bind_udp(address: SocketAddr, options: &EngineOptions) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if address.ip().is_unspecified() {
        // Learn each query's destination address so the reply leaves from it.
        recvmmsg::enable_packet_info(&socket, address.is_ipv6())?;
    }
    set_receive_buffer(&socket, options.rcvbuf.unwrap_or(RECEIVE_BUFFER_DEFAULT));
    if let Some(size) = options.sndbuf {
        socket.set_send_buffer_size(size)?;
    }
    socket.bind(&address.into())?;
    Ok(socket)
}
