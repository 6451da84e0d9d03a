//! ringdns: an authoritative DNS server. This file is start-up order only:
//! arguments, config, zones, table, then the engine and the slow path.

use ringdns::{config, engine, publish, server, slowpath, wire};

use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc: zone loading and compiling are allocation-heavy (millions of
/// small names and RRsets); it loads a 1M-name zone markedly faster than
/// glibc malloc (BENCHMARKS.md). The fast path allocates nothing either way.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage:
  ringdns [-conf FILE]                serve (default FILE: ./Corefile)
  ringdns check [-conf FILE]          check the config and every zone it loads
  ringdns check-zone ORIGIN FILE      check one zone file
  ringdns reflect [-conf FILE]        benchmark baseline: echo every UDP datagram, no DNS work
  ringdns -version";

enum Command {
    Serve(PathBuf),
    Check(PathBuf),
    Reflect(PathBuf),
    CheckZone(String, PathBuf),
    Version,
    Help,
}

fn parse_arguments(arguments: &[String]) -> Result<Command, String> {
    let mut conf = PathBuf::from("Corefile");
    let mut rest = arguments.iter().peekable();
    let mut subcommand = "serve";
    if let Some(first) = rest.peek() {
        match first.as_str() {
            "check" | "reflect" => {
                subcommand = if first.as_str() == "check" {
                    "check"
                } else {
                    "reflect"
                };
                rest.next();
            }
            "check-zone" => {
                rest.next();
                let origin = rest.next().ok_or("check-zone needs ORIGIN and FILE")?;
                let file = rest.next().ok_or("check-zone needs ORIGIN and FILE")?;
                if let Some(extra) = rest.next() {
                    return Err(format!("unexpected argument '{extra}'"));
                }
                return Ok(Command::CheckZone(origin.clone(), PathBuf::from(file)));
            }
            _ => {}
        }
    }
    while let Some(argument) = rest.next() {
        let flag = argument.trim_start_matches('-');
        if !argument.starts_with('-') {
            return Err(format!("unexpected argument '{argument}'"));
        }
        match flag.split_once('=') {
            Some(("conf", value)) => conf = PathBuf::from(value),
            _ => match flag {
                "conf" => conf = PathBuf::from(rest.next().ok_or("-conf needs a file name")?),
                "version" => return Ok(Command::Version),
                "h" | "help" => return Ok(Command::Help),
                _ => return Err(format!("unknown option '{argument}'")),
            },
        }
    }
    Ok(match subcommand {
        "check" => Command::Check(conf),
        "reflect" => Command::Reflect(conf),
        _ => Command::Serve(conf),
    })
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match parse_arguments(&arguments) {
        Ok(Command::Serve(conf)) => serve(&conf),
        Ok(Command::Check(conf)) => check(&conf),
        Ok(Command::Reflect(conf)) => reflect(&conf),
        Ok(Command::CheckZone(origin, file)) => check_zone(&origin, &file),
        Ok(Command::Version) => {
            println!("ringdns {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Command::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("ringdns: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Loads and validates the config, printing every problem.
fn load_config(conf: &std::path::Path) -> Option<config::Config> {
    match config::load(conf) {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("ringdns: warning: {warning}");
            }
            Some(config)
        }
        Err(errors) => {
            for error in errors {
                eprintln!("ringdns: error: {error}");
            }
            None
        }
    }
}

/// Prints each zone's problems; returns how many zones failed. `serving`
/// says what a failed zone means for a running server.
fn report_zones(zones: &[server::LoadedZone], serving: bool) -> usize {
    let mut failed = 0;
    for loaded in zones {
        for warning in &loaded.warnings {
            eprintln!("ringdns: warning: {warning}");
        }
        if let Err(problems) = &loaded.zone {
            failed += 1;
            for problem in problems {
                eprintln!("ringdns: error: {problem}");
            }
            if serving {
                eprintln!(
                    "ringdns: zone {} not loaded: its names answer SERVFAIL",
                    loaded.source.origin_text
                );
            } else {
                eprintln!("ringdns: zone {} has errors", loaded.source.origin_text);
            }
        }
    }
    failed
}

fn check(conf: &std::path::Path) -> ExitCode {
    let Some(config) = load_config(conf) else {
        return ExitCode::FAILURE;
    };
    let zones = server::load_zones(&server::zone_sources(&config));
    if report_zones(&zones, false) > 0 {
        return ExitCode::FAILURE;
    }
    for loaded in &zones {
        if let Ok(zone) = &loaded.zone {
            println!(
                "{}: serial {}, {} records: OK",
                loaded.source.origin_text,
                zone.serial(),
                zone.record_count()
            );
        }
    }
    ExitCode::SUCCESS
}

fn check_zone(origin: &str, file: &std::path::Path) -> ExitCode {
    let Some(origin_wire) = wire::name::from_text(origin) else {
        eprintln!("ringdns: error: '{origin}' is not a domain name");
        return ExitCode::FAILURE;
    };
    let source = server::ZoneSource {
        origin_text: wire::name::to_text(&origin_wire),
        origin: origin_wire,
        path: file.to_path_buf(),
    };
    let zones = server::load_zones(&[source]);
    if report_zones(&zones, false) > 0 {
        return ExitCode::FAILURE;
    }
    check_report(&zones)
}

fn check_report(zones: &[server::LoadedZone]) -> ExitCode {
    for loaded in zones {
        if let Ok(zone) = &loaded.zone {
            println!(
                "{}: serial {}, {} records: OK",
                loaded.source.origin_text,
                zone.serial(),
                zone.record_count()
            );
        }
    }
    ExitCode::SUCCESS
}

/// Engine options from the config's `engine` directive, and the backend
/// chosen by probing the kernel.
fn engine_setup(
    config: &config::Config,
) -> Result<(engine::EngineOptions, engine::Backend), String> {
    let mut options = engine::EngineOptions::defaults();
    let engine_config = &config.engine;
    if let Some(workers) = engine_config.workers {
        options.workers = workers;
    }
    if let Some(cpus) = &engine_config.cpus {
        options.cpus = cpus.clone();
    }
    if let Some(batch) = engine_config.batch {
        options.batch = batch;
    }
    options.rcvbuf = engine_config.rcvbuf;
    options.sndbuf = engine_config.sndbuf;
    options.backend = match engine_config.backend {
        config::Backend::Auto => engine::BackendChoice::Auto,
        config::Backend::IoUring => engine::BackendChoice::IoUring,
        config::Backend::Recvmmsg => engine::BackendChoice::Recvmmsg,
    };
    if let Some(entries) = engine_config.ring_entries {
        options.ring.entries = entries;
    }
    let (backend, why_not_io_uring) =
        engine::choose_backend(options.backend).map_err(|error| error.to_string())?;
    if let Some(reason) = why_not_io_uring {
        eprintln!("ringdns: io_uring unavailable ({reason}); using recvmmsg");
    }
    eprintln!(
        "ringdns: engine: backend {backend}, {} worker(s)",
        options.workers
    );
    Ok((options, backend))
}

fn serve(conf: &std::path::Path) -> ExitCode {
    exit_code(serve_zones(conf))
}

fn reflect(conf: &std::path::Path) -> ExitCode {
    exit_code(reflect_only(conf))
}

/// Prints a start-up error (if any) and turns it into the exit status.
fn exit_code(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if !error.is_empty() {
                eprintln!("ringdns: error: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Config, zones, table, then the workers and the slow path; returns only
/// if start-up fails or every worker stops.
fn serve_zones(conf: &std::path::Path) -> Result<(), String> {
    // Every thread started from here on inherits this mask, so only the
    // main thread's sigwait sees SIGTERM, SIGINT and SIGHUP.
    let signals = block_shutdown_signals();
    // load_config prints its own errors.
    let config = load_config(conf).ok_or_else(String::new)?;
    let zones = server::load_zones(&server::zone_sources(&config));
    let failed = report_zones(&zones, true);
    let started = std::time::Instant::now();
    let table = server::compile_zones(&zones);
    eprintln!(
        "ringdns: compiled {} zone(s) ({} failed), {} names, in {} ms",
        zones.len(),
        failed,
        table.name_count(),
        started.elapsed().as_millis()
    );
    let parts = table.memory_bytes();
    let mib = |bytes: usize| bytes as f64 / f64::from(1 << 20);
    let total: usize = parts.iter().map(|(_, bytes)| bytes).sum();
    let detail: Vec<String> = parts
        .iter()
        .map(|(part, bytes)| format!("{part} {:.1}", mib(*bytes)))
        .collect();
    eprintln!(
        "ringdns: answer table {:.1} MiB ({} MiB)",
        mib(total),
        detail.join(", ")
    );
    // What a reload compares against: each zone's serial and data digest.
    let mut served = served_versions(&zones);
    // What /metrics reports of each zone, then the parsed zones can go:
    // the table holds everything the answers need.
    let zone_summaries: Vec<(String, u32, usize, bool)> = zones
        .iter()
        .map(|loaded| match &loaded.zone {
            Ok(zone) => (
                loaded.source.origin_text.clone(),
                zone.serial(),
                zone.record_count(),
                true,
            ),
            Err(_) => (loaded.source.origin_text.clone(), 0, 0, false),
        })
        .collect();
    drop(zones);
    // mimalloc returns freed memory to the OS lazily, on later allocations,
    // which the serving threads never make: hand it back now.
    // SAFETY: mi_collect only walks mimalloc's own heap structures.
    unsafe { libmimalloc_sys::mi_collect(true) };
    let published = publish::Published::new(table);
    // `log` in any block logs every query (all blocks share the workers),
    // with the classes of the first block that has it.
    let log_classes = config.servers.iter().find(|block| block.log).map(|block| {
        let classes = block.log_classes;
        ringdns::querylog::LogClasses {
            success: classes.success,
            denial: classes.denial,
            error: classes.error,
        }
    });
    let log_queues = std::sync::Mutex::new(Vec::new());
    let new_log_queue = || {
        let queue = log_classes
            .map(|classes| std::sync::Arc::new(ringdns::querylog::LogQueue::new(classes)));
        if let Some(queue) = &queue
            && let Ok(mut queues) = log_queues.lock()
        {
            queues.push(std::sync::Arc::clone(queue));
        }
        queue
    };
    // TCP and HTTP first: once UDP answers, clients (and the tests'
    // readiness probes) may expect TCP and the endpoints to answer too.
    let endpoints: Vec<(slowpath::http::Endpoint, std::net::SocketAddr)> = [
        (slowpath::http::Endpoint::Metrics, config.http.prometheus),
        (slowpath::http::Endpoint::Health, config.http.health),
        (slowpath::http::Endpoint::Ready, config.http.ready),
    ]
    .into_iter()
    .filter_map(|(endpoint, address)| Some((endpoint, address?)))
    .collect();
    let http_bound = slowpath::http::bind(&endpoints).map_err(|error| error.to_string())?;
    let listen = server::listen_addresses(&config);
    let tcp_counters = std::sync::Arc::new(ringdns::metrics::QueryCounters::default());
    slowpath::tcp::start(
        &listen,
        &published,
        &slowpath::tcp::TcpOptions::default(),
        std::sync::Arc::clone(&tcp_counters),
        new_log_queue(),
    )
    .map_err(|error| error.to_string())?;
    let (engine, listen) = start_engine(&config, |counters| {
        engine::DnsHandler::new(published.reader(), counters, new_log_queue())
    })?;
    let log_queues = log_queues.into_inner().unwrap_or_default();
    if !log_queues.is_empty() {
        ringdns::querylog::start_writer(log_queues).map_err(|error| error.to_string())?;
    }
    let mut query_counters = engine.query_counters.clone();
    query_counters.push(tcp_counters);
    let state = slowpath::http::HttpState {
        server_label: format!(
            "dns://:{}",
            listen.first().map_or(53, |address| address.port())
        ),
        workers: engine.counters.clone(),
        query_counters,
        zones: std::sync::Mutex::new(zone_summaries),
        reload_failed: std::sync::atomic::AtomicU64::new(0),
        published: published.clone(),
        ready: std::sync::atomic::AtomicBool::new(failed == 0),
        healthy: std::sync::atomic::AtomicBool::new(true),
    };
    let state = std::sync::Arc::new(state);
    slowpath::http::serve(http_bound, std::sync::Arc::clone(&state))
        .map_err(|error| error.to_string())?;
    let addresses: Vec<String> = listen.iter().map(ToString::to_string).collect();
    eprintln!("ringdns: serving on {} (UDP and TCP)", addresses.join(", "));
    notify_systemd("READY=1");
    start_reload_watch(&config);
    loop {
        match wait_for_signal(&signals) {
            libc::SIGHUP => reload(&config, &published, &state, &mut served),
            signal => {
                eprintln!("ringdns: signal {signal}: shutting down");
                notify_systemd("STOPPING=1");
                if let Some(lameduck) = config.http.lameduck {
                    // Report unhealthy while still answering, so balancers drain.
                    state
                        .healthy
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    eprintln!("ringdns: lame duck for {} ms", lameduck.as_millis());
                    std::thread::sleep(lameduck);
                }
                return Ok(());
            }
        }
    }
}

/// CoreDNS's `file … { reload DURATION }` (default one minute, 0 off):
/// a thread checks the zone files' modification times at the shortest
/// interval and, when one changed, sends this process SIGHUP, so every
/// reload takes the same path as an operator's.
fn start_reload_watch(config: &config::Config) {
    const RELOAD_DEFAULT: std::time::Duration = std::time::Duration::from_secs(60);
    let files: Vec<(std::path::PathBuf, std::time::Duration)> = config
        .servers
        .iter()
        .flat_map(|block| &block.files)
        .map(|file| (file.path.clone(), file.reload.unwrap_or(RELOAD_DEFAULT)))
        .filter(|(_, interval)| !interval.is_zero())
        .collect();
    let Some(interval) = files.iter().map(|(_, interval)| *interval).min() else {
        return;
    };
    let modified = |path: &std::path::Path| {
        std::fs::metadata(path)
            .and_then(|metadata| metadata.modified())
            .ok()
    };
    let mut seen: Vec<_> = files.iter().map(|(path, _)| modified(path)).collect();
    let spawned = std::thread::Builder::new()
        .name("reload-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                let now: Vec<_> = files.iter().map(|(path, _)| modified(path)).collect();
                if now != seen {
                    seen = now;
                    // SAFETY: signalling our own process; the main thread waits for it.
                    unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
                }
            }
        });
    if let Err(error) = spawned {
        eprintln!("ringdns: warning: cannot watch zone files for reload: {error}");
    }
}

/// Each zone's served serial and data digest, `None` for a zone that
/// failed to load.
type ServedVersions = Vec<Option<(u32, u64)>>;

fn served_versions(zones: &[server::LoadedZone]) -> ServedVersions {
    zones
        .iter()
        .map(|loaded| {
            loaded
                .zone
                .as_ref()
                .ok()
                .map(|zone| (zone.serial(), zone.digest()))
        })
        .collect()
}

/// SIGHUP: loads every zone file again, off the fast path, and publishes
/// the new table in one atomic swap. All or nothing: if a zone file has an
/// error, or a zone's data changed without a newer serial (RFC 1982),
/// nothing is published and the served zones stay as they were, as Knot
/// and CoreDNS keep a zone whose serial did not move.
fn reload(
    config: &config::Config,
    published: &publish::Published,
    state: &slowpath::http::HttpState,
    served: &mut ServedVersions,
) {
    eprintln!("ringdns: SIGHUP: reloading zones");
    let zones = server::load_zones(&server::zone_sources(config));
    let refuse = |reason: &str| {
        eprintln!("ringdns: reload refused: {reason}; still serving the previous zones");
        state
            .reload_failed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    if report_zones(&zones, false) > 0 {
        return refuse("a zone has errors");
    }
    let fresh = served_versions(&zones);
    if fresh == *served {
        eprintln!("ringdns: reload: no zone changed");
        return;
    }
    for ((loaded, new), old) in zones.iter().zip(&fresh).zip(served.iter()) {
        if let (Some((new_serial, new_digest)), Some((old_serial, old_digest))) = (new, old)
            && new_digest != old_digest
            && !ringdns::zone::serial_is_newer(*new_serial, *old_serial)
        {
            let zone = &loaded.source.origin_text;
            return refuse(&format!(
                "zone {zone} changed but its serial {new_serial} is not newer than {old_serial}"
            ));
        }
    }
    let table = server::compile_zones(&zones);
    let summaries: Vec<(String, u32, usize, bool)> = zones
        .iter()
        .filter_map(|loaded| {
            let zone = loaded.zone.as_ref().ok()?;
            Some((
                loaded.source.origin_text.clone(),
                zone.serial(),
                zone.record_count(),
                true,
            ))
        })
        .collect();
    drop(zones);
    published.publish(table);
    if let Ok(mut zones) = state.zones.lock() {
        *zones = summaries;
    }
    state
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);
    *served = fresh;
    // SAFETY: mi_collect only walks mimalloc's own heap structures.
    unsafe { libmimalloc_sys::mi_collect(true) };
    eprintln!("ringdns: reloaded {} zone(s)", served.len());
}

/// Blocks SIGTERM, SIGINT and SIGHUP in this thread (and so in every thread
/// it starts); returns the set for `wait_for_signal`.
fn block_shutdown_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset and sigaddset initialise a local set;
    // pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> i32 {
    let mut signal = 0;
    // SAFETY: `set` is initialised; sigwait writes one int.
    while unsafe { libc::sigwait(set, &mut signal) } != 0 {}
    signal
}

/// Tells systemd (`Type=notify`) about our state, when it asked to know.
fn notify_systemd(message: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let sent = match path.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|address| socket.send_to_addr(message.as_bytes(), &address))
        }
        None => socket.send_to(message.as_bytes(), &path),
    };
    if let Err(error) = sent {
        eprintln!("ringdns: warning: cannot notify systemd at {path}: {error}");
    }
}

/// The bare reflector: the same sockets and engine as `serve`, but each
/// datagram goes back with QR and AA set and no DNS work. A benchmark
/// baseline (see loadtest/), not a server.
fn reflect_only(conf: &std::path::Path) -> Result<(), String> {
    let config = load_config(conf).ok_or_else(String::new)?;
    let (engine, listen) = start_engine(&config, |_| engine::Reflector)?;
    let addresses: Vec<String> = listen.iter().map(ToString::to_string).collect();
    eprintln!("ringdns: reflecting on {} (UDP only)", addresses.join(", "));
    for thread in engine.threads {
        let _ = thread.join();
    }
    Ok(())
}

/// Opens the UDP sockets of every listen address and starts the workers.
fn start_engine<H: engine::PacketHandler>(
    config: &config::Config,
    make_handler: impl Fn(std::sync::Arc<ringdns::metrics::QueryCounters>) -> H,
) -> Result<(engine::Engine, Vec<std::net::SocketAddr>), String> {
    let (options, backend) = engine_setup(config)?;
    let listen = server::listen_addresses(config);
    let engine = engine::start(&listen, &options, backend, make_handler)
        .map_err(|error| error.to_string())?;
    Ok((engine, listen))
}
