//! The send/receive loop of one generator thread.
//!
//! Each thread owns some UDP sockets ("flows"), each connected to the
//! server so that the kernel skips the route lookup on send and drops
//! datagrams from anyone else. Everything the loop touches is allocated
//! before it starts: the in-flight tables, the mmsghdr arrays and their
//! buffers, the histogram.
//!
//! The loop is paced, not driven by every reply: a wakeup costs about as
//! much as sending a few queries (on a VM, 10 us or more), so waking per
//! reply would cost more than the queries themselves. Each tick it
//!
//! 1. drains every socket with recvmmsg (batches of up to 64),
//! 2. expires queries older than the timeout (counted lost),
//! 3. sends with sendmmsg: in closed loop, refills each socket up to its
//!    in-flight target; in open loop, the queries the token bucket says
//!    are due,
//! 4. sleeps until the next tick, unless it is behind. A tick is sized so
//!    that about one batch arrives or is due in it (see `Worker::run`),
//!    between 20 us and 1 ms.
//!
//! Because replies may wait in the socket up to a tick before they are
//! read, latency is measured with the kernel's receive timestamp
//! (SO_TIMESTAMPNS, taken when the reply is queued to the socket), and
//! each query's send time is interpolated across its sendmmsg call. Both
//! are CLOCK_REALTIME (the only clock the kernel stamps packets with).

use crate::query::{MAX_QUERY_LEN, Queries};
use hdrhistogram::Histogram;
use socket2::Socket;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Datagrams per sendmmsg/recvmmsg call.
pub const BATCH: usize = 64;
/// Receive buffer per datagram: only the header and the question are
/// read, so longer replies are cut here (the kernel drops the rest, which
/// also saves copying it).
const RECV_LEN: usize = 512;
/// IDs per socket: the in-flight table is indexed by the 16-bit message ID.
const IDS: usize = 65536;
/// Control buffer per received datagram: room for one SCM_TIMESTAMPNS
/// (CMSG_SPACE(16) = 32 bytes), with some to spare.
const CTRL_LEN: usize = 64;
/// Bounds of the pacing tick.
const MIN_TICK_NS: f64 = 20_000.0;
const MAX_TICK_NS: f64 = 1_000_000.0;
/// recvmmsg calls per socket per tick at most, so one busy socket cannot
/// starve the others.
const MAX_RECV_ROUNDS: usize = 16;

/// What every thread is told.
pub struct Plan {
    /// Queries in flight per socket in closed loop.
    pub in_flight: u32,
    /// Open loop: this thread's share of the rate, in queries per ns.
    pub rate_per_ns: Option<f64>,
    /// A query unanswered this long is lost.
    pub timeout_ns: u64,
    /// Stop sending at this time (ns since start).
    pub send_end_ns: u64,
    /// After sending stops, wait at most this long for the last replies.
    pub drain_ns: u64,
}

/// Counters one thread publishes for the progress line; padded so that
/// two threads never write the same cache line.
#[repr(align(128))]
#[derive(Default)]
pub struct Progress {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub lost: AtomicU64,
}

/// Reply codes counted separately; anything else is `Other`.
#[derive(Clone, Copy)]
pub enum Rcode {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    Refused = 4,
    Other = 5,
}

impl Rcode {
    fn of(reply: &[u8]) -> Rcode {
        match reply[3] & 0x0f {
            0 => Rcode::NoError,
            1 => Rcode::FormErr,
            2 => Rcode::ServFail,
            3 => Rcode::NxDomain,
            5 => Rcode::Refused,
            _ => Rcode::Other,
        }
    }
}

/// One thread's final counts.
pub struct Totals {
    pub sent: u64,
    /// Replies that answered a query in flight and passed the checks.
    pub received: u64,
    pub lost: u64,
    /// Datagrams whose ID is not in flight on their socket (late replies
    /// to queries already counted lost, duplicates, runts).
    pub unexpected: u64,
    /// Replies that matched an in-flight ID but failed the checks (QR
    /// clear, not exactly one question, a different question). The query
    /// counts as answered, neither received nor lost.
    pub bad: u64,
    pub rcodes: [u64; 6],
    /// Received replies with TC set (also counted in `received`).
    pub truncated: u64,
    /// sendmmsg/recvmmsg failures other than "would block" and
    /// "connection refused" (the ICMP error of a stopped server).
    pub io_errors: u64,
    /// Latency of received replies, in microseconds.
    pub latency: Histogram<u64>,
    /// When this thread stopped sending (ns since start).
    pub send_stop_ns: u64,
    /// When the last reply was received (ns since start; 0 if none).
    pub last_reply_ns: u64,
}

