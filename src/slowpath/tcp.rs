//! DNS over TCP (RFC 7766): two-byte length framing, any number of queries
//! per connection answered in order (pipelining), an idle timeout between
//! messages, a deadline for each message once it has begun (so a client
//! sending a byte now and then cannot hold a connection), and caps on
//! connections in total and per client address.
//!
//! This module owns the TCP sockets and the connections' buffers and
//! timers. It answers queries through `respond`, hands NOTIFY to `notify`
//! and zone transfers to `xfr_out`; it must not touch zone data or a
//! published table other than by reading it.
//!
//! One thread serves every connection from one epoll set (through `mio`:
//! it is already in the build for tokio, and gives safe registration and a
//! waker without unsafe code of our own). A connection costs a slot and a
//! file descriptor, not a thread, so thousands of idle or slow clients
//! cost memory, not scheduling, and cannot lock out new ones: at the cap
//! the connection idle longest is closed to make room (as Knot and NSD do
//! under pressure), while a client address over its own share is refused.
//! Zone transfers write many messages and may take long, so each runs on a
//! thread of its own with the socket switched to blocking, and the
//! connection comes back to the loop when it is done.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use crate::engine::log_record;
use crate::metrics::{self, Family, Proto, QueryCounters};
use crate::publish::{Published, TableReader};
use crate::querylog::LogQueue;
use crate::respond::{Cookies, TCP_MESSAGE_LEN_MAX, Transport, rcode, respond_with_cookies};
use crate::slowpath::zones::ZoneStore;
use crate::slowpath::{notify, xfr_out};
use crate::wire::query::Query;

/// The default cap on connections in total, when the open-file limit
/// allows it (Knot's tcp-max-clients is of this order on a large host).
pub const CONNECTIONS_MAX_DEFAULT: usize = 65_536;
/// The default share of one client address.
pub const CONNECTIONS_PER_ADDRESS_MAX_DEFAULT: usize = 64;
pub const IDLE_TIMEOUT_MS_DEFAULT: u64 = 10_000;
pub const MESSAGE_TIMEOUT_MS_DEFAULT: u64 = 2_000;

/// Zone transfers running at once, each on its own thread; a request
/// beyond this gets SERVFAIL and the secondary retries on its timers.
const TRANSFERS_MAX: usize = 64;
/// Reads from one connection per turn of the loop, so a client that
/// pipelines without pause cannot starve the others.
const READS_PER_TURN: usize = 8;
/// Connections accepted per listener per turn, for the same reason.
const ACCEPTS_PER_TURN: usize = 256;
/// Replies queued for a client that does not read are bounded: past this
/// the connection's further queries wait in the socket.
const OUTPUT_BYTES_HIGH: usize = 128 * 1024;
/// Bytes read from the socket per call; one complete message fits.
const READ_CHUNK_BYTES: usize = 2 + TCP_MESSAGE_LEN_MAX;
/// Buffers of an idle connection above this are given back, so 10,000
/// idle clients hold kilobytes, not gigabytes.
const BUFFER_KEEP_BYTES: usize = 4096;
/// Events taken from epoll per wait.
const EVENTS_MAX: usize = 1024;
/// How often timeouts are checked, at most (finer for short timeouts):
/// one pass over the slots, cheap next to the connections it bounds.
const SWEEP_INTERVAL_MS_MAX: u64 = 100;
/// File descriptors kept for everything but TCP clients (UDP sockets,
/// zone files, journals, transfers, HTTP), as a share of the limit.
const FILE_RESERVE_MIN: u64 = 64;
const FILE_RESERVE_MAX: u64 = 4096;
/// Errors worth a line in the log are written at most this often.
const LOG_INTERVAL: Duration = Duration::from_secs(60);

const WAKER: Token = Token(usize::MAX - 1);
/// Listener `i` has token `LISTENER_TOKEN_FIRST - i`; connections have
/// their slot index, far below.
const LISTENER_TOKEN_FIRST: usize = usize::MAX - 2;

