//! Corefile (CoreDNS configuration syntax) -> validated [`Config`].
//!
//! This module owns the text of the config: reading the Corefile and the
//! files it imports, tokenizing, checking the syntax, and turning it into
//! typed, bounded values. It must not touch anything else: it opens no
//! sockets, reads no zone files (a `file` directive yields only a path),
//! and starts nothing. Every problem it finds is a [`ConfigError`] naming a
//! file, a line and what was expected; it collects as many as it can in one
//! pass instead of stopping at the first.
//!
//! # Stages
//!
//! 1. Syntax, as written, with line numbers:
//!    - `lexer`: environment references (`{$NAME}`, `{%NAME%}`; unset is
//!      empty) are replaced, then the text is split into words, `"quoted
//!      strings"` (only `\"` is an escape) and `{` `}`; `#` starts a
//!      comment to the end of the line.
//!    - `syntax`: words are grouped into lines, and a line may end in a
//!      `{ ... }` block of more lines.
//!    - `imports`: `(name) { ... }` snippets are collected and `import`
//!      lines replaced by what they name.
//! 2. Meaning (`resolve`, with `values` for the value words): server keys
//!    become zones and ports, directives become fields, and rules across
//!    blocks are checked.
//!
//! # What a Corefile may contain
//!
//! ```text
//! # a comment
//! (common) {                      # a snippet, pasted in by `import common`
//!     log
//!     errors
//! }
//! import conf.d/*.conf            # other files, relative to this one
//!
//! example.org dns://example.net:1053 {   # keys: [dns://]zone[:port], port 53 if omitted
//!     file db.example.org example.org {  # zone file; ZONES default to the block's zones
//!         reload 1m                      # Go duration; 0 disables
//!     }
//!     file db.example.net example.net
//!     bind 192.0.2.1 ::1                 # IP addresses; none means all
//!     import common
//!     engine {                           # at most once in the whole config
//!         workers 4                      # 1-1024
//!         cpus 0-3                       # CPU list, ranges and commas
//!         backend io_uring               # auto | io_uring | recvmmsg
//!         ring_entries 4096              # power of two, 1-32768
//!         batch 64                       # 1-1024
//!         rcvbuf 4M                      # bytes, K/M/G suffixes (binary)
//!         sndbuf 4M
//!     }
//!     health :8080                       # /health; also prometheus [ADDR], ready [ADDR]
//!     transfer {                         # who may AXFR/IXFR; single addresses get NOTIFY
//!         to 192.0.2.53 10.0.0.0/8 [2001:db8::53]:5300 key xfr-key.
//!     }
//!     tsig {                             # process-wide keys; require: transfers only
//!         secret xfr-key. c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0 hmac-sha256
//!         require AXFR IXFR
//!     }
//! }
//! example.net {
//!     secondary {                        # a secondary zone, primaries tried in order
//!         transfer from 192.0.2.1 192.0.2.2:5300 key xfr-key.
//!         refresh-min 5s                 # clamps on the SOA timers
//!     }
//!     storage /var/lib/ringdns           # journals and secondary copies
//! }
//! ```
//!
//! Rules worth knowing:
//! - `{` ends the line it opens a block for (it may also start the next
//!   line); `}` closes the innermost block. Every server block needs braces.
//! - Keys may be separated by spaces or commas; a line of keys that ends in
//!   a comma continues on the next line.
//! - Other schemes (`tls://`, `https://`, `grpc://`) are not supported.
//! - Two blocks may not serve the same zone on the same port.
//! - `prometheus [ADDR]` (default `localhost:9153`), `health [ADDR]`
//!   (`:8080`) and `ready [ADDR]` (`:8181`) set the HTTP endpoints, once
//!   per process. `reload [INTERVAL [JITTER]]` (CoreDNS's plugin) rereads
//!   the Corefile when it changes.
//! - A zone gets its data from one `file` or one `secondary` per block.
//! - A snippet must be defined above its first `import`. `import` first
//!   looks for a snippet of that name, then for files; wildcards (`*`,
//!   `?`) are allowed in the file name only, and a pattern that matches
//!   nothing is a warning. Each imported file and snippet must balance its
//!   own braces. Import cycles are errors that show the chain.
//! - Relative paths (in `import` and `file`) are resolved against the
//!   directory of the file the directive is written in.

mod imports;
mod lexer;
mod resolve;
mod syntax;
mod values;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Config and imported files larger than this are refused before reading:
/// a Corefile is a few kilobytes, and a bound keeps a wrong path (a disk
/// image, /dev/zero) from eating memory.
const CONFIG_FILE_BYTES_MAX: u64 = 16 << 20;

/// Reads the config file at `path` and everything it imports, then parses
/// and validates it.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    match read_config_file(path) {
        Ok(text) => parse_str(&text, path),
        Err(message) => Err(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            message,
        }]),
    }
}