impl Totals {
    pub fn new() -> Totals {
        Totals {
            sent: 0,
            received: 0,
            lost: 0,
            unexpected: 0,
            bad: 0,
            rcodes: [0; 6],
            truncated: 0,
            io_errors: 0,
            // 1 us to 1 hour, 3 significant digits; fixed bounds, so
            // recording never allocates.
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds"),
            send_stop_ns: 0,
            last_reply_ns: 0,
        }
    }

    pub fn add(&mut self, o: &Totals) {
        self.sent += o.sent;
        self.received += o.received;
        self.lost += o.lost;
        self.unexpected += o.unexpected;
        self.bad += o.bad;
        for (a, b) in self.rcodes.iter_mut().zip(o.rcodes) {
            *a += b;
        }
        self.truncated += o.truncated;
        self.io_errors += o.io_errors;
        self.latency
            .add(&o.latency)
            .expect("histograms have the same bounds");
        self.send_stop_ns = self.send_stop_ns.max(o.send_stop_ns);
        self.last_reply_ns = self.last_reply_ns.max(o.last_reply_ns);
    }
}

/// A query in flight (or a free slot).
#[derive(Clone, Copy, Default)]
struct Slot {
    sent_ns: u64,
    query: u32,
    live: bool,
}

/// One socket and its in-flight table.
///
/// IDs are handed out in sequence (`next`), so the queries in flight all
/// lie in the window `oldest..next` (u32 counters; the ID is the low 16
/// bits) and are in send order: expiring is a walk from `oldest` that
/// stops at the first query still young, O(1) per query. The window never
/// exceeds 65536 IDs: if it would, the oldest query is given up as lost
/// early (only possible when one socket sends more than 65536 queries per
/// timeout; use more sockets then).
struct Flow {
    sock: Socket,
    slots: Box<[Slot]>,
    oldest: u32,
    next: u32,
    in_flight: u32,
}

impl Flow {
    fn new(sock: Socket) -> Flow {
        Flow {
            sock,
            slots: vec![Slot::default(); IDS].into_boxed_slice(),
            oldest: 0,
            next: 0,
            in_flight: 0,
        }
    }

    /// Frees the slot at `oldest` (counting it lost if it was in flight)
    /// and moves `oldest` on.
    #[inline]
    fn drop_oldest(&mut self, lost: &mut u64) {
        let s = &mut self.slots[self.oldest as u16 as usize];
        if s.live {
            s.live = false;
            self.in_flight -= 1;
            *lost += 1;
        }
        self.oldest = self.oldest.wrapping_add(1);
    }

    /// Counts as lost every query older than `timeout_ns`.
    fn expire(&mut self, now: u64, timeout_ns: u64, lost: &mut u64) {
        while self.oldest != self.next {
            let s = self.slots[self.oldest as u16 as usize];
            if s.live && now.saturating_sub(s.sent_ns) < timeout_ns {
                break;
            }
            self.drop_oldest(lost);
        }
    }
}

/// Preallocated sendmmsg/recvmmsg vectors: `msgs[i]` points at `iovs[i]`,
/// which points into `bufs`, and (for receiving) at its slice of `ctrl`.
/// The boxes never move or grow once built, so the raw pointers stay
/// valid for the thread's life.
struct MsgVec {
    bufs: Box<[u8]>,
    _iovs: Box<[libc::iovec]>,
    /// u64 for the alignment cmsghdr needs.
    _ctrl: Box<[u64]>,
    msgs: Box<[libc::mmsghdr]>,
    stride: usize,
    ctrl_len: usize,
}

impl MsgVec {
    fn new(stride: usize, ctrl_len: usize) -> MsgVec {
        let mut bufs = vec![0u8; stride * BATCH].into_boxed_slice();
        let mut ctrl = vec![0u64; ctrl_len / 8 * BATCH].into_boxed_slice();
        let mut iovs: Box<[libc::iovec]> = (0..BATCH)
            .map(|i| libc::iovec {
                iov_base: bufs[i * stride..].as_mut_ptr().cast(),
                iov_len: stride,
            })
            .collect();
        let msgs = (0..BATCH)
            .map(|i| {
                // SAFETY: mmsghdr is plain data; all-zero is a valid value
                // (no address, no control data).
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = &mut iovs[i];
                m.msg_hdr.msg_iovlen = 1;
                if ctrl_len > 0 {
                    m.msg_hdr.msg_control = ctrl[i * ctrl_len / 8..].as_mut_ptr().cast();
                    m.msg_hdr.msg_controllen = ctrl_len as _;
                }
                m
            })
            .collect();
        MsgVec {
            bufs,
            _iovs: iovs,
            _ctrl: ctrl,
            msgs,
            stride,
            ctrl_len,
        }
    }

