//! Helpers shared by the ringdns end-to-end tests.
//!
//! Everything here is about running real server processes on 127.0.0.1 and
//! talking DNS to them over real sockets:
//!
//! * [`free_port`] and [`TempDir`] give each test its own ports and files;
//! * [`ServerProcess`] owns a child process and kills it on drop, so servers
//!   stop on every exit path of a test, panics included;
//! * [`start_ringdns`], [`start_knot`] and [`start_nsd`] launch the three
//!   servers the tests compare and wait until they answer;
//! * [`build_query`], [`exchange_udp`], [`exchange_tcp`], [`query_udp`],
//!   [`query_tcp`] and [`send_udp_raw`] send queries;
//! * [`parse_reply`] turns a reply into a [`Reply`] that compares records as
//!   sets, independent of record order, name case and compression;
//! * [`compare`] sends one query list to Knot, NSD and ringdns and checks
//!   ringdns on every field where the two references agree (the
//!   differential tests).
//!
//! Each integration test is its own crate and uses only part of this module,
//! hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod compare;
pub mod signing;

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashSet};
use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use domain::base::iana::{Class, Rtype};
use domain::base::message::RecordSection;
use domain::base::name::{ParsedName, ToName};
use domain::base::rdata::ComposeRecordData;
use domain::base::wire::ParseError;
use domain::base::{Message, MessageBuilder, Name};
use domain::rdata::AllRecordData;

/// How long one UDP try or one TCP exchange waits for the reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// How many times [`exchange_udp`] sends a query before giving up.
pub const UDP_TRIES: usize = 3;
/// How long a freshly started server gets to answer its first query.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Ports and temporary directories
// ---------------------------------------------------------------------------

/// Returns a port that is currently free on every address (0.0.0.0) for
/// both UDP and TCP: some tests listen on the wildcard, which a socket on
/// any address holding the number (say, a client of another test bound to
/// 127.1.x.y) would block.
///
/// The kernel picks a free UDP port, and we keep it only if TCP can bind the
/// same number too (DNS servers listen on both). Ports already handed out by
/// this process are never returned again, so two servers started by parallel
/// tests cannot be given the same port even if the first one has not bound it
/// yet. The usual small race with unrelated processes remains.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    for _ in 0..200 {
        let Ok(udp) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) else {
            continue;
        };
        let port = match udp.local_addr() {
            Ok(addr) => addr.port(),
            Err(_) => continue,
        };
        // Both sockets are held at the same time: the port is free for both
        // protocols right now.
        let Ok(_tcp) = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)) else {
            continue;
        };
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed_out.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
    panic!("free_port: found no port free for both UDP and TCP on 0.0.0.0");
}

