//! DNS over TCP (RFC 7766): two-byte length framing, any number of queries
//! per connection answered in order (pipelining), an idle timeout between
//! messages, a deadline for each message once it has begun (so a client
//! sending a byte now and then cannot hold a connection), and caps on
//! connections in total and per client address.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::engine::log_record;
use crate::metrics::{self, Family, Proto, QueryCounters};
use crate::publish::Published;
use crate::querylog::LogQueue;
use crate::respond::{Cookies, TCP_MESSAGE_LEN_MAX, Transport, respond_with_cookies};
use crate::slowpath::zones::ZoneStore;
use crate::slowpath::{notify, xfr_out};
use crate::wire::query::Query;

#[derive(Clone, Debug)]
pub struct TcpOptions {
    /// A connection that starts no new message for this long is closed
    /// (RFC 7766 §6.2.3 suggests seconds, not minutes).
    pub idle_timeout_ms: u64,
    /// Once a message's first byte has arrived, the rest must arrive
    /// within this.
    pub message_timeout_ms: u64,
    pub connections_max: usize,
    /// One address may hold at most this many connections, so one host
    /// cannot take every slot.
    pub connections_per_address_max: usize,
    /// Server cookie secrets, when `cookies` is configured (RFC 7873).
    pub cookies: Option<Arc<crate::cookie::CookieSecrets>>,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            idle_timeout_ms: 10_000,
            message_timeout_ms: 2_000,
            connections_max: 256,
            connections_per_address_max: 32,
            cookies: None,
        }
    }
}

/// Open connections, in total and per client address.
#[derive(Default)]
struct Occupancy {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Binds every address now (so start-up fails clearly when one is taken),
/// then accepts on one thread per address.
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
    let open = Arc::new(Mutex::new(Occupancy::default()));
    for listener in listeners {
        let published = published.clone();
        let store = Arc::clone(&store);
        let options = options.clone();
        let open = Arc::clone(&open);
        let counters = Arc::clone(&counters);
        let log = log.clone();
        std::thread::Builder::new()
            .name("tcp-accept".into())
            .spawn(move || accept_loop(listener, published, store, options, open, counters, log))?;
    }
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
    socket.listen(1024)?;
    Ok(socket.into())
}

fn accept_loop(
    listener: TcpListener,
    published: Published,
    store: Arc<ZoneStore>,
    options: TcpOptions,
    open: Arc<Mutex<Occupancy>>,
    counters: Arc<QueryCounters>,
    log: Option<Arc<LogQueue>>,
) {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("ringdns: tcp accept: {error}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let address = peer.ip();
        {
            let mut occupancy = open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let from_address = occupancy.by_address.get(&address).copied().unwrap_or(0);
            if occupancy.total >= options.connections_max
                || from_address >= options.connections_per_address_max
            {
                drop(stream); // over a cap: close at once rather than queue
                continue;
            }
            occupancy.total += 1;
            *occupancy.by_address.entry(address).or_default() += 1;
        }
        let published = published.clone();
        let store = Arc::clone(&store);
        let open_for_connection = Arc::clone(&open);
        let options_for_connection = options.clone();
        let release = move || {
            let mut occupancy = open_for_connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            occupancy.total -= 1;
            if let Some(count) = occupancy.by_address.get_mut(&address) {
                *count -= 1;
                if *count == 0 {
                    occupancy.by_address.remove(&address);
                }
            }
        };
        let release_on_failure = release.clone();
        let counters = Arc::clone(&counters);
        let log = log.clone();
        let family = if address.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        let spawned = std::thread::Builder::new()
            .name("tcp-conn".into())
            .spawn(move || {
                let context = Connection {
                    counters: &counters,
                    family,
                    peer,
                    log: log.as_deref(),
                    store: &store,
                };
                let _ = serve_connection(stream, &published, &options_for_connection, &context);
                release();
            });
        if spawned.is_err() {
            release_on_failure();
        }
    }
}

