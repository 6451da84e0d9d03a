//! ringdns: an authoritative DNS server. This file is start-up order only:
//! arguments, config, zones, table, then the engine and the slow path.

use ringdns::{config, engine, publish, server, service, slowpath, wire};

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
  ringdns check-zone [--dnssec [--time YYYYMMDDHHMMSS]] ORIGIN FILE
                                      check one zone file; --dnssec also verifies
                                      its signatures (at --time, default now) and
                                      its NSEC/NSEC3 chain
  ringdns reflect [-conf FILE]        benchmark baseline: echo every UDP datagram, no DNS work
  ringdns -version";

/// `check-zone --dnssec`: verify signatures at `time_s` (seconds since
/// 1970; `None`: now).
#[derive(Clone, Copy, Debug)]
struct DnssecCheck {
    time_s: Option<u64>,
}

enum Command {
    Serve(PathBuf),
    Check(PathBuf),
    Reflect(PathBuf),
    CheckZone(String, PathBuf, Option<DnssecCheck>),
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
                return parse_check_zone(rest);
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

/// `check-zone [--dnssec [--time YYYYMMDDHHMMSS]] ORIGIN FILE`.
fn parse_check_zone<'a>(arguments: impl Iterator<Item = &'a String>) -> Result<Command, String> {
    let mut arguments = arguments.peekable();
    let mut positional = Vec::new();
    let mut dnssec = false;
    let mut time_s = None;
    while let Some(argument) = arguments.next() {
        let flag = argument.trim_start_matches('-');
        if !argument.starts_with('-') || argument == "-" {
            positional.push(argument.clone());
            continue;
        }
        let (flag, value) = match flag.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_string())),
            None => (flag, None),
        };
        match flag {
            "dnssec" if value.is_none() => dnssec = true,
            "time" => {
                let value = match value {
                    Some(value) => value,
                    None => arguments
                        .next()
                        .ok_or("--time needs YYYYMMDDHHMMSS")?
                        .clone(),
                };
                let parsed = ringdns::zone::parse_time(&value)
                    .ok_or(format!("--time '{value}' is not YYYYMMDDHHMMSS (UTC)"))?;
                time_s = Some(parsed);
            }
            _ => return Err(format!("unknown option '{argument}'")),
        }
    }
    if time_s.is_some() && !dnssec {
        return Err("--time needs --dnssec".to_string());
    }
    let [origin, file] = <[String; 2]>::try_from(positional).map_err(|positional| {
        if positional.len() < 2 {
            "check-zone needs ORIGIN and FILE".to_string()
        } else {
            format!("unexpected argument '{}'", positional[2])
        }
    })?;
    Ok(Command::CheckZone(
        origin,
        PathBuf::from(file),
        dnssec.then_some(DnssecCheck { time_s }),
    ))
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match parse_arguments(&arguments) {
        Ok(Command::Serve(conf)) => serve(&conf),
        Ok(Command::Check(conf)) => check(&conf),
        Ok(Command::Reflect(conf)) => reflect(&conf),
        Ok(Command::CheckZone(origin, file, dnssec)) => check_zone(&origin, &file, dnssec),
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

fn check(conf: &std::path::Path) -> ExitCode {
    let Some(config) = load_config(conf) else {
        return ExitCode::FAILURE;
    };
    let zones = server::load_zones(&server::zone_sources(&config));
    if server::report_zones(&zones, false) > 0 {
        return ExitCode::FAILURE;
    }
    for (origin_text, _, secondary) in server::secondary_sources(&config) {
        let primaries: Vec<String> = secondary
            .from
            .iter()
            .map(|(address, _)| address.to_string())
            .collect();
        println!("{origin_text}: secondary of {}: OK", primaries.join(", "));
    }
    check_report(&zones)
}

fn check_zone(origin: &str, file: &std::path::Path, dnssec: Option<DnssecCheck>) -> ExitCode {
    let Some(origin_wire) = wire::name::from_text(origin) else {
        eprintln!("ringdns: error: '{origin}' is not a domain name");
        return ExitCode::FAILURE;
    };
    let source = server::ZoneSource {
        origin_text: wire::name::to_text(&origin_wire),
        origin: origin_wire,
        path: file.to_path_buf(),
        serve_unchanged_serial: false,
    };
    // As `server::load_zones`, keeping the record lines for --dnssec.
    let (loaded, lines) = match ringdns::zone::load_file(&source.origin, &source.path) {
        Ok(loaded) => (
            server::LoadedZone {
                source,
                files: loaded.files,
                zone: Ok(loaded.zone),
                warnings: loaded.warnings,
            },
            loaded.lines,
        ),
        Err(problems) => (
            server::LoadedZone {
                files: vec![source.path.clone()],
                source,
                zone: Err(problems),
                warnings: Vec::new(),
            },
            ringdns::zone::RecordLines::default(),
        ),
    };
    let zones = [loaded];
    if server::report_zones(&zones, false) > 0 {
        return ExitCode::FAILURE;
    }
    let status = check_report(&zones);
    let (Some(dnssec), [server::LoadedZone { zone: Ok(zone), .. }]) = (dnssec, &zones) else {
        return status;
    };
    let now_s = dnssec.time_s.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs())
    });
    let report = ringdns::zone::check_dnssec(zone, &lines, now_s);
    for warning in &report.warnings {
        eprintln!("ringdns: warning: {warning}");
    }
    for line in report.listing(DNSSEC_LISTED_PER_KIND_MAX) {
        eprintln!("ringdns: error: {line}");
    }
    println!("{}", report.summary());
    if report.ok() {
        status
    } else {
        ExitCode::FAILURE
    }
}