/// A fresh directory under the system temp dir, removed with its contents on
/// drop. Set `RINGDNS_KEEP_TMP=1` to keep it for post-mortem inspection (its
/// path is printed).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/ringdns-<prefix>-<pid>-<n>-<nanos>`.
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        for _ in 0..100 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = base.join(format!(
                "ringdns-{prefix}-{}-{}-{nanos}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            // create_dir (not create_dir_all) fails if the path exists, so we
            // never share a directory with anybody else.
            match fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("TempDir: cannot create {}: {e}", path.display()),
            }
        }
        panic!("TempDir: no unique directory name under {}", base.display());
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Writes `contents` to `rel` inside the directory and returns the path.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if env_flag("RINGDNS_KEEP_TMP") {
            eprintln!("keeping temp dir {}", self.path.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// True when the environment variable is set to something other than
/// "", "0", "false" or "no".
pub fn env_flag(name: &str) -> bool {
    match std::env::var(name) {
        Ok(v) => !matches!(v.trim(), "" | "0" | "false" | "no"),
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------
// Server processes
// ---------------------------------------------------------------------------

/// A running server process. Dropping it stops the process (by its PID:
/// SIGTERM, then SIGKILL if it has not exited after a grace period) and reaps
/// it, so every test path, including a panic, leaves no server behind.
///
/// stdout and stderr go to `<dir>/<name>.stdout` and `<dir>/<name>.stderr`;
/// [`ServerProcess::output`] reads them back for error messages.
pub struct ServerProcess {
    name: String,
    child: Child,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    /// Where the server answers DNS (the address used for readiness).
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `program args...` with the working directory `dir` and output
    /// captured in `dir`. Does not wait for readiness; see
    /// [`ServerProcess::wait_ready`].
    pub fn spawn<I, S>(
        name: &str,
        program: impl AsRef<OsStr>,
        args: I,
        dir: &Path,
        addr: SocketAddr,
    ) -> ServerProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let program = program.as_ref();
        let stdout_path = dir.join(format!("{name}.stdout"));
        let stderr_path = dir.join(format!("{name}.stderr"));
        let stdout = File::create(&stdout_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stdout_path.display()));
        let stderr = File::create(&stderr_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_path.display()));
        let child = Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({program:?}): {e}"));
        ServerProcess {
            name: name.to_string(),
            child,
            stdout_path,
            stderr_path,
            addr,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The captured stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The captured stdout and stderr so far, labelled, for error messages.
    pub fn output(&self) -> String {
        let stdout = fs::read_to_string(&self.stdout_path).unwrap_or_default();
        format!(
            "--- {name} stderr ---\n{}\n--- {name} stdout ---\n{stdout}",
            self.stderr(),
            name = self.name
        )
    }

    /// `Some(status)` if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for the process to exit on its own (for tests
    /// that expect a server to refuse to start).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls `zone`'s SOA over UDP until the server answers, for up to
    /// [`READY_TIMEOUT`]. With `require_loaded`, only a NOERROR reply with
    /// the AA bit counts (Knot opens its sockets before it has loaded its
    /// zones and answers SERVFAIL meanwhile); otherwise any reply does.
    /// Panics with the captured output if the server exits or never answers.
    pub fn wait_ready(&mut self, zone: &str, require_loaded: bool) {
        let query = build_query(zone, Rtype::SOA, &QueryOpts::default());
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::from("no reply");
        while Instant::now() < deadline {
            if let Some(status) = self.try_wait() {
                panic!(
                    "{} exited during startup ({status}) before answering on {}\n{}",
                    self.name,
                    self.addr,
                    self.output()
                );
            }
            if let Some(bytes) = exchange_udp_once(self.addr, &query, Duration::from_millis(200)) {
                if !require_loaded {
                    return;
                }
                match parse_reply(&bytes) {
                    Ok(r) if r.rcode == 0 && r.flags.aa => return,
                    Ok(r) => last = format!("not loaded yet: {}", r.summary()),
                    Err(e) => last = format!("unparsable reply: {e}"),
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} did not answer SOA {zone} on {} within {READY_TIMEOUT:?} ({last})\n{}",
            self.name,
            self.addr,
            self.output()
        );
    }

    /// Stops the process now (same as dropping it).
    pub fn stop(&mut self) {
        if self.try_wait().is_some() {
            return;
        }
        // SIGTERM first: NSD forwards it to its worker children, which a
        // SIGKILL of the main process would leave orphaned.
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on the PID of our own unreaped child, which cannot
        // have been recycled for another process before we wait() for it.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        if self.wait_exit(Duration::from_secs(3)).is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Looks for an executable in `$PATH` and the sbin directories (which are
/// often missing from a normal user's PATH, and that is where knotd and nsd
/// live).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in ["/usr/sbin", "/usr/local/sbin", "/sbin"] {
        dirs.push(PathBuf::from(extra));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// Finds a peer server binary. When it is missing: under CI (env `CI` set)
/// panics, since a silently skipped comparison would hide regressions;
/// otherwise prints a skip notice and returns `None` so the test can return.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    if let Some(path) = find_tool(name) {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} not found: tests/run installs every tool the tests need");
    }
    eprintln!("SKIP: {name} not found (tests/run installs every tool the tests need)");
    None
}

/// Path of the ringdns binary built by cargo for this test run.
pub fn ringdns_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ringdns")
}

/// A Corefile serving one zone from `zone_file` on 127.0.0.1:`port`.
pub fn corefile_for(zone: &str, port: u16, zone_file: &Path) -> String {
    let zone = zone.trim_end_matches('.');
    let zone = if zone.is_empty() { "." } else { zone };
    format!(
        "{zone}:{port} {{\n    bind 127.0.0.1\n    file {}\n}}\n",
        zone_file.display()
    )
}

/// Writes `corefile_text` to `<dir>/Corefile` and starts ringdns on it
/// without waiting (for tests that expect startup to fail, or that wait in
/// their own way). `addr` is only recorded for later queries.
pub fn spawn_ringdns(corefile_text: &str, dir: &Path, addr: SocketAddr) -> ServerProcess {
    let conf = dir.join("Corefile");
    fs::write(&conf, corefile_text)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", conf.display()));
    ServerProcess::spawn(
        "ringdns",
        ringdns_bin(),
        [OsStr::new("-conf"), conf.as_os_str()],
        dir,
        addr,
    )
}

/// Starts ringdns with `corefile_text` (written to `<dir>/Corefile`) and
/// waits until it sends any reply to an SOA query for the first zone of the
/// first server block, on that block's port and first `bind` address
/// (127.0.0.1 without one); see [`corefile_ready_target`]. The returned
/// process's `addr` is that address.
pub fn start_ringdns(corefile_text: &str, dir: &Path) -> ServerProcess {
    let (addr, zone) = corefile_ready_target(corefile_text);
    start_ringdns_at(corefile_text, dir, addr, &zone)
}

/// Like [`start_ringdns`], with the readiness address and zone given
/// explicitly (for Corefiles whose first block is not the one to probe).
pub fn start_ringdns_at(
    corefile_text: &str,
    dir: &Path,
    addr: SocketAddr,
    zone: &str,
) -> ServerProcess {
    let mut server = spawn_ringdns(corefile_text, dir, addr);
    server.wait_ready(zone, false);
    server
}

/// Where to probe a Corefile's first server block: (address, zone).
///
/// A deliberately small reading of the syntax, enough for test Corefiles:
/// the first key of the first block header (`zone:port`, optionally with a
/// `dns://` scheme; port 53 if absent) and the first address of the first
/// `bind` line before the block's closing brace.
pub fn corefile_ready_target(corefile_text: &str) -> (SocketAddr, String) {
    let mut lines = corefile_text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty());
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("empty Corefile:\n{corefile_text}"));
    let key = header
        .split(|c: char| c.is_whitespace() || c == ',' || c == '{')
        .find(|t| !t.is_empty())
        .unwrap_or_else(|| panic!("no server key in Corefile header {header:?}"));
    let key = key.strip_prefix("dns://").unwrap_or(key);
    let (zone, port) = match key.rsplit_once(':') {
        Some((zone, port)) => (
            zone,
            port.parse::<u16>()
                .unwrap_or_else(|e| panic!("bad port in Corefile key {key:?}: {e}")),
        ),
        None => (key, 53),
    };
    let ip = lines
        .take_while(|l| !l.starts_with('}'))
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("bind"))
                .then(|| words.next())
                .flatten()
        })
        .map(|a| {
            a.parse::<std::net::IpAddr>()
                .unwrap_or_else(|e| panic!("bad bind address {a:?}: {e}"))
        })
        .unwrap_or(Ipv4Addr::LOCALHOST.into());
    (SocketAddr::new(ip, port), absolute(zone))
}