    fn buf(&mut self, i: usize) -> &mut [u8] {
        &mut self.bufs[i * self.stride..(i + 1) * self.stride]
    }

    /// Datagram `i` of the last recvmmsg (cut at the buffer length).
    fn received(&self, i: usize) -> &[u8] {
        let len = (self.msgs[i].msg_len as usize).min(self.stride);
        &self.bufs[i * self.stride..i * self.stride + len]
    }

    /// The kernel receive timestamp of datagram `i` of the last recvmmsg
    /// (CLOCK_REALTIME ns), if it came with one; and re-arms its control
    /// buffer length, which the kernel overwrote.
    fn take_timestamp(&mut self, i: usize) -> Option<u64> {
        let hdr = &mut self.msgs[i].msg_hdr;
        let mut ts = None;
        // SAFETY: msg_control points at CTRL_LEN bytes of `_ctrl`, and the
        // kernel set msg_controllen to what it wrote there; CMSG_FIRSTHDR
        // returns null if not even one header fits.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(hdr);
            if !c.is_null()
                && (*c).cmsg_level == libc::SOL_SOCKET
                && (*c).cmsg_type == libc::SCM_TIMESTAMPNS
                && (*c).cmsg_len as usize
                    >= libc::CMSG_LEN(std::mem::size_of::<libc::timespec>() as u32) as usize
            {
                let t = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                ts = Some(t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64);
            }
        }
        hdr.msg_controllen = self.ctrl_len as _;
        ts
    }

    fn set_len(&mut self, i: usize, len: usize) {
        // SAFETY: msg_iov points at `_iovs[i]`, owned by self.
        unsafe { (*self.msgs[i].msg_hdr.msg_iov).iov_len = len };
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Whether a failed send/recv is an error worth counting: not "would
/// block", not an interrupted call, and not ECONNREFUSED (the ICMP port
/// unreachable of a stopped server, reported once per ICMP on a
/// connected socket; the queries it concerns are counted lost anyway).
fn is_io_error(e: i32) -> bool {
    !matches!(
        e,
        libc::EAGAIN | libc::EINTR | libc::ECONNREFUSED | libc::ENOBUFS
    )
}

/// CLOCK_REALTIME in ns: the clock of the kernel's packet timestamps.
#[inline]
pub fn realtime_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: t is a valid timespec to fill; the call cannot fail for
    // this clock id.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn sleep_ns(ns: u64) {
    let t = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: t outlives the call; an early return (EINTR) is harmless.
    unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &t, std::ptr::null_mut()) };
}

/// One generator thread.
pub struct Worker<'a> {
    flows: Vec<Flow>,
    queries: &'a Queries,
    /// Next query index to send (file order, looping).
    cursor: usize,
    send: MsgVec,
    recv: MsgVec,
    /// Query index of each message in the current send batch.
    batch_queries: [u32; BATCH],
    pollfds: Vec<libc::pollfd>,
    t: Totals,
    /// CLOCK_REALTIME ns at the start of the run; times are kept relative to it.
    base_ns: u64,
}

impl<'a> Worker<'a> {
    /// `first_query` spreads threads over the file so that they do not all
    /// send the same names at the same moment. `base_ns` is the start of
    /// the run in [`realtime_ns`].
    pub fn new(
        socks: Vec<Socket>,
        queries: &'a Queries,
        first_query: usize,
        base_ns: u64,
    ) -> Worker<'a> {
        let pollfds = socks
            .iter()
            .map(|s| libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        Worker {
            flows: socks.into_iter().map(Flow::new).collect(),
            queries,
            cursor: first_query % queries.len(),
            send: MsgVec::new(MAX_QUERY_LEN, 0),
            recv: MsgVec::new(RECV_LEN, CTRL_LEN),
            batch_queries: [0; BATCH],
            pollfds,
            t: Totals::new(),
            base_ns,
        }
    }

    /// Now, in ns since the start of the run.
    #[inline]
    fn now(&self) -> u64 {
        realtime_ns().saturating_sub(self.base_ns)
    }

