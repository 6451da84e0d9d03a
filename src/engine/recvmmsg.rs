//! The worker loop on recvmmsg/sendmmsg: a batch of datagrams per system
//! call each way. All buffers are allocated once when the worker starts;
//! the loop itself allocates nothing.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::Socket;

use super::{PacketHandler, Peer, WorkerCounters};
use crate::metrics::Family;
use crate::respond::UDP_PAYLOAD_SIZE_MAX;

/// Largest query we read; longer datagrams are truncated by the kernel and
/// dropped (no query needs more than a question and an OPT with options).
const RECV_LEN_MAX: usize = 4096;
const SEND_LEN_MAX: usize = UDP_PAYLOAD_SIZE_MAX as usize;
/// Room for one IP_PKTINFO or IPV6_PKTINFO control message (u64 for alignment).
const CONTROL_WORDS: usize = 8;

pub fn enable_packet_info(socket: &Socket, ipv6: bool) -> io::Result<()> {
    let one: libc::c_int = 1;
    let (level, option) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    } else {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    };
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Buffers for one batch, allocated once. The message headers hold raw
/// pointers into the other vectors, which are never resized after `new`.
struct Batch {
    received: Vec<[u8; RECV_LEN_MAX]>,
    replies: Vec<[u8; SEND_LEN_MAX]>,
    peers: Vec<libc::sockaddr_storage>,
    received_control: Vec<[u64; CONTROL_WORDS]>,
    reply_control: Vec<[u64; CONTROL_WORDS]>,
    receive_iovecs: Vec<libc::iovec>,
    reply_iovecs: Vec<libc::iovec>,
    receive_headers: Vec<libc::mmsghdr>,
    reply_headers: Vec<libc::mmsghdr>,
}

impl Batch {
    fn new(size: usize) -> Box<Batch> {
        // SAFETY: all-zero bytes are valid values of these plain C structs.
        let zeroed_header = || unsafe { std::mem::zeroed::<libc::mmsghdr>() };
        let mut batch = Box::new(Batch {
            received: vec![[0; RECV_LEN_MAX]; size],
            replies: vec![[0; SEND_LEN_MAX]; size],
            // SAFETY: as above.
            peers: vec![unsafe { std::mem::zeroed() }; size],
            received_control: vec![[0; CONTROL_WORDS]; size],
            reply_control: vec![[0; CONTROL_WORDS]; size],
            receive_iovecs: Vec::with_capacity(size),
            reply_iovecs: Vec::with_capacity(size),
            receive_headers: (0..size).map(|_| zeroed_header()).collect(),
            reply_headers: (0..size).map(|_| zeroed_header()).collect(),
        });
        for index in 0..size {
            let buffer = batch.received[index].as_mut_ptr();
            batch.receive_iovecs.push(libc::iovec {
                iov_base: buffer.cast(),
                iov_len: RECV_LEN_MAX,
            });
            batch.reply_iovecs.push(libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            });
        }
        for index in 0..size {
            let header = &mut batch.receive_headers[index].msg_hdr;
            header.msg_iov = &mut batch.receive_iovecs[index];
            header.msg_iovlen = 1;
            header.msg_name = (&mut batch.peers[index] as *mut libc::sockaddr_storage).cast();
            header.msg_control = batch.received_control[index].as_mut_ptr().cast();
        }
        batch
    }

    /// Restores the lengths the kernel overwrote in the last receive.
    fn reset_receive_lengths(&mut self) {
        for header in &mut self.receive_headers {
            header.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_controllen = CONTROL_WORDS * 8;
            header.msg_hdr.msg_flags = 0;
        }
    }
}