/// Normalises a zone name to the absolute form with a trailing dot.
fn absolute(zone: &str) -> String {
    if zone.is_empty() || zone == "." {
        ".".to_string()
    } else if zone.ends_with('.') {
        zone.to_string()
    } else {
        format!("{zone}.")
    }
}

/// Copies `zone_file` into `dir` (servers never touch the source tree) and
/// returns the copy's absolute path.
fn stage_zone_file(zone_file: &Path, dir: &Path, server: &str) -> PathBuf {
    let name = zone_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "zone".into());
    let copy = dir.join(format!("{server}-{name}"));
    fs::copy(zone_file, &copy).unwrap_or_else(|e| {
        panic!(
            "cannot copy {} to {}: {e}",
            zone_file.display(),
            copy.display()
        )
    });
    copy
}

/// Starts Knot serving `zone_origin` from `zone_file` on 127.0.0.1:`port`,
/// with every file it writes inside `dir`, and waits until the zone is
/// loaded. Returns `None` (after printing a skip notice) when knotd is not
/// installed and `CI` is unset.
pub fn start_knot(
    zone_origin: &str,
    zone_file: &Path,
    port: u16,
    dir: &Path,
) -> Option<ServerProcess> {
    let knotd = require_tool("knotd")?;
    let zone = absolute(zone_origin);
    let zone_copy = stage_zone_file(zone_file, dir, "knot");
    // semantic-checks off: only Knot's mandatory checks apply, so a test
    // zone may contain odd-but-legal data. journal-content none and
    // zonefile-sync -1: Knot never writes the journal or the zone file.
    let zone_section = format!(
        r#"zone:
  - domain: "{zone}"
    file: "{zone_copy}"
    storage: "{storage}"
    semantic-checks: off
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
    dnssec-signing: off
"#,
        storage = knot_storage(dir).display(),
        zone_copy = zone_copy.display(),
    );
    let mut server = spawn_knot("knot", knotd, dir, port, &zone_section);
    server.wait_ready(&zone, true);
    Some(server)
}