#[derive(Clone, Debug)]
pub struct TcpOptions {
    /// A connection that starts no new message for this long is closed
    /// (RFC 7766 §6.2.3 suggests seconds, not minutes). It also bounds how
    /// long a client may leave written replies unread.
    pub idle_timeout_ms: u64,
    /// Once a message's first byte has arrived, the rest must arrive
    /// within this.
    pub message_timeout_ms: u64,
    /// `None`: [`CONNECTIONS_MAX_DEFAULT`], or fewer where the open-file
    /// limit does not allow that many. At the cap, the connection idle
    /// longest is closed for a newcomer.
    pub connections_max: Option<usize>,
    /// One address may hold at most this many connections, so one host
    /// cannot take every slot; the next one is refused.
    pub connections_per_address_max: usize,
    /// Server cookie secrets, when `cookies` is configured (RFC 7873).
    pub cookies: Option<Arc<crate::cookie::CookieSecrets>>,
    /// Which server-block zone each answer counts under (metrics).
    pub zone_labels: Arc<metrics::ZoneLabels>,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            idle_timeout_ms: IDLE_TIMEOUT_MS_DEFAULT,
            message_timeout_ms: MESSAGE_TIMEOUT_MS_DEFAULT,
            connections_max: None,
            connections_per_address_max: CONNECTIONS_PER_ADDRESS_MAX_DEFAULT,
            cookies: None,
            zone_labels: Arc::default(),
        }
    }
}

impl TcpOptions {
    /// The `tcp { … }` directive's settings over the defaults.
    pub fn from_config(config: &crate::config::TcpConfig) -> Self {
        let defaults = TcpOptions::default();
        let ms = |duration: Option<Duration>, default: u64| {
            duration.map_or(default, |duration| {
                u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
            })
        };
        TcpOptions {
            idle_timeout_ms: ms(config.idle_timeout, defaults.idle_timeout_ms),
            message_timeout_ms: ms(config.message_timeout, defaults.message_timeout_ms),
            connections_max: config.connections_max,
            connections_per_address_max: config
                .connections_per_address_max
                .unwrap_or(defaults.connections_per_address_max),
            cookies: None,
            zone_labels: defaults.zone_labels,
        }
    }
}

/// Binds every address now (so start-up fails clearly when one is taken),
/// raises the open-file limit for the connections, then serves them all
/// on one thread.
pub fn start(
    listen: &[SocketAddr],
    published: &Published,
    store: Arc<ZoneStore>,
    options: &TcpOptions,
    counters: Arc<QueryCounters>,
    log: Option<Arc<LogQueue>>,
) -> io::Result<()> {
    let mut listeners = Vec::new();
    for address in listen {
        let listener = bind_tcp(*address).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot listen on TCP {address}: {error}"),
            )
        })?;
        listeners.push(listener);
    }
    let files = raise_open_file_limit();
    let connections_max = connections_max(options.connections_max, files);
    let poll = Poll::new()?;
    for (index, listener) in listeners.iter().enumerate() {
        poll.registry().register(
            &mut SourceFd(&listener.as_raw_fd()),
            Token(LISTENER_TOKEN_FIRST - index),
            Interest::READABLE,
        )?;
    }
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (returned_sender, returned) = mpsc::channel();
    let idle = Duration::from_millis(options.idle_timeout_ms);
    let message = Duration::from_millis(options.message_timeout_ms);
    let mut event_loop = EventLoop {
        poll,
        listeners,
        slots: Vec::new(),
        free: Vec::new(),
        lru: Lru::default(),
        by_address: HashMap::new(),
        open: 0,
        limits: Limits {
            idle,
            message,
            connections_max,
            connections_per_address_max: options.connections_per_address_max.max(1),
        },
        answerer: Answerer {
            reader: published.reader(),
            query: Query::default(),
            reply: vec![0u8; TCP_MESSAGE_LEN_MAX].into_boxed_slice(),
            counters,
            log,
            store,
            cookies: options.cookies.clone(),
            zone_labels: Arc::clone(&options.zone_labels),
        },
        scratch: vec![0u8; READ_CHUNK_BYTES].into_boxed_slice(),
        again: Vec::new(),
        accept_again: Vec::new(),
        accept_retry_at: None,
        transfers: Arc::new(AtomicUsize::new(0)),
        returned,
        returned_sender,
        waker,
        logged_at: HashMap::new(),
    };
    std::thread::Builder::new()
        .name("tcp".into())
        .spawn(move || event_loop.run())?;
    Ok(())
}

fn bind_tcp(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&address.into())?;
    // The kernel clamps this to net.core.somaxconn; the loop accepts in
    // bursts, so a long queue rides out a flood of handshakes.
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Raises the soft open-file limit to the hard one (each connection is a
/// descriptor; 1024, the usual soft limit, would cap TCP far below what
/// the host allows) and returns the limit now in force.
fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and keeps no pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    // An unlimited hard limit is still bounded by fs.nr_open, which
    // setrlimit enforces; 2^20 is its default.
    let target = limit.rlim_max.min(1 << 20);
    if limit.rlim_cur < target {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we pass and keeps no pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return target;
        }
    }
    limit.rlim_cur
}