fn serve_connection(
    mut stream: TcpStream,
    published: &Published,
    options: &TcpOptions,
    context: &Connection<'_>,
) -> io::Result<()> {
    let idle = Duration::from_millis(options.idle_timeout_ms);
    let message_timeout = Duration::from_millis(options.message_timeout_ms);
    stream.set_write_timeout(Some(message_timeout.max(idle)))?;
    stream.set_nodelay(true)?;
    let mut reader = published.reader();
    let mut query = Query::default();
    let mut message = vec![0u8; TCP_MESSAGE_LEN_MAX];
    let mut reply = vec![0u8; 2 + TCP_MESSAGE_LEN_MAX];
    loop {
        // Wait up to the idle timeout for the next message to begin.
        let mut length = [0u8; 2];
        stream.set_read_timeout(Some(idle))?;
        if stream.read(&mut length[..1])? == 0 {
            return Ok(()); // closed by the client
        }
        let deadline = Instant::now() + message_timeout;
        read_before(&mut stream, &mut length[1..], deadline)?;
        let length = u16::from_be_bytes(length) as usize;
        read_before(&mut stream, &mut message[..length], deadline)?;
        let request = &message[..length];
        // Transfers and NOTIFY are the slow path's own business.
        if xfr_out::is_transfer_request(request) {
            // A transfer may take long to send: the client gets the idle
            // timeout per message written, not per transfer.
            xfr_out::serve(request, context.peer, context.store, &mut |reply| {
                write_framed(&mut stream, reply)
            })?;
            continue;
        }
        if notify::is_notify(request) {
            if let Some(reply) = notify::answer(request, context.peer, context.store) {
                write_framed(&mut stream, &reply)?;
            }
            continue;
        }
        let started = Instant::now();
        let table = reader.load();
        let reply_length = respond_with_cookies(
            &mut query,
            &message[..length],
            table,
            Transport::Tcp,
            options
                .cookies
                .as_deref()
                .map(|secrets| Cookies::new(secrets, context.peer.ip())),
            &mut reply[2..],
        );
        if reply_length == 0 {
            continue;
        }
        let mut reply_length = reply_length;
        if query.signed {
            let signed = context
                .store
                .sign_reply(request, &reply[2..2 + reply_length]);
            if signed.len() > TCP_MESSAGE_LEN_MAX {
                continue;
            }
            reply[2..2 + signed.len()].copy_from_slice(&signed);
            reply_length = signed.len();
        }
        let edns = query.edns;
        let sent = &reply[2..2 + reply_length];
        let (qtype, rcode) = (
            metrics::counted_type(sent, query.qtype),
            metrics::reply_rcode(sent, crate::respond::opt_record_len(&query, table)),
        );
        let dnssec_ok = edns.is_some_and(|edns| edns.dnssec_ok);
        context
            .counters
            .record(Proto::Tcp, context.family, qtype, rcode, dnssec_ok, false);
        if let Some(log) = context.log
            && log.classes.includes(sent)
            && let Some(record) = log_record(
                &query,
                &message[..length],
                sent,
                rcode,
                context.peer,
                true,
                started,
            )
        {
            log.push(record);
        }
        reply[..2].copy_from_slice(&(reply_length as u16).to_be_bytes());
        stream.write_all(&reply[..2 + reply_length])?;
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

/// What a connection's thread reports to.
struct Connection<'a> {
    counters: &'a QueryCounters,
    family: Family,
    peer: SocketAddr,
    log: Option<&'a LogQueue>,
    store: &'a ZoneStore,
}

/// Fills `buffer` from `stream`, failing with TimedOut at `deadline`
/// however the bytes trickle in.
fn read_before(stream: &mut TcpStream, buffer: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut filled = 0;
    while filled < buffer.len() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(remaining))?;
        match stream.read(&mut buffer[filled..])? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            count => filled += count,
        }
    }
    Ok(())
}