/// Where a Knot started by [`spawn_knot`] in `dir` keeps its databases.
pub fn knot_storage(dir: &Path) -> PathBuf {
    dir.join("knot-db")
}

/// The control socket of a Knot started by [`spawn_knot`] in `dir`.
pub fn knot_control_socket(dir: &Path) -> PathBuf {
    dir.join("knot-run").join("knot.sock")
}

/// Starts `knotd` (not waiting for it) on 127.0.0.1:`port` with the
/// server, control, database and log sections every test instance shares,
/// every file it writes inside `dir` ([`knot_storage`],
/// [`knot_control_socket`]), followed by `sections` (keys, remotes, ACLs,
/// zones). One worker of each kind keeps the two-core CI machines
/// responsive.
pub fn spawn_knot(
    name: &str,
    knotd: PathBuf,
    dir: &Path,
    port: u16,
    sections: &str,
) -> ServerProcess {
    let rundir = dir.join("knot-run");
    let storage = knot_storage(dir);
    for d in [&rundir, &storage] {
        fs::create_dir_all(d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
    }
    let conf = format!(
        r#"server:
    rundir: "{rundir}"
    pidfile: "{rundir}/knot.pid"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

control:
    listen: "{socket}"

database:
    storage: "{storage}"

log:
  - target: stderr
    any: info

{sections}"#,
        rundir = rundir.display(),
        socket = knot_control_socket(dir).display(),
        storage = storage.display(),
    );
    let conf_path = dir.join("knot.conf");
    fs::write(&conf_path, conf).expect("write knot.conf");
    ServerProcess::spawn(
        name,
        knotd,
        [OsStr::new("-c"), conf_path.as_os_str()],
        dir,
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    )
}

/// Starts NSD serving `zone_origin` from `zone_file` on 127.0.0.1:`port` in
/// the foreground as the current user, with every file it writes inside
/// `dir`, and waits until the zone is loaded. Returns `None` (after printing
/// a skip notice) when nsd is not installed and `CI` is unset.
pub fn start_nsd(
    zone_origin: &str,
    zone_file: &Path,
    port: u16,
    dir: &Path,
) -> Option<ServerProcess> {
    let nsd = require_tool("nsd")?;
    let zone = absolute(zone_origin);
    let zone_copy = stage_zone_file(zone_file, dir, "nsd");
    let d = dir.display();
    // username/chroot "": no privilege drop, no chroot. database "": no
    // nsd.db, the zone is read from the text file. rrl-ratelimit 0: the
    // tests fire many queries from one address and must not be rate limited.
    // Logs go to stderr (no logfile) so ServerProcess captures them.
    let conf = format!(
        r#"server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    do-ip4: yes
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/nsd-zone.list"
    xfrdfile: "{d}/nsd-xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    verbosity: 1
    hide-version: no
    reuseport: no
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0

remote-control:
    control-enable: no

zone:
    name: "{zone}"
    zonefile: "{zone_copy}"
"#,
        zone_copy = zone_copy.display(),
    );
    let conf_path = dir.join("nsd.conf");
    fs::write(&conf_path, conf).expect("write nsd.conf");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut server = ServerProcess::spawn(
        "nsd",
        nsd,
        [OsStr::new("-d"), OsStr::new("-c"), conf_path.as_os_str()],
        dir,
        addr,
    );
    server.wait_ready(&zone, true);
    Some(server)
}

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

/// EDNS parameters of a query's OPT record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    pub payload: u16,
    pub do_bit: bool,
    pub version: u8,
}

