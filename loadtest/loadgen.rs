//! ringdns-loadgen: a DNS load generator that spends little CPU per query,
//! so that on a small machine the server, not the generator, is the limit
//! (dnsperf needs a whole core for about 120k queries/s).
//!
//! How: every query is encoded once at start; each thread sends and
//! receives in batches of up to 64 datagrams per system call (sendmmsg,
//! recvmmsg) on connected UDP sockets, matches replies through a table
//! indexed by message ID, and sleeps in ppoll() only when it has nothing
//! to do. See loadtest/README.md and `--help`.

#[path = "loadgen/cli.rs"]
mod cli;
#[path = "loadgen/engine.rs"]
mod engine;
#[path = "loadgen/query.rs"]
mod query;

use engine::{Plan, Progress, Rcode, Totals, Worker};
use query::{Encoding, Queries};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// After sending stops, how long to wait for replies still in flight.
const DRAIN: Duration = Duration::from_secs(1);

/// Set by SIGINT/SIGTERM: stop sending, drain, report.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Relaxed);
}

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ringdns-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringdns-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &cli::Args) -> Result<(), String> {
    let text =
        std::fs::read_to_string(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let mut warnings = Vec::new();
    let enc = Encoding {
        edns: args.edns,
        dnssec_ok: args.dnssec_ok,
    };
    let queries = Queries::parse(&text, enc, &mut warnings);
    for w in warnings.iter().take(10) {
        eprintln!("{}: {w} (skipped)", args.file.display());
    }
    if warnings.len() > 10 {
        eprintln!(
            "{}: {} more bad lines skipped",
            args.file.display(),
            warnings.len() - 10
        );
    }
    let queries = queries.map_err(|e| format!("{}: {e}", args.file.display()))?;

    // Sockets are made here so that errors show before anything starts;
    // thread t gets sockets t, t+T, t+2T, ...
    let mut per_thread: Vec<Vec<Socket>> = (0..args.threads).map(|_| Vec::new()).collect();
    for i in 0..args.sockets {
        per_thread[i % args.threads].push(open_socket(args.server)?);
    }

    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }

    let plan = Plan {
        in_flight: args.in_flight,
        rate_per_ns: args.rate.map(|r| r / args.threads as f64 / 1e9),
        timeout_ns: (args.timeout * 1e9) as u64,
        send_end_ns: (args.seconds * 1e9) as u64,
        drain_ns: DRAIN.as_nanos() as u64,
    };
    let progress: Vec<Progress> = (0..args.threads).map(|_| Progress::default()).collect();
    let mode = match args.rate {
        Some(r) => format!("open loop at {r} queries/s"),
        None => format!("closed loop, {} in flight per socket", args.in_flight),
    };
    println!(
        "ringdns-loadgen: {} queries from {}, server {}, {} s, {mode}, {} sockets, {} threads",
        queries.len(),
        args.file.display(),
        args.server,
        args.seconds,
        args.sockets,
        args.threads
    );

    let start = Instant::now();
    let base_ns = engine::realtime_ns();
    let mut total = Totals::new();
    let (plan, queries, progress) = (&plan, &queries, &progress);
    std::thread::scope(|s| -> Result<(), String> {
        let mut handles = Vec::new();
        for (t, socks) in per_thread.into_iter().enumerate() {
            let cpu = (!args.cpus.is_empty()).then(|| args.cpus[t % args.cpus.len()]);
            let first = t * queries.len() / args.threads;
            let h = std::thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn_scoped(s, move || {
                    if let Some(cpu) = cpu
                        && let Err(e) = engine::pin_to(cpu)
                    {
                        eprintln!("ringdns-loadgen: thread {t}: cannot pin to CPU {cpu}: {e}");
                    }
                    Worker::new(socks, queries, first, base_ns).run(plan, &STOP, &progress[t])
                })
                .map_err(|e| format!("cannot start a thread: {e}"))?;
            handles.push(h);
        }
        report_progress(start, progress, || handles.iter().all(|h| h.is_finished()));
        for h in handles {
            total.add(&h.join().map_err(|_| "a generator thread panicked")?);
        }
        Ok(())
    })?;
    report(&total, cpu_seconds());
    Ok(())
}

