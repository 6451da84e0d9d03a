//! The worker loop on io_uring: one ring per worker, a multishot RecvMsg per
//! socket filling buffers from a provided buffer ring, and a SendMsg per
//! reply, all submitted together by one `io_uring_enter` that also waits for
//! the next completions. Under load that is one system call per batch.
//!
//! All io_uring unsafety of the project lives in this module.
//!
//! Traps handled here (each has a test in tests/engine.rs):
//! - a multishot receive ends not only on ENOBUFS but on other conditions
//!   (a zero-length datagram among them): it is re-armed whenever a
//!   completion comes without IORING_CQE_F_MORE;
//! - an idle wait would count as iowait: IORING_ENTER_NO_IOWAIT is used
//!   where the kernel has it (IORING_FEAT_NO_IOWAIT).

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::{Fd, RecvMsgOut, SubmitArgs};
use io_uring::{EnterFlags, IoUring, cqueue, opcode, squeue};
use socket2::Socket;

use super::{PacketHandler, Peer, WorkerCounters};
use crate::metrics::Family;
use crate::respond::UDP_PAYLOAD_SIZE_MAX;

/// Each provided buffer holds the kernel's recvmsg header, the peer
/// address, the packet-info control message and the datagram.
/// 4 KiB, like the recvmmsg backend's largest query, so both backends
/// accept the same datagrams.
const BUFFER_LEN: usize = 4096;
const REPLY_LEN_MAX: usize = UDP_PAYLOAD_SIZE_MAX as usize;
/// Room for one IPV6_PKTINFO control message: CMSG_SPACE(20) on 64-bit.
const CONTROL_LEN: usize = 40;
const CONTROL_WORDS: usize = CONTROL_LEN / 8;
const BUFFER_GROUP: u16 = 0;

/// user_data: the kind in the high 32 bits, an index in the low 32.
const KIND_RECEIVE: u64 = 1 << 32;
const KIND_SEND: u64 = 2 << 32;
const INDEX_MASK: u64 = 0xFFFF_FFFF;

/// Ring sizes for one worker.
#[derive(Clone, Copy, Debug)]
pub struct RingOptions {
    /// Submission queue entries; also the number of receive buffers and of
    /// replies in flight. A power of two.
    pub entries: u32,
}

/// Checks once, at start-up, that this kernel and sandbox give us what the
/// loop needs: a ring, multishot RecvMsg and a provided buffer ring.
pub fn probe() -> Result<(), String> {
    let ring = build_ring(8).map_err(|error| format!("io_uring_setup failed: {error}"))?;
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|error| format!("io_uring probe failed: {error}"))?;
    for (code, name) in [
        (opcode::RecvMsgMulti::CODE, "RECVMSG"),
        (opcode::SendMsg::CODE, "SENDMSG"),
    ] {
        if !probe.is_supported(code) {
            return Err(format!("the kernel lacks IORING_OP_{name}"));
        }
    }
    let mut ring = ring;
    let buffers = BufferRing::new(&ring, 8)
        .map_err(|error| format!("provided buffer rings unavailable: {error}"))?;
    // SAFETY: all-zero is a valid msghdr. Declared before the sockets and
    // used only by the probe's receive; it outlives the ring (dropped below).
    let mut header: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
    header.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    let outcome = probe_multishot_receive(&mut ring, &header);
    let _ = ring.submitter().unregister_buf_ring(BUFFER_GROUP);
    drop(ring);
    drop(buffers);
    outcome
}