impl Edns {
    /// EDNS version 0 with the given payload size and DO clear.
    pub fn v0(payload: u16) -> Edns {
        Edns {
            payload,
            do_bit: false,
            version: 0,
        }
    }
}

/// How to build a query. The default is what an authoritative server
/// usually sees from a resolver minus EDNS: class IN, opcode QUERY, all
/// flags clear, no OPT record, random ID.
///
/// The qname is sent exactly as written (case preserved), so passing
/// `"WwW.DiFf.TeSt."` tests 0x20 handling.
#[derive(Clone, Debug)]
pub struct QueryOpts {
    pub class: Class,
    pub rd: bool,
    pub cd: bool,
    pub ad: bool,
    pub edns: Option<Edns>,
    /// Raw opcode (0 = QUERY); patched into the header bits directly so
    /// unassigned values can be sent too.
    pub opcode: u8,
    /// Fixed message ID; random when `None`.
    pub id: Option<u16>,
}

impl Default for QueryOpts {
    fn default() -> Self {
        QueryOpts {
            class: Class::IN,
            rd: false,
            cd: false,
            ad: false,
            edns: None,
            opcode: 0,
            id: None,
        }
    }
}

impl QueryOpts {
    /// Default options plus an EDNS(0) OPT with the given payload size.
    pub fn with_edns(payload: u16) -> QueryOpts {
        QueryOpts {
            edns: Some(Edns::v0(payload)),
            ..QueryOpts::default()
        }
    }
}

/// A message ID that differs between calls and between test runs. Not
/// cryptographic: it only has to make stale or misrouted replies detectable.
pub fn random_id() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded from OS randomness once per thread; hashing a
    // counter and the clock through it gives a cheap, dependency-free PRNG.
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u16
}

/// Builds the wire form of a query for `name`/`rtype` with `opts`.
pub fn build_query(name: &str, rtype: Rtype, opts: &QueryOpts) -> Vec<u8> {
    let qname: Name<Vec<u8>> =
        Name::from_str(name).unwrap_or_else(|e| panic!("bad query name {name:?}: {e}"));
    let mut msg = MessageBuilder::new_vec();
    let header = msg.header_mut();
    header.set_id(opts.id.unwrap_or_else(random_id));
    header.set_rd(opts.rd);
    header.set_cd(opts.cd);
    header.set_ad(opts.ad);
    let mut question = msg.question();
    question
        .push((qname, rtype, opts.class))
        .expect("question fits");
    let mut additional = question.additional();
    if let Some(edns) = opts.edns {
        additional
            .opt(|opt| {
                opt.set_udp_payload_size(edns.payload);
                opt.set_dnssec_ok(edns.do_bit);
                opt.set_version(edns.version);
                Ok(())
            })
            .expect("OPT fits");
    }
    let mut bytes = additional.finish();
    // Opcode lives in bits 3..=6 of the third header byte.
    bytes[2] = (bytes[2] & 0b1000_0111) | ((opts.opcode & 0x0f) << 3);
    bytes
}