/// The cap on connections: as configured or [`CONNECTIONS_MAX_DEFAULT`],
/// but never more than the open-file limit leaves after a reserve for the
/// rest of the server (a warning says so when a configured cap is cut).
fn connections_max(configured: Option<usize>, files: u64) -> usize {
    let reserve = (files / 8).clamp(FILE_RESERVE_MIN, FILE_RESERVE_MAX);
    let allowed = usize::try_from(files.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .max(1);
    match configured {
        Some(wanted) if wanted > allowed => {
            eprintln!(
                "ringdns: tcp: max-connections {wanted} is more than the open-file limit ({files}) allows; using {allowed} (raise LimitNOFILE= or ulimit -n)"
            );
            allowed
        }
        Some(wanted) => wanted,
        None => CONNECTIONS_MAX_DEFAULT.min(allowed),
    }
}

/// The bounds the loop enforces, resolved at start.
struct Limits {
    idle: Duration,
    message: Duration,
    connections_max: usize,
    connections_per_address_max: usize,
}

impl Limits {
    fn sweep_interval(&self) -> Duration {
        let shortest = self.idle.min(self.message);
        (shortest / 8).clamp(
            Duration::from_millis(5),
            Duration::from_millis(SWEEP_INTERVAL_MS_MAX),
        )
    }
}

/// Why a connection is closed by a timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    /// No new message began within the idle timeout.
    Idle,
    /// A message began and did not complete within the message timeout.
    Message,
    /// Replies were left unread for the idle timeout.
    Unread,
}

/// One client connection: its socket and buffers, and the times its
/// deadlines run from.
struct Connection {
    /// `None` while a transfer thread has the socket.
    stream: Option<TcpStream>,
    peer: SocketAddr,
    /// Bytes received and not yet answered: at most the start of one
    /// message, unless replies are held back by an unread output.
    input: Vec<u8>,
    /// Framed replies not yet written, from `output_sent` on.
    output: Vec<u8>,
    output_sent: usize,
    /// When the first byte of the message now in `input` arrived.
    message_started: Option<Instant>,
    /// When the connection opened, a message completed or a reply was
    /// written: the idle timeout runs from here.
    active_at: Instant,
    /// The client shut down its side: answer what is complete, then close.
    read_closed: bool,
    /// Registered for writable events too (replies are waiting).
    writable: bool,
}

impl Connection {
    /// A connection just accepted (`stream` `None` in tests), idle from
    /// `now`.
    fn new(stream: Option<TcpStream>, peer: SocketAddr, now: Instant) -> Connection {
        Connection {
            stream,
            peer,
            input: Vec::new(),
            output: Vec::new(),
            output_sent: 0,
            message_started: None,
            active_at: now,
            read_closed: false,
            writable: false,
        }
    }

    fn output_pending(&self) -> bool {
        self.output_sent < self.output.len()
    }

    /// Which timeout, if any, has passed at `now`.
    fn expiry(&self, now: Instant, limits: &Limits) -> Option<Expiry> {
        // Without its socket, a transfer thread has it, with its own timeouts.
        self.stream.as_ref()?;
        let since = |at: Instant| now.saturating_duration_since(at);
        if self.output_pending() {
            (since(self.active_at) >= limits.idle).then_some(Expiry::Unread)
        } else if let Some(started) = self.message_started {
            (since(started) >= limits.message).then_some(Expiry::Message)
        } else {
            (since(self.active_at) >= limits.idle).then_some(Expiry::Idle)
        }
    }