pub fn serve(
    socket: Socket,
    address: SocketAddr,
    mut handler: impl PacketHandler,
    counters: &WorkerCounters,
    batch_size: usize,
) {
    let fd = socket.as_raw_fd();
    let family = if address.is_ipv4() {
        Family::V4
    } else {
        Family::V6
    };
    let mut batch = Batch::new(batch_size);
    loop {
        batch.reset_receive_lengths();
        // SAFETY: the headers point into `batch`'s buffers, which live as long
        // as `batch` and are not moved (it is boxed and never resized).
        let received = unsafe {
            libc::recvmmsg(
                fd,
                batch.receive_headers.as_mut_ptr(),
                batch_size as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                eprintln!("ringdns: recvmmsg on {address}: {error}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            continue;
        }
        let received = received as usize;
        WorkerCounters::add(&counters.received, received as u64);
        let mut replies = 0;
        let batch_started = std::time::Instant::now();
        for index in 0..received {
            let header = &batch.receive_headers[index];
            let length = header.msg_len as usize;
            if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                continue;
            }
            let packet = &batch.received[index][..length.min(RECV_LEN_MAX)];
            // SAFETY: `peers[index]` is a plain sockaddr_storage the kernel
            // filled; we view its first `msg_namelen` bytes.
            let peer_bytes = unsafe {
                std::slice::from_raw_parts(
                    (&batch.peers[index] as *const libc::sockaddr_storage).cast::<u8>(),
                    (header.msg_hdr.msg_namelen as usize)
                        .min(std::mem::size_of::<libc::sockaddr_storage>()),
                )
            };
            let reply_length =
                handler.handle(packet, &mut batch.replies[index], family, Peer(peer_bytes));
            if reply_length == 0 {
                continue;
            }
            let name_length = header.msg_hdr.msg_namelen;
            let control_length = header.msg_hdr.msg_controllen;
            batch.reply_iovecs[replies] = libc::iovec {
                iov_base: batch.replies[index].as_mut_ptr().cast(),
                iov_len: reply_length,
            };
            batch.reply_control[replies] = batch.received_control[index];
            let reply = &mut batch.reply_headers[replies].msg_hdr;
            reply.msg_name = (&mut batch.peers[index] as *mut libc::sockaddr_storage).cast();
            reply.msg_namelen = name_length;
            reply.msg_iov = &mut batch.reply_iovecs[replies];
            reply.msg_iovlen = 1;
            if control_length > 0 {
                reply.msg_control = batch.reply_control[replies].as_mut_ptr().cast();
                reply.msg_controllen = control_length;
                // SAFETY: `reply` describes a control buffer of `control_length`
                // bytes that we own; the walk stays inside it.
                unsafe { reply_from_destination(reply) };
            } else {
                reply.msg_control = std::ptr::null_mut();
                reply.msg_controllen = 0;
            }
            replies += 1;
        }
        WorkerCounters::add(&counters.dropped, (received - replies) as u64);
        let mut sent = 0;
        while sent < replies {
            // SAFETY: headers `sent..replies` were filled above and point into
            // `batch`, which outlives the call.
            let result = unsafe {
                libc::sendmmsg(
                    fd,
                    batch.reply_headers[sent..].as_mut_ptr(),
                    (replies - sent) as libc::c_uint,
                    0,
                )
            };
            if result > 0 {
                sent += result as usize;
            } else if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                // This datagram cannot go (e.g. an unreachable source): skip it.
                sent += 1;
                WorkerCounters::add(&counters.dropped, 1);
            }
        }
        WorkerCounters::add(&counters.answered, replies as u64);
        handler.batch_done(replies as u64, batch_started.elapsed().as_nanos() as u64);
    }
}

/// Turns the received packet-info control message into the one that makes
/// the reply leave from the address the query was sent to.
///
/// # Safety
/// `header.msg_control` must point to `header.msg_controllen` writable bytes.
pub(super) unsafe fn reply_from_destination(header: &mut libc::msghdr) {
    // SAFETY: the caller guarantees the control buffer; CMSG_* stay inside it.
    unsafe {
        let mut message = libc::CMSG_FIRSTHDR(header);
        while !message.is_null() {
            if (*message).cmsg_level == libc::IPPROTO_IP && (*message).cmsg_type == libc::IP_PKTINFO
            {
                let info = libc::CMSG_DATA(message) as *mut libc::in_pktinfo;
                // Source = the query's destination; let routing pick the interface.
                (*info).ipi_spec_dst = (*info).ipi_addr;
                (*info).ipi_ifindex = 0;
            }
            message = libc::CMSG_NXTHDR(header, message);
        }
    }
}