/// Parses and validates Corefile `text`. `path` is where the text came
/// from: it names the file in messages, and `import` and `file` paths are
/// relative to its directory. Environment references are looked up in the
/// process environment.
pub fn parse_str(text: &str, path: &Path) -> Result<Config, Vec<ConfigError>> {
    let (config, errors) = parse_with_env(text, path, &|name| std::env::var(name).ok());
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

/// All stages, with the environment passed in (tests use their own). The
/// config is complete only when the error list is empty; its warnings are
/// filled either way.
fn parse_with_env(
    text: &str,
    path: &Path,
    env: lexer::EnvLookup<'_>,
) -> (Config, Vec<ConfigError>) {
    let mut expander = imports::Expander::new(env);
    let lines = expander.main_file(text, path);
    let mut errors = expander.errors;
    let config = resolve::resolve(&lines, path, &mut errors, expander.warnings);
    (config, errors)
}

/// Reads one config or imported file, refusing directories and files over
/// [`CONFIG_FILE_BYTES_MAX`].
fn read_config_file(path: &Path) -> Result<String, String> {
    let cannot = |e: std::io::Error| format!("cannot read '{}': {e}", path.display());
    let metadata = std::fs::metadata(path).map_err(cannot)?;
    if metadata.is_dir() {
        return Err(format!(
            "'{}' is a directory; expected a file",
            path.display()
        ));
    }
    if !metadata.is_file() {
        // A device or FIFO (say /dev/zero) could be read forever.
        return Err(format!("'{}' is not a regular file", path.display()));
    }
    if metadata.len() > CONFIG_FILE_BYTES_MAX {
        return Err(format!(
            "'{}' is {} bytes; expected a config file of at most {CONFIG_FILE_BYTES_MAX} bytes",
            path.display(),
            metadata.len()
        ));
    }
    std::fs::read_to_string(path).map_err(cannot)
}

/// `relative` resolved against the directory of `file` (absolute paths are
/// kept), so a config means the same wherever the server is started from.
fn relative_to_file(file: &Path, relative: &str) -> PathBuf {
    let directory = file.parent().unwrap_or(Path::new(""));
    directory.join(relative)
}

/// A problem in the config, located at a file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config or imported file the problem is in.
    pub file: PathBuf,
    /// 1-based; 0 when the problem is the file as a whole (it cannot be
    /// read).
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// `Corefile:7: unknown directive 'fiel'; expected one of: ...`, or
    /// `Corefile: cannot read ...` for line 0.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// In the order written (imports pasted in place).
    pub servers: Vec<ServerBlock>,
    /// From the one `engine` directive, in any block; defaults without one.
    pub engine: EngineConfig,
    /// `tcp { … }` in any block (one only): limits on DNS over TCP.
    pub tcp: TcpConfig,
    /// HTTP endpoints (`prometheus [ADDR]`, `health [ADDR]`, `ready
    /// [ADDR]` in any block; the first of each wins, as all blocks share
    /// one process).
    pub http: HttpEndpoints,
    /// `rrl { … }` in any block (the first wins): response rate limiting.
    pub rrl: Option<crate::rrl::RrlConfig>,
    /// `cookies [{ … }]` in any block (one only): DNS Cookies (RFC 7873,
    /// server cookies per RFC 9018); off without it.
    pub cookies: Option<crate::cookie::CookieConfig>,
    /// `nsid [DATA]` (RFC 5001) in any block: the identifier replies carry
    /// when a query asks; the host's name when DATA is omitted.
    pub nsid: Option<String>,
    /// `tsig { secret … }` in any block: the process's TSIG keys.
    pub tsig_secrets: Vec<TsigSecret>,
    /// `reload [INTERVAL [JITTER]]` in any block (CoreDNS's plugin): check
    /// the Corefile for changes this often (default 30 s).
    pub reload: Option<Duration>,
    /// `storage DIR`: where IXFR journals and transferred zones are kept.
    /// `None`: `$STATE_DIRECTORY` (systemd) or `ringdns-data` beside the
    /// Corefile.
    pub storage: Option<PathBuf>,
    /// Non-fatal: e.g. "directive 'health' is not yet supported; ignored".
    pub warnings: Vec<ConfigError>,
}

/// CoreDNS's log classes: success, denial (NXDOMAIN, NODATA), error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogClasses {
    pub success: bool,
    pub denial: bool,
    pub error: bool,
}

impl Default for LogClasses {
    fn default() -> Self {
        LogClasses {
            success: true,
            denial: true,
            error: true,
        }
    }
}

/// Where the HTTP endpoints listen; `None` when the directive is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpEndpoints {
    /// `/metrics` (default `localhost:9153`, as CoreDNS).
    pub prometheus: Option<std::net::SocketAddr>,
    /// `/health` (default `:8080`).
    pub health: Option<std::net::SocketAddr>,
    /// `/ready` (default `:8181`).
    pub ready: Option<std::net::SocketAddr>,
    /// `health { lameduck DURATION }`: how long to report unhealthy after
    /// SIGTERM before exiting.
    pub lameduck: Option<Duration>,
}