    /// Writes queued replies until done or the socket is full.
    fn flush(&mut self, now: Instant) -> io::Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        while self.output_sent < self.output.len() {
            match stream.write(&self.output[self.output_sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(count) => {
                    self.output_sent += count;
                    self.active_at = now;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.output.clear();
        self.output_sent = 0;
        if self.output.capacity() > BUFFER_KEEP_BYTES {
            self.output = Vec::new();
        }
        Ok(())
    }
}

/// What the next complete message in a connection's input asks for.
enum Step {
    /// No complete message (or replies are backed up): read or wait.
    Wait,
    /// A transfer request, taken out of the input.
    Transfer(Vec<u8>),
}

/// Answers queries and NOTIFY; owns the buffers that takes.
struct Answerer {
    reader: TableReader,
    query: Query,
    reply: Box<[u8]>,
    counters: Arc<QueryCounters>,
    log: Option<Arc<LogQueue>>,
    store: Arc<ZoneStore>,
    cookies: Option<Arc<crate::cookie::CookieSecrets>>,
    zone_labels: Arc<metrics::ZoneLabels>,
}

impl Answerer {
    /// Answers every complete message at the front of `connection.input`
    /// in order (RFC 7766 §6.2.1.1), appending framed replies to its
    /// output, until the input holds no complete message, the output is
    /// backed up, or a transfer request needs its own thread.
    fn answer_complete(&mut self, connection: &mut Connection, now: Instant) -> Step {
        let mut consumed = 0;
        let mut step = Step::Wait;
        while connection.output.len() - connection.output_sent < OUTPUT_BYTES_HIGH {
            let rest = &connection.input[consumed..];
            let Some(length) = rest
                .get(..2)
                .map(|bytes| usize::from(u16::from_be_bytes([bytes[0], bytes[1]])))
            else {
                break;
            };
            let Some(request) = rest.get(2..2 + length) else {
                break;
            };
            consumed += 2 + length;
            connection.active_at = now;
            // Transfers and NOTIFY are the slow path's own business.
            if xfr_out::is_transfer_request(request) {
                step = Step::Transfer(request.to_vec());
                break;
            }
            if notify::is_notify(request) {
                if let Some(reply) = notify::answer(request, connection.peer, &self.store) {
                    push_framed(&mut connection.output, &reply);
                }
                continue;
            }
            self.answer_query(request, connection.peer, &mut connection.output);
        }
        if consumed > 0 {
            connection.input.drain(..consumed);
            // What is left arrived with or after the message just
            // answered: the next message's deadline runs from now.
            connection.message_started = (!connection.input.is_empty()).then_some(now);
            if connection.input.is_empty() && connection.input.capacity() > BUFFER_KEEP_BYTES {
                connection.input = Vec::new();
            }
        }
        step
    }

    /// One query: the answer (signed when the query was), counted and
    /// logged as the old per-thread path did.
    fn answer_query(&mut self, request: &[u8], peer: SocketAddr, output: &mut Vec<u8>) {
        let started = Instant::now();
        let table = self.reader.load();
        let reply_length = respond_with_cookies(
            &mut self.query,
            request,
            table,
            Transport::Tcp,
            self.cookies
                .as_deref()
                .map(|secrets| Cookies::new(secrets, peer.ip())),
            &mut self.reply,
        );
        if reply_length == 0 {
            return;
        }
        let signed;
        let sent = if self.query.signed {
            signed = self.store.sign_reply(request, &self.reply[..reply_length]);
            if signed.len() > TCP_MESSAGE_LEN_MAX {
                return;
            }
            &signed[..]
        } else {
            &self.reply[..reply_length]
        };
        let query = &self.query;
        let (qtype, rcode) = (
            metrics::counted_type(sent, query.qtype),
            metrics::reply_rcode(sent, crate::respond::opt_record_len(query, table)),
        );
        let dnssec_ok = query.edns.is_some_and(|edns| edns.dnssec_ok);
        let family = if peer.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        let zone = self.zone_labels.slot(query.qname());
        self.counters
            .record_in_zone(zone, Proto::Tcp, family, qtype, rcode, dnssec_ok, false);
        self.counters
            .record_sizes(Proto::Tcp, request.len(), sent.len(), false);
        self.counters
            .record_durations(1, started.elapsed().as_nanos() as u64, false);
        if let Some(log) = &self.log
            && log.classes.includes(sent)
            && let Some(record) = log_record(query, request, sent, rcode, peer, true, started)
        {
            log.push(record);
        }
        push_framed(output, sent);
    }
}

/// Appends one DNS message with its two-byte length prefix; a message
/// too long to frame is dropped (nothing we build is).
fn push_framed(output: &mut Vec<u8>, message: &[u8]) {
    if let Ok(length) = u16::try_from(message.len()) {
        output.extend_from_slice(&length.to_be_bytes());
        output.extend_from_slice(message);
    }
}

/// Writes one DNS message with its two-byte length prefix.
fn write_framed(stream: &mut TcpStream, message: &[u8]) -> io::Result<()> {
    let length = u16::try_from(message.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "message too long"))?;
    let mut framed = Vec::with_capacity(2 + message.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed)
}

/// A connection back from a transfer thread: its socket, or `None` when
/// the transfer failed and the connection is to be closed.
struct Returned {
    slot: usize,
    stream: Option<TcpStream>,
}

/// Connections in order of their last activity, so the one idle longest
/// is found at once when a newcomer needs its place. Intrusive links by
/// slot index: no allocation per connection once the slots have grown.
#[derive(Default)]
struct Lru {
    prev: Vec<usize>,
    next: Vec<usize>,
    linked: Vec<bool>,
    head: Option<usize>,
    tail: Option<usize>,
}

const NONE: usize = usize::MAX;

impl Lru {
    fn grow(&mut self, slots: usize) {
        if self.linked.len() < slots {
            self.prev.resize(slots, NONE);
            self.next.resize(slots, NONE);
            self.linked.resize(slots, false);
        }
    }

    fn front(&self) -> Option<usize> {
        self.head
    }

    fn push_back(&mut self, slot: usize) {
        self.grow(slot + 1);
        if self.linked[slot] {
            return;
        }
        self.linked[slot] = true;
        self.next[slot] = NONE;
        self.prev[slot] = self.tail.unwrap_or(NONE);
        match self.tail {
            Some(tail) => self.next[tail] = slot,
            None => self.head = Some(slot),
        }
        self.tail = Some(slot);
    }

    fn remove(&mut self, slot: usize) {
        if !self.linked.get(slot).copied().unwrap_or(false) {
            return;
        }
        self.linked[slot] = false;
        let (prev, next) = (self.prev[slot], self.next[slot]);
        match prev {
            NONE => self.head = (next != NONE).then_some(next),
            prev => self.next[prev] = next,
        }
        match next {
            NONE => self.tail = (prev != NONE).then_some(prev),
            next => self.prev[next] = prev,
        }
    }

    /// Moves `slot` to the back: it was just active.
    fn touch(&mut self, slot: usize) {
        if self.tail != Some(slot) {
            self.remove(slot);
            self.push_back(slot);
        }
    }
}

struct EventLoop {
    poll: Poll,
    listeners: Vec<TcpListener>,
    /// Connections by token; `None` slots are in `free`.
    slots: Vec<Option<Connection>>,
    free: Vec<usize>,
    /// Every open connection not lent to a transfer thread.
    lru: Lru,
    by_address: HashMap<IpAddr, usize>,
    /// Connections open, transfers included.
    open: usize,
    limits: Limits,
    answerer: Answerer,
    /// Reads land here first, then join the connection's input.
    scratch: Box<[u8]>,
    /// Connections with more to do than one turn allows.
    again: Vec<usize>,
    /// Listeners whose queue was not drained in one turn.
    accept_again: Vec<usize>,
    /// When to try accepting again after running out of descriptors.
    accept_retry_at: Option<Instant>,
    /// Transfer threads running.
    transfers: Arc<AtomicUsize>,
    returned: mpsc::Receiver<Returned>,
    returned_sender: mpsc::Sender<Returned>,
    waker: Arc<Waker>,
    /// When each kind of rare event was last logged.
    logged_at: HashMap<&'static str, Instant>,
}

impl EventLoop {
    fn run(&mut self) {
        let mut events = Events::with_capacity(EVENTS_MAX);
        let sweep_interval = self.limits.sweep_interval();
        let mut next_sweep = Instant::now() + sweep_interval;
        loop {
            let now = Instant::now();
            let mut wait = next_sweep.saturating_duration_since(now);
            if let Some(retry_at) = self.accept_retry_at {
                wait = wait.min(retry_at.saturating_duration_since(now));
            }
            if !self.again.is_empty() || !self.accept_again.is_empty() {
                wait = Duration::ZERO;
            }
            if let Err(error) = self.poll.poll(&mut events, Some(wait)) {
                if error.kind() != io::ErrorKind::Interrupted {
                    self.log_rarely("poll", format_args!("tcp: epoll wait: {error}"));
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            let now = Instant::now();
            let again = std::mem::take(&mut self.again);
            for slot in again {
                self.drive(slot, now);
            }
            let accept_again = std::mem::take(&mut self.accept_again);
            for index in accept_again {
                self.accept(index, now);
            }
            if self.accept_retry_at.is_some_and(|at| at <= now) {
                self.accept_retry_at = None;
                for index in 0..self.listeners.len() {
                    self.accept(index, now);
                }
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => self.take_back_transfers(now),
                    Token(token) if token > LISTENER_TOKEN_FIRST - self.listeners.len() => {
                        self.accept(LISTENER_TOKEN_FIRST - token, now);
                    }
                    Token(slot) => self.drive(slot, now),
                }
            }
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + sweep_interval;
            }
        }
    }

    /// Writes `message` to standard error unless a line of the same kind
    /// went out within [`LOG_INTERVAL`]: an attack must not flood the log.
    fn log_rarely(&mut self, kind: &'static str, message: std::fmt::Arguments<'_>) {
        let now = Instant::now();
        if self
            .logged_at
            .get(kind)
            .is_some_and(|at| now.duration_since(*at) < LOG_INTERVAL)
        {
            return;
        }
        self.logged_at.insert(kind, now);
        eprintln!("ringdns: {message}");
    }

    fn accept(&mut self, index: usize, now: Instant) {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer, now),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    // Out of descriptors (something other than TCP holds
                    // more than its reserve): make room as at the cap, and
                    // retry shortly rather than spin.
                    self.log_rarely(
                        "emfile",
                        format_args!(
                            "tcp: accept: {error}; closing the longest-idle connection (raise LimitNOFILE= or lower tcp max-connections)"
                        ),
                    );
                    self.close_longest_idle();
                    self.accept_retry_at = Some(now + Duration::from_millis(10));
                    return;
                }
                // The client gave up before we accepted it (ECONNABORTED)
                // or the like: the next one may be fine.
                Err(error) if error.raw_os_error() == Some(libc::ECONNABORTED) => {}
                Err(error) => {
                    self.log_rarely("accept", format_args!("tcp: accept: {error}"));
                    self.accept_retry_at = Some(now + Duration::from_millis(10));
                    return;
                }
            }
        }
        self.accept_again.push(index);
    }

    /// Takes a new connection in, unless its address has its share
    /// already; at the cap, the connection idle longest makes room.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr, now: Instant) {
        let address = peer.ip();
        let from_address = self.by_address.get(&address).copied().unwrap_or(0);
        if from_address >= self.limits.connections_per_address_max {
            return; // dropping the stream closes it at once rather than queue
        }
        if self.open >= self.limits.connections_max {
            if !self.close_longest_idle() {
                return; // every slot is a transfer: nothing to give up
            }
            let cap = self.limits.connections_max;
            self.log_rarely(
                "cap",
                format_args!(
                    "tcp: at max-connections {cap}; closing the longest-idle connections for new clients"
                ),
            );
        }
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        // Replies go out as soon as they are written, not after a delayed ACK.
        let _ = stream.set_nodelay(true);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        if self
            .poll
            .registry()
            .register(
                &mut SourceFd(&stream.as_raw_fd()),
                Token(slot),
                Interest::READABLE,
            )
            .is_err()
        {
            self.free.push(slot);
            return;
        }
        self.slots[slot] = Some(Connection::new(Some(stream), peer, now));
        self.lru.push_back(slot);
        *self.by_address.entry(address).or_default() += 1;
        self.open += 1;
        // Registration reports data that is already waiting, so the
        // first query is read on the next turn.
    }

    /// Closes the connection that has been idle longest (not one lent to a
    /// transfer); false when there is none.
    fn close_longest_idle(&mut self) -> bool {
        match self.lru.front() {
            Some(slot) => {
                self.close(slot);
                true
            }
            None => false,
        }
    }

    fn close(&mut self, slot: usize) {
        let Some(connection) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if let Some(stream) = &connection.stream {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&stream.as_raw_fd()));
        }
        self.lru.remove(slot);
        let address = connection.peer.ip();
        if let Some(count) = self.by_address.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                self.by_address.remove(&address);
            }
        }
        self.open -= 1;
        self.free.push(slot);
        // Dropping `connection` closes the socket.
    }

    /// Does what a connection is ready for: answer what is complete, write
    /// what is queued, read what arrived, within one turn's budget.
    fn drive(&mut self, slot: usize, now: Instant) {
        let mut reads_left = READS_PER_TURN;
        loop {
            let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            if connection.stream.is_none() {
                return; // lent to a transfer thread
            }
            let answered_before = connection.active_at;
            let step = self.answerer.answer_complete(connection, now);
            if connection.active_at != answered_before {
                self.lru.touch(slot);
            }
            if let Step::Transfer(request) = step {
                if self.transfers.load(Ordering::Relaxed) < TRANSFERS_MAX {
                    self.lend_to_transfer(slot, request);
                    return;
                }
                if let Some(header) = crate::wire::message::Header::read(&request) {
                    let reply = xfr_out::error_reply(&request, &header, rcode::SERVFAIL);
                    push_framed(&mut connection.output, &reply);
                }
                self.log_rarely(
                    "transfers",
                    format_args!(
                        "tcp: {TRANSFERS_MAX} zone transfers are running; answering SERVFAIL to more"
                    ),
                );
                continue;
            }
            let written_before = connection.active_at;
            if connection.flush(now).is_err() {
                self.close(slot);
                return;
            }
            if connection.active_at != written_before {
                self.lru.touch(slot);
            }
            if connection.read_closed {
                // Nothing more will arrive: a partial message can never
                // complete, so close once the replies are out.
                if !connection.output_pending() {
                    self.close(slot);
                    return;
                }
                break;
            }
            if connection.output.len() - connection.output_sent >= OUTPUT_BYTES_HIGH {
                break; // the writable event resumes it
            }
            if connection.input.len() >= READ_CHUNK_BYTES {
                // Complete messages wait: answer them before reading more,
                // so the input stays bounded.
                if connection.output_pending() {
                    break;
                }
                continue;
            }
            if reads_left == 0 {
                self.again.push(slot);
                break;
            }
            reads_left -= 1;
            let Some(stream) = connection.stream.as_mut() else {
                return;
            };
            match stream.read(&mut self.scratch) {
                Ok(0) => connection.read_closed = true,
                Ok(count) => {
                    if connection.input.is_empty() {
                        connection.message_started = Some(now);
                    }
                    connection.input.extend_from_slice(&self.scratch[..count]);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close(slot);
                    return;
                }
            }
        }
        self.update_interest(slot);
    }

    /// Asks for writable events only while replies are waiting, so an idle
    /// connection wakes the loop only when the client sends.
    fn update_interest(&mut self, slot: usize) {
        let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(stream) = &connection.stream else {
            return;
        };
        let wanted = connection.output_pending();
        if wanted == connection.writable {
            return;
        }
        let interest = if wanted {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let fd = stream.as_raw_fd();
        if self
            .poll
            .registry()
            .reregister(&mut SourceFd(&fd), Token(slot), interest)
            .is_err()
        {
            self.close(slot);
            return;
        }
        connection.writable = wanted;
    }

    /// Hands the connection to a thread of its own for a zone transfer: the
    /// replies queued before it go first, then every message of the
    /// transfer; the connection comes back through `returned`.
    fn lend_to_transfer(&mut self, slot: usize, request: Vec<u8>) {
        let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(stream) = connection.stream.take() else {
            return;
        };
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&stream.as_raw_fd()));
        connection.writable = false;
        let pending = connection.output.split_off(connection.output_sent);
        connection.output = Vec::new();
        connection.output_sent = 0;
        let peer = connection.peer;
        self.lru.remove(slot);
        // A transfer may take long to send: the client gets the longer of
        // the two timeouts per write, not per transfer.
        let write_timeout = self.limits.idle.max(self.limits.message);
        let store = Arc::clone(&self.answerer.store);
        let sender = self.returned_sender.clone();
        let waker = Arc::clone(&self.waker);
        let transfers = Arc::clone(&self.transfers);
        transfers.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name("tcp-xfr".into())
            .spawn(move || {
                let mut stream = stream;
                let served = (|| -> io::Result<()> {
                    stream.set_nonblocking(false)?;
                    stream.set_write_timeout(Some(write_timeout))?;
                    stream.write_all(&pending)?;
                    xfr_out::serve(&request, peer, &store, &mut |reply| {
                        write_framed(&mut stream, reply)
                    })
                })();
                transfers.fetch_sub(1, Ordering::Relaxed);
                let stream = served.is_ok().then_some(stream);
                // The loop outlives this thread; if it is gone, so is the
                // process.
                let _ = sender.send(Returned { slot, stream });
                let _ = waker.wake();
            });
        if spawned.is_err() {
            // The closure, and the socket with it, is gone.
            self.transfers.fetch_sub(1, Ordering::Relaxed);
            self.log_rarely(
                "spawn",
                format_args!("tcp: cannot start a transfer thread; connection closed"),
            );
            self.close(slot);
        }
    }

    /// Connections whose transfer finished: back into the loop (answering
    /// whatever the client pipelined meanwhile), or closed on failure.
    fn take_back_transfers(&mut self, now: Instant) {
        while let Ok(Returned { slot, stream }) = self.returned.try_recv() {
            let Some(stream) = stream else {
                self.close(slot);
                continue;
            };
            let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let registered = stream.set_nonblocking(true).is_ok()
                && self
                    .poll
                    .registry()
                    .register(
                        &mut SourceFd(&stream.as_raw_fd()),
                        Token(slot),
                        Interest::READABLE,
                    )
                    .is_ok();
            connection.stream = Some(stream);
            if !registered {
                self.close(slot);
                continue;
            }
            connection.active_at = now;
            connection.message_started = (!connection.input.is_empty()).then_some(now);
            self.lru.push_back(slot);
            self.drive(slot, now);
        }
    }

    /// Closes every connection whose timeout has passed.
    fn sweep(&mut self, now: Instant) {
        let expired: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(slot, connection)| {
                connection.as_ref()?.expiry(now, &self.limits).map(|_| slot)
            })
            .collect();
        for slot in expired {
            self.close(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(lru: &Lru) -> Vec<usize> {
        let mut slots = Vec::new();
        let mut at = lru.head;
        while let Some(slot) = at {
            slots.push(slot);
            at = (lru.next[slot] != NONE).then_some(lru.next[slot]);
        }
        slots
    }

    #[test]
    fn lru_keeps_the_longest_idle_in_front() {
        let mut lru = Lru::default();
        for slot in [3, 0, 7] {
            lru.push_back(slot);
        }
        assert_eq!(order(&lru), [3, 0, 7]);
        lru.touch(3);
        assert_eq!(order(&lru), [0, 7, 3]);
        lru.remove(7);
        assert_eq!(order(&lru), [0, 3]);
        lru.remove(7); // twice is harmless
        lru.remove(0);
        lru.remove(3);
        assert_eq!(lru.front(), None);
        assert_eq!(lru.tail, None);
        lru.push_back(5);
        assert_eq!(order(&lru), [5]);
    }

    fn connection(now: Instant) -> Connection {
        Connection::new(None, "127.0.0.1:1".parse().unwrap(), now)
    }

    #[test]
    fn deadlines_follow_the_connection_state() {
        let limits = Limits {
            idle: Duration::from_secs(10),
            message: Duration::from_secs(2),
            connections_max: 1,
            connections_per_address_max: 1,
        };
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        // Lent to a transfer (no stream here): never expires in the loop.
        let lent = connection(start);
        assert_eq!(lent.expiry(at(100), &limits), None);

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut idle = connection(start);
        idle.stream = Some(TcpStream::connect(listener.local_addr().unwrap()).unwrap());
        assert_eq!(idle.expiry(at(9), &limits), None);
        assert_eq!(idle.expiry(at(10), &limits), Some(Expiry::Idle));

        // A message begun at 1 s must be complete by 3 s, however long the
        // idle timeout.
        let mut slow = idle;
        slow.message_started = Some(at(1));
        assert_eq!(slow.expiry(at(2), &limits), None);
        assert_eq!(slow.expiry(at(3), &limits), Some(Expiry::Message));

        // Unread replies: the idle timeout from the last write.
        let mut unread = slow;
        unread.output = vec![0; 10];
        unread.active_at = at(5);
        assert_eq!(unread.expiry(at(14), &limits), None);
        assert_eq!(unread.expiry(at(15), &limits), Some(Expiry::Unread));
    }

    #[test]
    fn the_cap_follows_the_open_file_limit() {
        assert_eq!(connections_max(None, 1 << 20), CONNECTIONS_MAX_DEFAULT);
        // 1024 descriptors: an eighth is kept for the rest of the server.
        assert_eq!(connections_max(None, 1024), 896);
        assert_eq!(connections_max(Some(100), 1024), 100);
        assert_eq!(connections_max(Some(5000), 1024), 896);
        assert_eq!(connections_max(None, 10), 1);
    }

    #[test]
    fn sweep_interval_is_finer_for_short_timeouts() {
        let mut limits = Limits {
            idle: Duration::from_secs(10),
            message: Duration::from_secs(2),
            connections_max: 1,
            connections_per_address_max: 1,
        };
        assert_eq!(limits.sweep_interval(), Duration::from_millis(100));
        limits.message = Duration::from_millis(200);
        assert_eq!(limits.sweep_interval(), Duration::from_millis(25));
    }
}