/// The message ID of a wire message (0 if it is too short to have one).
fn wire_id(msg: &[u8]) -> u16 {
    if msg.len() < 2 {
        0
    } else {
        u16::from_be_bytes([msg[0], msg[1]])
    }
}

/// A UDP socket of the same address family as `addr`, connected to it (so
/// datagrams from anybody else are dropped by the kernel).
fn connected_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local)?;
    sock.connect(addr)?;
    Ok(sock)
}

/// Sends `query` once and waits up to `timeout` for a datagram with the same
/// message ID (others are skipped).
fn exchange_udp_once(addr: SocketAddr, query: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let sock = connected_udp(addr).ok()?;
    sock.send(query).ok()?;
    let id = wire_id(query);
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65535];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
            return None;
        }
        match sock.recv(&mut buf) {
            Ok(n) if n >= 2 && wire_id(&buf[..n]) == id => return Some(buf[..n].to_vec()),
            Ok(_) => continue,     // stray or stale datagram: keep waiting
            Err(_) => return None, // timeout, or ICMP port unreachable
        }
    }
}

/// Sends a complete wire query over UDP: up to [`UDP_TRIES`] tries of
/// [`REPLY_TIMEOUT`] each, accepting only a reply with the query's ID.
/// `None` if nothing matching arrived.
pub fn exchange_udp(addr: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    for attempt in 0..UDP_TRIES {
        let started = Instant::now();
        if let Some(reply) = exchange_udp_once(addr, query, REPLY_TIMEOUT) {
            return Some(reply);
        }
        // An immediate failure (e.g. ICMP port unreachable while a server is
        // restarting) should not burn the tries in a tight loop.
        if attempt + 1 < UDP_TRIES && started.elapsed() < Duration::from_millis(100) {
            thread::sleep(Duration::from_millis(100));
        }
    }
    None
}

/// Sends a complete wire query over TCP (two-byte length prefix) and reads
/// one reply, checking its ID. `None` on connection failure, timeout
/// ([`REPLY_TIMEOUT`] for each step) or ID mismatch.
pub fn exchange_tcp(addr: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(REPLY_TIMEOUT)).ok()?;
    let len = u16::try_from(query.len()).ok()?;
    // One write for prefix and message: some servers handle a split
    // length prefix poorly, and that is not what this helper tests.
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).ok()?;
    let mut len_buf = [0u8; 2];
    stream.read_exact(&mut len_buf).ok()?;
    let mut reply = vec![0u8; u16::from_be_bytes(len_buf) as usize];
    stream.read_exact(&mut reply).ok()?;
    (wire_id(&reply) == wire_id(query)).then_some(reply)
}

/// Builds a query and exchanges it over UDP; panics if no reply arrives.
pub fn query_udp(addr: SocketAddr, name: &str, rtype: Rtype, opts: &QueryOpts) -> Vec<u8> {
    let query = build_query(name, rtype, opts);
    exchange_udp(addr, &query).unwrap_or_else(|| {
        panic!("no UDP reply from {addr} to {name} {rtype} after {UDP_TRIES} tries")
    })
}

/// Builds a query and exchanges it over TCP; panics if no reply arrives.
pub fn query_tcp(addr: SocketAddr, name: &str, rtype: Rtype, opts: &QueryOpts) -> Vec<u8> {
    let query = build_query(name, rtype, opts);
    exchange_tcp(addr, &query)
        .unwrap_or_else(|| panic!("no TCP reply from {addr} to {name} {rtype}"))
}

/// Sends arbitrary bytes in one datagram and returns the first datagram that
/// comes back within [`REPLY_TIMEOUT`], whatever it contains (no ID check, no
/// retry): for malformed-input tests where "no reply" is a valid outcome.
pub fn send_udp_raw(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let sock = connected_udp(addr).ok()?;
    sock.send(bytes).ok()?;
    sock.set_read_timeout(Some(REPLY_TIMEOUT)).ok()?;
    let mut buf = vec![0u8; 65535];
    let n = sock.recv(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

// ---------------------------------------------------------------------------
// Reply normalisation
// ---------------------------------------------------------------------------

/// The header flags the tests compare.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub qr: bool,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    pub ad: bool,
    pub cd: bool,
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = [
            ("qr", self.qr),
            ("aa", self.aa),
            ("tc", self.tc),
            ("rd", self.rd),
            ("ra", self.ra),
            ("ad", self.ad),
            ("cd", self.cd),
        ];
        let set: Vec<&str> = all.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect();
        if set.is_empty() {
            f.write_str("(none)")
        } else {
            f.write_str(&set.join(" "))
        }
    }
}