/// Arms a multishot RecvMsg on a loopback socket and sends it a datagram:
/// the opcode exists since 5.3 but multishot receive only since 6.0, and
/// only a real completion tells which this kernel has.
fn probe_multishot_receive(ring: &mut IoUring, header: &libc::msghdr) -> Result<(), String> {
    let failed = |what: &str, error: io::Error| format!("{what}: {error}");
    let receiver =
        std::net::UdpSocket::bind("127.0.0.1:0").map_err(|error| failed("probe socket", error))?;
    let sender =
        std::net::UdpSocket::bind("127.0.0.1:0").map_err(|error| failed("probe socket", error))?;
    let receive = opcode::RecvMsgMulti::new(Fd(receiver.as_raw_fd()), header, BUFFER_GROUP)
        .build()
        .user_data(1);
    // SAFETY: `header` and the buffer ring belong to the caller, which drops
    // the ring before either.
    unsafe { ring.submission().push(&receive) }
        .map_err(|_| "probe: submission queue full".to_string())?;
    ring.submit()
        .map_err(|error| failed("probe submit", error))?;
    let target = receiver
        .local_addr()
        .map_err(|error| failed("probe socket", error))?;
    sender
        .send_to(b"probe", target)
        .map_err(|error| failed("probe send", error))?;
    let timeout = io_uring::types::Timespec::new().sec(1);
    let _ = ring
        .submitter()
        .submit_with_args(1, &SubmitArgs::new().timespec(&timeout));
    let entry = ring
        .completion()
        .next()
        .ok_or("multishot receive: no completion within 1 s")?;
    if entry.result() < 0 {
        return Err(format!(
            "multishot receive unsupported: {}",
            io::Error::from_raw_os_error(-entry.result())
        ));
    }
    if cqueue::buffer_select(entry.flags()).is_none() {
        return Err("multishot receive did not use the provided buffers".to_string());
    }
    Ok(())
}

/// Room for four completions per submission (a multishot receive posts
/// many), within the kernel's limit of 65,536 (IORING_MAX_CQ_ENTRIES).
fn completion_entries(entries: u32) -> u32 {
    (entries * 4).min(65536)
}

fn build_ring(entries: u32) -> io::Result<IoUring> {
    // SINGLE_ISSUER + DEFER_TASKRUN (kernel 6.1+): completions are run only
    // when this thread enters the ring, with no interrupts in between.
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(completion_entries(entries))
        .build(entries)
        .or_else(|_| {
            IoUring::builder()
                .setup_cqsize(completion_entries(entries))
                .build(entries)
        })
}

/// A provided buffer ring (kernel 5.19+): receive buffers the kernel picks
/// from as datagrams arrive; we hand each back once its query is answered.
struct BufferRing {
    /// The shared ring of `io_uring_buf` entries (16 bytes each), mmapped.
    entries_memory: *mut u8,
    entries_len: usize,
    count: u16,
    /// Our next tail position (published with `publish`).
    tail: u16,
    buffers: Vec<u8>,
}

