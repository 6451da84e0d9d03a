//! DNS over TCP (RFC 7766): two-byte length framing, any number of queries
//! per connection answered in order (pipelining), an idle timeout, and a
//! cap on concurrent connections so slow clients cannot exhaust threads.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::publish::Published;
use crate::respond::{TCP_MESSAGE_LEN_MAX, Transport, respond};
use crate::wire::query::Query;

#[derive(Clone, Debug)]
pub struct TcpOptions {
    /// A connection with no complete query for this long is closed
    /// (RFC 7766 §6.2.3 suggests seconds, not minutes).
    pub idle_timeout_ms: u64,
    pub connections_max: usize,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            idle_timeout_ms: 10_000,
            connections_max: 256,
        }
    }
}

/// Binds every address now (so start-up fails clearly when one is taken),
/// then accepts on one thread per address.
pub fn start(listen: &[SocketAddr], published: &Published, options: &TcpOptions) -> io::Result<()> {
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
    let open = Arc::new(AtomicUsize::new(0));
    for listener in listeners {
        let published = published.clone();
        let options = options.clone();
        let open = Arc::clone(&open);
        std::thread::Builder::new()
            .name("tcp-accept".into())
            .spawn(move || accept_loop(listener, published, options, open))?;
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
    options: TcpOptions,
    open: Arc<AtomicUsize>,
) {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(error) => {
                eprintln!("ringdns: tcp accept: {error}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if open.fetch_add(1, Ordering::AcqRel) >= options.connections_max {
            open.fetch_sub(1, Ordering::AcqRel);
            drop(stream); // over the cap: close at once rather than queue
            continue;
        }
        let published = published.clone();
        let open_for_connection = Arc::clone(&open);
        let idle = Duration::from_millis(options.idle_timeout_ms);
        let spawned = std::thread::Builder::new()
            .name("tcp-conn".into())
            .spawn(move || {
                let _ = serve_connection(stream, &published, idle);
                open_for_connection.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn serve_connection(
    mut stream: TcpStream,
    published: &Published,
    idle: Duration,
) -> io::Result<()> {
    stream.set_read_timeout(Some(idle))?;
    stream.set_write_timeout(Some(idle))?;
    stream.set_nodelay(true)?;
    let mut reader = published.reader();
    let mut query = Query::default();
    let mut message = vec![0u8; TCP_MESSAGE_LEN_MAX];
    let mut reply = vec![0u8; 2 + TCP_MESSAGE_LEN_MAX];
    loop {
        let mut length = [0u8; 2];
        if stream.read_exact(&mut length).is_err() {
            return Ok(()); // closed, idle timeout, or reset: nothing to answer
        }
        let length = u16::from_be_bytes(length) as usize;
        stream.read_exact(&mut message[..length])?;
        let reply_length = respond(
            &mut query,
            &message[..length],
            reader.load(),
            Transport::Tcp,
            &mut reply[2..],
        );
        if reply_length == 0 {
            continue;
        }
        reply[..2].copy_from_slice(&(reply_length as u16).to_be_bytes());
        stream.write_all(&reply[..2 + reply_length])?;
    }
}