/// The parts of a reply's OPT record the tests compare. The advertised UDP
/// payload size is deliberately absent: every server picks its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptInfo {
    pub version: u8,
    pub dnssec_ok: bool,
    /// The upper 8 bits of the 12-bit extended RCODE (OPT TTL bits 24..31).
    pub ext_rcode: u8,
}

impl fmt::Display for OptInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "version={} do={} ext-rcode={}",
            self.version, self.dnssec_ok as u8, self.ext_rcode
        )
    }
}

/// One resource record in comparable form: owner lowercased, rdata in
/// canonical wire form (RFC 4034 §6.2: uncompressed, and for the classic
/// types with embedded names, lowercased). Equality and order ignore
/// `text`, which is only for display.
#[derive(Clone, Debug)]
pub struct Rr {
    pub owner: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
    /// Presentation form of the rdata (as the server sent it).
    pub text: String,
}

impl Rr {
    fn key(&self) -> (&str, u16, u16, u32, &[u8]) {
        (&self.owner, self.rtype, self.class, self.ttl, &self.rdata)
    }

    pub fn rtype(&self) -> Rtype {
        Rtype::from_int(self.rtype)
    }
}

impl PartialEq for Rr {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Rr {}
impl PartialOrd for Rr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Rr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl fmt::Display for Rr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            self.owner,
            self.ttl,
            Class::from_int(self.class),
            Rtype::from_int(self.rtype),
            self.text
        )
    }
}

/// A parsed reply, reduced to what the tests compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub id: u16,
    pub opcode: u8,
    /// The 4-bit header RCODE (see `opt.ext_rcode` for the upper bits).
    pub rcode: u8,
    pub flags: Flags,
    /// Questions as `name class type`, name case preserved (0x20 echo).
    pub question: Vec<String>,
    pub answer: BTreeSet<Rr>,
    pub authority: BTreeSet<Rr>,
    /// Additional records without the OPT record (see `opt`).
    pub additional: BTreeSet<Rr>,
    pub opt: Option<OptInfo>,
}

impl Reply {
    /// The full 12-bit RCODE (header bits plus OPT extension).
    pub fn full_rcode(&self) -> u16 {
        u16::from(self.opt.map_or(0, |o| o.ext_rcode)) << 4 | u16::from(self.rcode)
    }

    /// Answer records of one type.
    pub fn answers_of(&self, rtype: Rtype) -> Vec<&Rr> {
        self.answer
            .iter()
            .filter(|rr| rr.rtype == rtype.to_int())
            .collect()
    }

    /// One line: rcode, flags, section sizes.
    pub fn summary(&self) -> String {
        format!(
            "{} [{}] an={} ns={} ar={}{}",
            rcode_name(self.full_rcode()),
            self.flags,
            self.answer.len(),
            self.authority.len(),
            self.additional.len(),
            self.opt.map(|o| format!(" opt({o})")).unwrap_or_default()
        )
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "opcode={} rcode={} flags=[{}] opt={}",
            self.opcode,
            rcode_name(self.full_rcode()),
            self.flags,
            self.opt.map_or("none".to_string(), |o| o.to_string())
        )?;
        for q in &self.question {
            writeln!(f, "  Q  {q}")?;
        }
        for (label, set) in [
            ("AN", &self.answer),
            ("NS", &self.authority),
            ("AR", &self.additional),
        ] {
            for rr in set {
                writeln!(f, "  {label} {rr}")?;
            }
        }
        Ok(())
    }
}