impl BufferRing {
    fn new(ring: &IoUring, count: u16) -> io::Result<BufferRing> {
        let entries_len = (count as usize * 16).max(4096);
        // SAFETY: an anonymous private mapping; checked for failure below.
        let memory = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                entries_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_ANONYMOUS | libc::MAP_PRIVATE,
                -1,
                0,
            )
        };
        if memory == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut buffer_ring = BufferRing {
            entries_memory: memory.cast(),
            entries_len,
            count,
            tail: 0,
            buffers: vec![0; count as usize * BUFFER_LEN],
        };
        // SAFETY: the memory is page-aligned and `count` entries long. The
        // kernel pins its pages at registration, so our munmap in Drop never
        // frees memory the kernel still reads; the buffers it points to are
        // freed only after the ring is gone (see `serve`).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(memory as u64, count, BUFFER_GROUP, 0)?
        };
        for id in 0..count {
            buffer_ring.give_back(id);
        }
        buffer_ring.publish();
        Ok(buffer_ring)
    }

    /// Queues buffer `id` for the kernel again (seen after `publish`).
    fn give_back(&mut self, id: u16) {
        let slot = (self.tail & (self.count - 1)) as usize;
        let address = self.buffers[id as usize * BUFFER_LEN..].as_ptr() as u64;
        // SAFETY: slot < count, so the 16-byte entry is inside the mapping;
        // struct io_uring_buf { u64 addr; u32 len; u16 bid; u16 resv; }.
        unsafe {
            let entry = self.entries_memory.add(slot * 16);
            entry.cast::<u64>().write(address);
            entry.add(8).cast::<u32>().write(BUFFER_LEN as u32);
            entry.add(12).cast::<u16>().write(id);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the queued buffers visible to the kernel.
    fn publish(&self) {
        // SAFETY: the ring's tail is the u16 at byte 14 of the first entry
        // (it overlays that entry's `resv`); the kernel reads it atomically.
        let tail = unsafe { &*self.entries_memory.add(14).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }

    fn buffer(&self, id: u16) -> Option<&[u8]> {
        self.buffers
            .get(id as usize * BUFFER_LEN..(id as usize + 1) * BUFFER_LEN)
    }
}

impl Drop for BufferRing {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `new` with this length; the kernel
        // holds its own reference to the pages while the ring is registered.
        unsafe { libc::munmap(self.entries_memory.cast(), self.entries_len) };
    }
}

/// One reply in flight: its bytes and the message header SendMsg reads.
#[repr(C)]
struct SendSlot {
    reply: [u8; REPLY_LEN_MAX],
    peer: libc::sockaddr_storage,
    control: [u64; CONTROL_WORDS],
    iovec: libc::iovec,
    header: libc::msghdr,
}

struct Listener {
    socket: Socket,
    address: SocketAddr,
    /// The header the multishot receive was armed with (its name and
    /// control lengths lay out every buffer).
    header: Box<libc::msghdr>,
}

pub fn serve(
    sockets: Vec<(Socket, SocketAddr)>,
    mut handler: impl PacketHandler,
    counters: &WorkerCounters,
    options: RingOptions,
) -> io::Result<()> {
    let entries = options.entries.next_power_of_two().clamp(64, 32768);
    let mut ring = build_ring(entries)?;
    let enter_flags = if ring.params().is_feature_no_iowait() {
        EnterFlags::NO_IOWAIT
    } else {
        EnterFlags::empty()
    };
    let mut buffers = BufferRing::new(&ring, entries.min(32768) as u16)?;

    let listeners: Vec<Listener> = sockets
        .into_iter()
        .map(|(socket, address)| {
            // SAFETY: all-zero is a valid msghdr.
            let mut header: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
            header.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            header.msg_controllen = if address.ip().is_unspecified() {
                CONTROL_LEN
            } else {
                0
            };
            Listener {
                socket,
                address,
                header,
            }
        })
        .collect();

    let slot_count = entries as usize;
    // SAFETY: all-zero is a valid SendSlot (plain bytes and C structs).
    let mut slots: Vec<SendSlot> = (0..slot_count)
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    let mut free_slots: Vec<u32> = (0..slot_count as u32).rev().collect();
    let mut rearm: Vec<usize> = (0..listeners.len()).collect();
    let mut last_error_report: Option<std::time::Instant> = None;

    let failure = 'serving: loop {
        {
            let (submitter, mut submission, mut completion) = ring.split();
            for &index in &rearm {
                let listener = &listeners[index];
                let receive = opcode::RecvMsgMulti::new(
                    Fd(listener.socket.as_raw_fd()),
                    &*listener.header,
                    BUFFER_GROUP,
                )
                .build()
                .user_data(KIND_RECEIVE | index as u64);
                push(&submitter, &mut submission, &receive);
            }
            rearm.clear();
            submission.sync();
            match submitter.submit_with_args_and_flags(1, &SubmitArgs::new(), enter_flags) {
                Ok(_) => {}
                Err(error)
                    if matches!(
                        error.raw_os_error(),
                        Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::ETIME)
                    ) => {}
                Err(error) => break 'serving error,
            }
            completion.sync();
            let batch_started = std::time::Instant::now();
            let mut batch_answered = 0u64;
            for completion_entry in &mut completion {
                let user_data = completion_entry.user_data();
                let index = (user_data & INDEX_MASK) as usize;
                let result = completion_entry.result();
                let flags = completion_entry.flags();
                if user_data & !INDEX_MASK == KIND_SEND {
                    free_slots.push(index as u32);
                    if result < 0 {
                        WorkerCounters::add(&counters.dropped, 1);
                    }
                    continue;
                }
                // A receive completion.
                if !cqueue::more(flags) {
                    rearm.push(index);
                }
                let Some(buffer_id) = cqueue::buffer_select(flags) else {
                    if result < 0 && result != -libc::ENOBUFS {
                        // Re-arming at once would spin on a persistent error:
                        // pause a little and report at most once a second.
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        if last_error_report.is_none_or(|at| at.elapsed().as_secs() >= 1) {
                            last_error_report = Some(std::time::Instant::now());
                            eprintln!(
                                "ringdns: receive on {}: {}",
                                listeners[index].address,
                                io::Error::from_raw_os_error(-result)
                            );
                        }
                    }
                    continue;
                };
                WorkerCounters::add(&counters.received, 1);
                let answered = match (buffers.buffer(buffer_id), free_slots.last()) {
                    (Some(buffer), Some(&slot_index)) if result > 0 => {
                        let data = &buffer[..(result as usize).min(BUFFER_LEN)];
                        let slot = &mut slots[slot_index as usize];
                        let family = if listeners[index].address.is_ipv4() {
                            Family::V4
                        } else {
                            Family::V6
                        };
                        prepare_reply(data, &listeners[index].header, &mut handler, slot, family)
                    }
                    _ => false,
                };
                buffers.give_back(buffer_id);
                if !answered {
                    WorkerCounters::add(&counters.dropped, 1);
                    continue;
                }
                let Some(slot_index) = free_slots.pop() else {
                    continue;
                };
                let slot = &mut slots[slot_index as usize];
                let send =
                    opcode::SendMsg::new(Fd(listeners[index].socket.as_raw_fd()), &slot.header)
                        .build()
                        .user_data(KIND_SEND | slot_index as u64);
                push(&submitter, &mut submission, &send);
                WorkerCounters::add(&counters.answered, 1);
                batch_answered += 1;
            }
            handler.batch_done(batch_answered, batch_started.elapsed().as_nanos() as u64);
            buffers.publish();
            submission.sync();
        }
    };
    // The kernel may still write into receive buffers and read send slots
    // until the ring's asynchronous teardown ends, after this thread has
    // moved on: leak them rather than free memory it may touch. This path
    // is fatal (the process exits), so the leak is bounded.
    drop(ring);
    std::mem::forget(buffers);
    std::mem::forget(slots);
    std::mem::forget(listeners);
    Err(failure)
}