/// One `KEYS { ... }` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerBlock {
    /// One per key in the block header; no (zone, port) appears in two
    /// blocks.
    pub keys: Vec<ServerKey>,
    /// From `bind`, without repeats; empty = wildcard (0.0.0.0 and ::).
    pub binds: Vec<IpAddr>,
    /// One per `file` directive; no zone appears in two of them.
    pub files: Vec<FileZone>,
    /// One per `transfer` directive.
    pub transfers: Vec<TransferZones>,
    /// One per `secondary` directive; no zone also has a `file`.
    pub secondaries: Vec<SecondaryZones>,
    /// `tsig … { require … }`: which query types must be signed, per zone.
    pub tsig_requires: Vec<TsigRequire>,
    pub log: bool,
    /// Which replies `log` writes (its `class` sub-directive; all by default).
    pub log_classes: LogClasses,
    pub errors: bool,
    /// Line of the block header, in `config_file`.
    pub line: usize,
    /// The file the block header is written in (the Corefile or an
    /// imported file).
    pub config_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKey {
    /// Absolute, lowercase, with a trailing dot; "." for the root.
    pub zone: String,
    /// 53 when the key names no port.
    pub port: u16,
}

/// One `file DBFILE [ZONES...] [{ reload DURATION }]` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileZone {
    /// Relative paths are resolved against the directory of the file the
    /// directive is written in.
    pub path: PathBuf,
    /// The ZONES arguments (normalised like [`ServerKey::zone`], each at or
    /// below one of the block's zones), or all the block's key zones when
    /// omitted.
    pub zones: Vec<String>,
    /// `reload DURATION`; `Some(Duration::ZERO)` means disabled
    /// (`reload 0`), `None` means not given.
    pub reload: Option<Duration>,
    /// `serve-unchanged-serial`: serve a reload whose data changed under the
    /// same serial (with a warning) instead of keeping the old zone.
    pub serve_unchanged_serial: bool,
    /// Line of the directive, in `config_file`.
    pub line: usize,
    /// The file the directive is written in.
    pub config_file: PathBuf,
}

/// `transfer [ZONES...] { to ADDR... [key NAME] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferZones {
    pub zones: Vec<String>,
    pub to: Vec<TransferPeer>,
    pub line: usize,
}

/// One `to` address: who may transfer (a network, or anyone), and where
/// NOTIFY goes (single addresses only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferPeer {
    pub network: IpAddr,
    pub prefix: u8,
    /// `*`: every address, IPv4 and IPv6.
    pub any: bool,
    /// Where NOTIFY is sent (port 53 unless written).
    pub notify: Option<std::net::SocketAddr>,
    /// The TSIG key this peer must sign with (`key NAME`), lowercased with
    /// a trailing dot.
    pub key: Option<String>,
}

impl TransferPeer {
    pub fn matches(&self, address: IpAddr) -> bool {
        self.any || crate::rrl::within(address, (self.network, self.prefix))
    }
}

/// `secondary [ZONES...] { transfer from ADDR... [key NAME] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondaryZones {
    pub zones: Vec<String>,
    /// Primaries, tried in order, each with its TSIG key.
    pub from: Vec<(std::net::SocketAddr, Option<String>)>,
    /// Clamps on the SOA timers, in seconds.
    pub refresh_min: u32,
    pub refresh_max: u32,
    pub expire_max: u32,
    pub line: usize,
}

/// `tsig { secret NAME KEY [ALGORITHM] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigSecret {
    pub name: String,
    pub secret: String,
    pub algorithm: String,
}

/// `tsig [ZONES...] { require QTYPE...|all }`: `None` in `qtypes` means all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigRequire {
    pub zones: Vec<String>,
    pub qtypes: Vec<Option<u16>>,
}

/// Settings of the query engine; every `None` means "choose at start-up".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EngineConfig {
    /// `workers N`, 1-1024.
    pub workers: Option<usize>,
    /// `cpus 0-3,6`: CPU indexes in the order written, without repeats.
    pub cpus: Option<Vec<usize>>,
    /// `backend auto|io_uring|recvmmsg`.
    pub backend: Backend,
    /// `ring_entries N`, a power of two, 1-32768.
    pub ring_entries: Option<u32>,
    /// `batch N`, 1-1024.
    pub batch: Option<usize>,
    /// `rcvbuf BYTES` (K/M/G suffixes, binary), at most `i32::MAX`.
    pub rcvbuf: Option<usize>,
    /// `sndbuf BYTES`, as `rcvbuf`.
    pub sndbuf: Option<usize>,
}

/// `tcp { … }`: limits on DNS over TCP, with Knot's `tcp-*` settings in
/// mind; every `None` means the default chosen at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcpConfig {
    /// `max-connections N`: open connections at most (at the cap the one
    /// idle longest is closed for a newcomer).
    pub connections_max: Option<usize>,
    /// `max-per-address N`: connections one client address may hold.
    pub connections_per_address_max: Option<usize>,
    /// `idle-timeout DURATION`: how long a connection may wait between
    /// messages.
    pub idle_timeout: Option<Duration>,
    /// `message-timeout DURATION`: how long a message may take to arrive
    /// once its first byte has.
    pub message_timeout: Option<Duration>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    /// io_uring where the kernel allows it, recvmmsg otherwise.
    #[default]
    Auto,
    IoUring,
    Recvmmsg,
}