    /// Runs until `plan.send_end_ns` or `stop`, then drains; returns the
    /// counts. Publishes progress in `progress` once per tick.
    pub fn run(mut self, plan: &Plan, stop: &AtomicBool, progress: &Progress) -> Totals {
        // Shorter timer slack than the default 50 us: ticks are 20 us to 1 ms.
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(PR_SET_TIMERSLACK, 5_000 as libc::c_ulong) };
        // Closed loop: the tick is the time about this many replies take to
        // arrive (a batch, or a quarter of the window if that is smaller, so
        // that the server never runs dry while we sleep), from a smoothed
        // reply rate. Less than one reply for windows under 4: with a whole
        // one, a window of 1 would keep whatever tick it started with.
        let window = u64::from(plan.in_flight) * self.flows.len() as u64;
        let tick_replies = (window as f64 / 4.0).min(BATCH as f64);
        let mut reply_rate = 0.0f64; // replies per ns
        // Open loop: queries the schedule has released so far.
        let mut released: u64 = 0;
        // Round-robin position for open-loop sends.
        let mut rr = 0;
        let mut last = self.now();
        loop {
            let tick_start = self.now();
            if tick_start >= plan.send_end_ns || stop.load(Relaxed) {
                self.t.send_stop_ns = tick_start;
                break;
            }
            let got = self.receive_all();
            let now = self.now();
            for f in &mut self.flows {
                f.expire(now, plan.timeout_ns, &mut self.t.lost);
            }
            let mut behind = false;
            let tick = match plan.rate_per_ns {
                None => {
                    for i in 0..self.flows.len() {
                        loop {
                            let room =
                                plan.in_flight.saturating_sub(self.flows[i].in_flight) as usize;
                            if room == 0 || self.send_batch(i, room.min(BATCH)) < room.min(BATCH) {
                                break;
                            }
                        }
                    }
                    let dt = now.saturating_sub(last);
                    // Ticks without replies count too, so that the rate
                    // (and the wakeups) decay when the server stops.
                    if dt > 0 {
                        let sample = got as f64 / dt as f64;
                        reply_rate = if reply_rate == 0.0 {
                            sample
                        } else {
                            reply_rate + (sample - reply_rate) / 8.0
                        };
                    }
                    if reply_rate > 0.0 {
                        tick_replies / reply_rate
                    } else {
                        MAX_TICK_NS
                    }
                }
                Some(rate) => {
                    // The first query goes at time 0, then one per 1/rate.
                    let due_total = (now as f64 * rate) as u64 + 1;
                    let mut due = due_total.saturating_sub(released);
                    // At most one batch per socket per tick, so that
                    // receiving keeps up while catching up after a stall.
                    for _ in 0..self.flows.len() {
                        if due == 0 {
                            break;
                        }
                        let n = self.send_batch(rr, (due as usize).min(BATCH)) as u64;
                        rr = (rr + 1) % self.flows.len();
                        released += n;
                        due -= n;
                    }
                    behind = due > 0;
                    // A batch per tick (at low rates the tick is 1 ms): big
                    // enough batches, small enough bursts for the server.
                    BATCH as f64 / rate
                }
            };
            last = now;
            progress.sent.store(self.t.sent, Relaxed);
            progress.received.store(self.t.received, Relaxed);
            progress.lost.store(self.t.lost, Relaxed);
            if !behind {
                let wake = (tick_start + tick.clamp(MIN_TICK_NS, MAX_TICK_NS) as u64)
                    .min(plan.send_end_ns);
                let now = self.now();
                if wake > now {
                    sleep_ns(wake - now);
                }
            }
        }
        // Drain: no more sends; wait for what is in flight, at most
        // drain_ns. Woken by replies: the time no longer matters.
        let drain_end = self.t.send_stop_ns + plan.drain_ns;
        loop {
            self.receive_all();
            let now = self.now();
            for f in &mut self.flows {
                f.expire(now, plan.timeout_ns, &mut self.t.lost);
            }
            progress.received.store(self.t.received, Relaxed);
            progress.lost.store(self.t.lost, Relaxed);
            if self.flows.iter().all(|f| f.in_flight == 0) || now >= drain_end {
                break;
            }
            self.poll((drain_end - now).min(MAX_TICK_NS as u64));
        }
        // Whatever is still in flight is lost.
        for f in &mut self.flows {
            while f.oldest != f.next {
                f.drop_oldest(&mut self.t.lost);
            }
        }
        progress.lost.store(self.t.lost, Relaxed);
        self.t
    }

    /// Sleeps in ppoll() until a socket is readable or `ns` passed.
    fn poll(&mut self, ns: u64) {
        let ts = libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: pollfds is a valid array of its length; ts outlives the call.
        unsafe {
            libc::ppoll(
                self.pollfds.as_mut_ptr(),
                self.pollfds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
    }

    /// Empties every socket; returns the number of datagrams received.
    fn receive_all(&mut self) -> usize {
        let mut got = 0;
        for i in 0..self.flows.len() {
            for _ in 0..MAX_RECV_ROUNDS {
                let n = self.receive(i);
                got += n;
                if n < BATCH {
                    break;
                }
            }
        }
        got
    }

    /// One recvmmsg on flow `i`; returns the number of datagrams.
    fn receive(&mut self, i: usize) -> usize {
        let fd = self.flows[i].sock.as_raw_fd();
        // SAFETY: msgs holds BATCH valid headers whose buffers live in self.recv.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                self.recv.msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r <= 0 {
            if r < 0 && is_io_error(errno()) {
                self.t.io_errors += 1;
            }
            return 0;
        }
        let n = r as usize;
        let now = self.now();
        for k in 0..n {
            // Replies without a kernel timestamp (none expected) count as
            // received now.
            let at = self
                .recv
                .take_timestamp(k)
                .map_or(now, |ts| ts.saturating_sub(self.base_ns));
            let reply = self.recv.received(k);
            let flow = &mut self.flows[i];
            let t = &mut self.t;
            if reply.len() < 12 {
                t.unexpected += 1;
                continue;
            }
            let id = u16::from_be_bytes([reply[0], reply[1]]);
            let slot = &mut flow.slots[id as usize];
            if !slot.live {
                t.unexpected += 1;
                continue;
            }
            slot.live = false;
            flow.in_flight -= 1;
            if !self.queries.reply_matches(slot.query as usize, reply) {
                t.bad += 1;
                continue;
            }
            t.received += 1;
            t.rcodes[Rcode::of(reply) as usize] += 1;
            if reply[2] & 0x02 != 0 {
                t.truncated += 1;
            }
            t.latency
                .saturating_record(at.saturating_sub(slot.sent_ns) / 1000);
        }
        self.t.last_reply_ns = now;
        n
    }

    /// Sends up to `n` (≤ BATCH) queries on flow `i` with one sendmmsg;
    /// returns how many the kernel took.
    fn send_batch(&mut self, i: usize, n: usize) -> usize {
        let nq = self.queries.len();
        let flow = &mut self.flows[i];
        // Keep the ID window within 65536 (see Flow).
        while flow.next.wrapping_sub(flow.oldest) as usize + n > IDS {
            flow.drop_oldest(&mut self.t.lost);
        }
        let mut q = self.cursor;
        for k in 0..n {
            let msg = self.queries.message(q);
            let id = (flow.next.wrapping_add(k as u32) as u16).to_be_bytes();
            let buf = self.send.buf(k);
            buf[..msg.len()].copy_from_slice(msg);
            buf[..2].copy_from_slice(&id);
            self.send.set_len(k, msg.len());
            self.batch_queries[k] = q as u32;
            q += 1;
            if q == nq {
                q = 0;
            }
        }
        let before = realtime_ns().saturating_sub(self.base_ns);
        // SAFETY: the first n headers point at buffers filled above.
        let r = unsafe {
            libc::sendmmsg(
                flow.sock.as_raw_fd(),
                self.send.msgs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if r <= 0 {
            if r < 0 && is_io_error(errno()) {
                self.t.io_errors += 1;
            }
            return 0;
        }
        let sent = r as usize;
        // On loopback a datagram is delivered inside the call, one after
        // the other: query k left about k+1 n-ths of the way through it.
        let spent = realtime_ns()
            .saturating_sub(self.base_ns)
            .saturating_sub(before);
        for k in 0..sent {
            flow.slots[flow.next as u16 as usize] = Slot {
                sent_ns: before + spent * (k as u64 + 1) / sent as u64,
                query: self.batch_queries[k],
                live: true,
            };
            flow.next = flow.next.wrapping_add(1);
        }
        flow.in_flight += sent as u32;
        self.t.sent += sent as u64;
        // Queries the kernel did not take are sent next time, in order.
        self.cursor = (self.cursor + sent) % nq;
        sent
    }
}

/// prctl option (linux/prctl.h), not exported by the libc crate.
const PR_SET_TIMERSLACK: libc::c_int = 29;

/// Asks the kernel to stamp each datagram received on `sock` with its
/// arrival time (SO_TIMESTAMPNS).
pub fn enable_rx_timestamps(sock: &Socket) -> std::io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid fd and a c_int option value of the right size.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Pins the calling thread to one CPU.
pub fn pin_to(cpu: usize) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET bounds-checks nothing, so
    // the caller's cpu number is checked against its size first.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