/// Most DNSSEC problems of one kind listed one by one (an expired zone has
/// thousands); the rest are counted.
const DNSSEC_LISTED_PER_KIND_MAX: usize = 10;

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

/// Config, zones, table, then the slow path and the workers; then waits
/// for signals. Returns when start-up fails or on SIGTERM/SIGINT.
fn serve_zones(conf: &std::path::Path) -> Result<(), String> {
    // Every thread started from here on inherits this mask, so only the
    // main thread's sigwait sees SIGTERM, SIGINT and SIGHUP.
    let signals = service::block_shutdown_signals();
    // load_config prints its own errors.
    let mut config = load_config(conf).ok_or_else(String::new)?;
    let storage = slowpath::zones::storage_directory(&config, conf);
    let (served_zones, failed, zone_files) = server::served_zones(&config, &storage);
    let published = publish::Published::new(ringdns::compile::AnswerTable::default());
    let store = std::sync::Arc::new(slowpath::zones::ZoneStore::new(
        served_zones,
        published.clone(),
        config.nsid.clone(),
        server::tsig_keys(&config),
    ));
    let started = std::time::Instant::now();
    store.publish(&store.lock());
    let mut reader = published.reader();
    let table = reader.load();
    eprintln!(
        "ringdns: compiled {} zone(s) ({} failed), {} names, in {} ms",
        store.lock().len(),
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
    // CoreDNS's `zone` label: the server block's zone a query falls in.
    let block_zones: Vec<String> = config
        .servers
        .iter()
        .flat_map(|block| block.keys.iter().map(|key| key.zone.clone()))
        .collect();
    let zone_labels = std::sync::Arc::new(ringdns::metrics::ZoneLabels::new(&block_zones));
    // `errors` in any block: SERVFAIL answers reported, repeats summarised.
    let errors_wanted = config.servers.iter().any(|block| block.errors);
    let error_queues = std::sync::Mutex::new(Vec::new());
    let new_error_queue = || {
        if !errors_wanted {
            return None;
        }
        let queue = std::sync::Arc::new(ringdns::querylog::LogQueue::new(
            ringdns::querylog::LogClasses::ALL,
        ));
        if let Ok(mut queues) = error_queues.lock() {
            queues.push(std::sync::Arc::clone(&queue));
        }
        Some(queue)
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
    let cookies = match &config.cookies {
        Some(cookies) => Some(
            ringdns::cookie::start(cookies)
                .map_err(|error| format!("cookies: cannot make a secret: {error}"))?,
        ),
        None => None,
    };
    let tcp_counters = std::sync::Arc::new(ringdns::metrics::QueryCounters::default());
    slowpath::tcp::start(
        &listen,
        &published,
        std::sync::Arc::clone(&store),
        &slowpath::tcp::TcpOptions {
            cookies: cookies.clone(),
            zone_labels: std::sync::Arc::clone(&zone_labels),
            ..slowpath::tcp::TcpOptions::from_config(&config.tcp)
        },
        std::sync::Arc::clone(&tcp_counters),
        new_log_queue(),
    )
    .map_err(|error| error.to_string())?;
    let (engine, listen) = start_engine(&config, |counters| {
        engine::DnsHandler::new(
            published.reader(),
            counters,
            new_log_queue(),
            config.rrl.clone().map(ringdns::rrl::RateLimiter::new),
            Some(std::sync::Arc::clone(&store)),
        )
        .with_cookies(cookies.clone())
        .with_errors(new_error_queue())
        .with_zone_labels(std::sync::Arc::clone(&zone_labels))
    })?;
    let error_queues = error_queues.into_inner().unwrap_or_default();
    if !error_queues.is_empty() {
        ringdns::querylog::start_error_writer(error_queues).map_err(|error| error.to_string())?;
    }
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
        store: std::sync::Arc::clone(&store),
        published: published.clone(),
        zone_labels: zone_labels.names(),
        healthy: std::sync::atomic::AtomicBool::new(true),
    };
    let state = std::sync::Arc::new(state);
    slowpath::http::serve(http_bound, std::sync::Arc::clone(&state))
        .map_err(|error| error.to_string())?;
    let addresses: Vec<String> = listen.iter().map(ToString::to_string).collect();
    eprintln!("ringdns: serving on {} (UDP and TCP)", addresses.join(", "));
    service::notify_systemd("READY=1");
    slowpath::reload::start_watch(&config, zone_files);
    slowpath::secondary::start(&store, &storage);
    slowpath::notify::send_all(store.startup_notifies(), &store);
    if let Some(interval) = config.reload {
        slowpath::reload::start_config_watch(conf, interval);
    }
    loop {
        match service::wait_for_signal(&signals) {
            libc::SIGHUP => slowpath::reload::reload(&config, &store),
            libc::SIGUSR2 => slowpath::reload::reload_config(conf, &mut config, &store, &storage),
            signal => {
                eprintln!("ringdns: signal {signal}: shutting down");
                // Unhealthy first, so anyone told we are stopping sees it.
                state
                    .healthy
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                service::notify_systemd("STOPPING=1");
                if let Some(lameduck) = config.http.lameduck {
                    // Report unhealthy while still answering, so balancers drain.
                    eprintln!("ringdns: lame duck for {} ms", lameduck.as_millis());
                    std::thread::sleep(lameduck);
                }
                finish_transfers(&store);
                return Ok(());
            }
        }
    }
}

/// On SIGTERM: refuses new transfers and waits (up to 25 s, inside
/// systemd's 30 s stop timeout) for those running, so a secondary is not
/// cut off in the middle of a zone and a secondary's own copy is written
/// whole.
fn finish_transfers(store: &slowpath::zones::ZoneStore) {
    use std::sync::atomic::Ordering;
    store.stopping.store(true, Ordering::Relaxed);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(25);
    let mut said = false;
    loop {
        let running = store.transfers_running.load(Ordering::Relaxed);
        if running == 0 {
            return;
        }
        if std::time::Instant::now() >= deadline {
            eprintln!("ringdns: {running} transfer(s) still running; exiting anyway");
            return;
        }
        if !said {
            eprintln!("ringdns: waiting for {running} transfer(s) to finish");
            said = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
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