/// Pushes `entry`, flushing the queue to the kernel first when it is full.
fn push(
    submitter: &io_uring::Submitter<'_>,
    submission: &mut io_uring::SubmissionQueue<'_>,
    entry: &squeue::Entry,
) {
    loop {
        // SAFETY: every entry we push points at memory (a listener's msghdr
        // or a send slot) that stays alive and unmoved until its completion.
        if unsafe { submission.push(entry) }.is_ok() {
            return;
        }
        submission.sync();
        let _ = submitter.submit();
        submission.sync();
    }
}

/// Answers the datagram in a receive buffer into `slot`; false when there
/// is nothing to send (dropped query, malformed buffer, truncated datagram).
fn prepare_reply(
    data: &[u8],
    receive_header: &libc::msghdr,
    handler: &mut impl PacketHandler,
    slot: &mut SendSlot,
    family: Family,
) -> bool {
    let Ok(message) = RecvMsgOut::parse(data, receive_header) else {
        return false;
    };
    if message.is_payload_truncated()
        || message.is_name_data_truncated()
        || message.is_control_data_truncated()
    {
        return false;
    }
    let length = handler.handle(
        message.payload_data(),
        &mut slot.reply,
        family,
        Peer(message.name_data()),
    );
    if length == 0 {
        return false;
    }
    let name = message.name_data();
    // SAFETY: `peer` is a sockaddr_storage (128 bytes); `name` is at most
    // the sockaddr_in6 length we asked for.
    unsafe {
        std::ptr::copy_nonoverlapping(
            name.as_ptr(),
            (&mut slot.peer as *mut libc::sockaddr_storage).cast::<u8>(),
            name.len(),
        );
    }
    let control = message.control_data();
    // SAFETY: the control buffer is CONTROL_LEN bytes and `control` is at
    // most the CONTROL_LEN we asked for.
    unsafe {
        std::ptr::copy_nonoverlapping(
            control.as_ptr(),
            slot.control.as_mut_ptr().cast::<u8>(),
            control.len(),
        );
    }
    slot.iovec = libc::iovec {
        iov_base: slot.reply.as_mut_ptr().cast(),
        iov_len: length,
    };
    slot.header.msg_name = (&mut slot.peer as *mut libc::sockaddr_storage).cast();
    slot.header.msg_namelen = name.len() as libc::socklen_t;
    slot.header.msg_iov = &mut slot.iovec;
    slot.header.msg_iovlen = 1;
    if control.is_empty() {
        slot.header.msg_control = std::ptr::null_mut();
        slot.header.msg_controllen = 0;
    } else {
        slot.header.msg_control = slot.control.as_mut_ptr().cast();
        slot.header.msg_controllen = control.len();
        // SAFETY: the header describes our own control buffer of that length.
        unsafe { super::recvmmsg::reply_from_destination(&mut slot.header) };
    }
    true
}