/// Mnemonic for a (possibly extended) RCODE.
pub fn rcode_name(rcode: u16) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        6 => "YXDOMAIN".into(),
        7 => "YXRRSET".into(),
        8 => "NXRRSET".into(),
        9 => "NOTAUTH".into(),
        10 => "NOTZONE".into(),
        16 => "BADVERS".into(),
        other => format!("RCODE{other}"),
    }
}

/// Parses a reply into a [`Reply`]. Fails on anything domain cannot parse,
/// including rdata that does not match its type.
pub fn parse_reply(bytes: &[u8]) -> Result<Reply, String> {
    let msg = Message::from_slice(bytes).map_err(|e| format!("short message: {e}"))?;
    let header = msg.header();
    let flags = Flags {
        qr: header.qr(),
        aa: header.aa(),
        tc: header.tc(),
        rd: header.rd(),
        ra: header.ra(),
        ad: header.ad(),
        cd: header.cd(),
    };
    let mut question = Vec::new();
    for q in msg.question() {
        let q = q.map_err(|e| format!("question: {e}"))?;
        question.push(format!(
            "{} {} {}",
            q.qname().fmt_with_dot(),
            q.qclass(),
            q.qtype()
        ));
    }
    let answer = section(msg.answer(), "answer")?;
    let authority = section(msg.authority(), "authority")?;
    let additional = section(msg.additional(), "additional")?;
    let opt = msg.opt().map(|opt| OptInfo {
        version: opt.version(),
        dnssec_ok: opt.dnssec_ok(),
        // OptRcode::to_int() is the 12-bit value; its upper 8 bits are the
        // OPT record's extension.
        ext_rcode: (opt.rcode(header).to_int() >> 4) as u8,
    });
    Ok(Reply {
        id: header.id(),
        opcode: header.opcode().to_int(),
        rcode: header.rcode().to_int(),
        flags,
        question,
        answer,
        authority,
        additional,
        opt,
    })
}

/// Reads one record section into a set, skipping OPT records (handled by
/// [`parse_reply`] through `Message::opt`).
fn section(
    sec: Result<RecordSection<'_, [u8]>, ParseError>,
    what: &str,
) -> Result<BTreeSet<Rr>, String> {
    let sec = sec.map_err(|e| format!("{what}: {e}"))?;
    let mut set = BTreeSet::new();
    for record in sec {
        let record = record.map_err(|e| format!("{what}: {e}"))?;
        if record.rtype() == Rtype::OPT {
            continue;
        }
        let record = record
            .to_any_record::<AllRecordData<&[u8], ParsedName<&[u8]>>>()
            .map_err(|e| format!("{what}: bad rdata: {e}"))?;
        let mut rdata = Vec::new();
        record
            .data()
            .compose_canonical_rdata(&mut rdata)
            .map_err(|_| format!("{what}: cannot compose rdata"))?;
        set.insert(Rr {
            owner: record
                .owner()
                .fmt_with_dot()
                .to_string()
                .to_ascii_lowercase(),
            rtype: record.rtype().to_int(),
            class: record.class().to_int(),
            ttl: record.ttl().as_secs(),
            rdata,
            text: record.data().to_string(),
        });
    }
    Ok(set)
}

/// GET `path` from `address`: (status code, body).
pub fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_string();
    (status, body)
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; true
/// when it held.
pub fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// kdig's standard output for `@addr ARGS` (one try, 2 s timeout); empty
/// when kdig is not installed.
pub fn kdig(addr: SocketAddr, args: &[&str]) -> String {
    let Some(kdig) = find_tool("kdig") else {
        return String::new();
    };
    let output = Command::new(kdig)
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), "+retry=0", "+timeout=2"])
        .args(args)
        .output()
        .expect("run kdig");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The SOA serial `addr` answers for `zone`, `None` for no answer or an
/// error.
pub fn soa_serial(addr: SocketAddr, zone: &str) -> Option<u32> {
    kdig(addr, &["+short", zone, "SOA"])
        .lines()
        .next()?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}