/// A non-blocking UDP socket connected to the server, with large buffers
/// (the kernel caps them at net.core.[rw]mem_max).
fn open_socket(server: SocketAddr) -> Result<Socket, String> {
    let err = |e: std::io::Error| format!("socket to {server}: {e}");
    let sock = Socket::new(
        Domain::for_address(server),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .map_err(err)?;
    sock.set_nonblocking(true).map_err(err)?;
    let _ = sock.set_recv_buffer_size(4 << 20);
    let _ = sock.set_send_buffer_size(4 << 20);
    let any: IpAddr = match server {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    sock.bind(&SockAddr::from(SocketAddr::new(any, 0)))
        .map_err(err)?;
    sock.connect(&SockAddr::from(server)).map_err(err)?;
    engine::enable_rx_timestamps(&sock).map_err(err)?;
    Ok(sock)
}

/// Prints a progress line to stderr every second until `done()`.
fn report_progress(start: Instant, progress: &[Progress], done: impl Fn() -> bool) {
    let sum = |f: fn(&Progress) -> u64| progress.iter().map(f).sum::<u64>();
    let mut tick = 1u64;
    let (mut last_received, mut last_at) = (0u64, Duration::ZERO);
    while !done() {
        let next = Duration::from_secs(tick);
        let elapsed = start.elapsed();
        if elapsed < next {
            std::thread::sleep((next - elapsed).min(Duration::from_millis(50)));
            continue;
        }
        tick += 1;
        let received = sum(|p| p.received.load(Relaxed));
        let qps = (received - last_received) as f64 / (elapsed - last_at).as_secs_f64();
        eprintln!(
            "[{:6.1}s] sent {} received {} qps {:.0} lost {}",
            elapsed.as_secs_f64(),
            sum(|p| p.sent.load(Relaxed)),
            received,
            qps,
            sum(|p| p.lost.load(Relaxed)),
        );
        (last_received, last_at) = (received, elapsed);
    }
}

/// User + system CPU time of the whole process so far, in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: rusage is plain data, filled by the call.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn report(t: &Totals, cpu_s: f64) {
    // The run lasted until sending stopped, or until the last reply if
    // that came later (during the drain); waiting out the drain for
    // queries that never come back is not counted.
    let duration = t.send_stop_ns.max(t.last_reply_ns) as f64 / 1e9;
    let qps = if duration > 0.0 {
        t.received as f64 / duration
    } else {
        0.0
    };
    let pct = |n: u64| {
        if t.sent > 0 {
            100.0 * n as f64 / t.sent as f64
        } else {
            0.0
        }
    };
    let h = &t.latency;
    let q = |x: f64| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(x)
        }
    };
    let (p50, p90, p99, p999, max) = (q(0.5), q(0.9), q(0.99), q(0.999), h.max());
    let rc = |r: Rcode| t.rcodes[r as usize];

    println!();
    println!("Statistics:");
    println!("  Queries sent:        {}", t.sent);
    println!(
        "  Queries completed:   {} ({:.2}%)",
        t.received,
        pct(t.received)
    );
    println!("  Queries lost:        {} ({:.2}%)", t.lost, pct(t.lost));
    println!(
        "  Bad replies:         {} (ID matched, check failed)",
        t.bad
    );
    println!("  Unexpected replies:  {}", t.unexpected);
    println!("  I/O errors:          {}", t.io_errors);
    println!(
        "  Response codes:      NOERROR {}, NXDOMAIN {}, REFUSED {}, SERVFAIL {}, FORMERR {}, other {}",
        rc(Rcode::NoError),
        rc(Rcode::NxDomain),
        rc(Rcode::Refused),
        rc(Rcode::ServFail),
        rc(Rcode::FormErr),
        rc(Rcode::Other)
    );
    println!("  Truncated (TC):      {}", t.truncated);
    println!("  Run time (s):        {duration:.3}");
    println!("  Queries per second:  {qps:.0}");
    println!("  Latency (us):        p50 {p50}, p90 {p90}, p99 {p99}, p99.9 {p999}, max {max}");
    let per_query = if t.sent > 0 {
        format!(
            ", {:.2} us per query sent",
            cpu_s * 1e6 / t.sent.max(1) as f64
        )
    } else {
        String::new()
    };
    println!("  Generator CPU (s):   {cpu_s:.3}{per_query}");
    println!();
    println!(
        "RESULT sent={} received={} lost={} unexpected={} qps={qps:.0} noerror={} nxdomain={} \
         refused={} servfail={} formerr={} other_rcode={} tc={} p50_us={p50} p90_us={p90} \
         p99_us={p99} p999_us={p999} max_us={max} duration_s={duration:.3} bad={} io_errors={} \
         cpu_s={cpu_s:.3}",
        t.sent,
        t.received,
        t.lost,
        t.unexpected,
        rc(Rcode::NoError),
        rc(Rcode::NxDomain),
        rc(Rcode::Refused),
        rc(Rcode::ServFail),
        rc(Rcode::FormErr),
        rc(Rcode::Other),
        t.truncated,
        t.bad,
        t.io_errors,
    );
}
