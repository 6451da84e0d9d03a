//! Stage 2: expanded lines -> the validated [`Config`].
//!
//! Here words get their meaning: server keys become zones and ports,
//! directives become fields, values are scanned and bounded, and rules that
//! span blocks (one server per zone and port, one `engine`) are checked.

use std::path::Path;
use std::time::Duration;

use super::lexer::Token;
use super::syntax::{Block, Line};
use super::values::{self, is_within};
use super::{
    Backend, Config, ConfigError, EngineConfig, FileZone, HttpEndpoints, LogClasses, ServerBlock,
    ServerKey, relative_to_file,
};

/// The directives ringdns implements, as listed in "unknown directive"
/// errors.
const DIRECTIVES: &str = "bind, errors, file, log, engine, prometheus, health, ready, nsid, rrl, cookies, transfer, secondary, tsig, storage, tcp";
/// CoreDNS directives whose absence would change what is served, so
/// ignoring them would be wrong.
#[path = "replication.rs"]
mod replication;
#[path = "tcp.rs"]
mod tcp;

/// The host's name, as `nsid` without DATA uses it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "ringdns".to_string())
}

/// `engine` settings with an example of each, for messages.
const ENGINE_SETTINGS: [(&str, &str); 7] = [
    ("workers", "workers 4"),
    ("cpus", "cpus 0-3,6"),
    ("backend", "backend io_uring"),
    ("ring_entries", "ring_entries 4096"),
    ("batch", "batch 64"),
    ("rcvbuf", "rcvbuf 4M"),
    ("sndbuf", "sndbuf 4M"),
];
const WORKERS_MAX: usize = values::CPU_INDEX_MAX + 1;
/// The kernel's limit on io_uring submission queue entries.
const RING_ENTRIES_MAX: usize = 32768;
/// The kernel's limit on messages per recvmmsg/sendmmsg call (UIO_MAXIOV).
const BATCH_MAX: usize = 1024;
/// The longest cookie secret rotation period, a year.
const COOKIE_ROTATE_S_MAX: u64 = 8760 * 3600;

/// Resolves the lines of the main file (imports already pasted in). Errors
/// are appended to `errors`; the returned config, which carries `warnings`
/// and any new ones, is only meaningful when no errors were added.
pub(super) fn resolve(
    lines: &[Line],
    main_file: &Path,
    errors: &mut Vec<ConfigError>,
    warnings: Vec<ConfigError>,
) -> Config {
    let mut resolver = Resolver {
        errors,
        warnings,
        servers: Vec::new(),
        engine: None,
        tcp: None,
        served: Vec::new(),
        http: HttpEndpoints::default(),
        nsid: None,
        rrl: None,
        cookies: None,
        tsig_secrets: Vec::new(),
        storage: None,
        reload: None,
        key_uses: Vec::new(),
    };
    for line in lines {
        let Some(block) = &line.block else {
            // A key without braces is the Caddyfile single-block form: all
            // that follows would be read as its directives, so any further
            // message would only mislead. One error, and stop.
            let words: Vec<&str> = line.words.iter().map(|t| t.text.as_str()).collect();
            resolver.error(
                line.name(),
                format!(
                    "expected '{{' after server block key '{}'; ringdns needs braces around every server block",
                    words.join(" ")
                ),
            );
            break;
        };
        resolver.server_block(line, block);
    }
    resolver.check_key_uses();
    let Resolver {
        servers,
        engine,
        tcp,
        warnings,
        http,
        nsid,
        rrl,
        cookies,
        tsig_secrets,
        storage,
        reload,
        ..
    } = resolver;
    if servers.is_empty() && errors.is_empty() {
        errors.push(ConfigError {
            file: main_file.to_path_buf(),
            line: 1,
            message:
                "no server blocks; expected at least one like 'example.org { file db.example.org }'"
                    .to_string(),
        });
    }
    Config {
        servers,
        engine: engine.map(|(engine, _)| engine).unwrap_or_default(),
        tcp: tcp.map(|(tcp, _)| tcp).unwrap_or_default(),
        http,
        nsid,
        rrl,
        cookies,
        tsig_secrets,
        storage,
        reload,
        warnings,
    }
}

struct Resolver<'a> {
    errors: &'a mut Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    servers: Vec<ServerBlock>,
    /// The one `engine` directive and where it was written.
    engine: Option<(EngineConfig, Token)>,
    /// The one `tcp` directive and where it was written.
    tcp: Option<(super::TcpConfig, Token)>,
    /// Every zone and port claimed so far, with the key that claimed it.
    served: Vec<(ServerKey, Token)>,
    http: HttpEndpoints,
    nsid: Option<String>,
    rrl: Option<crate::rrl::RrlConfig>,
    cookies: Option<crate::cookie::CookieConfig>,
    tsig_secrets: Vec<super::TsigSecret>,
    storage: Option<std::path::PathBuf>,
    reload: Option<Duration>,
    /// Every `key NAME` after a `to` or `transfer from`, checked against
    /// the `tsig` secrets once all blocks are read (a secret may be
    /// defined in a later block).
    key_uses: Vec<(String, Token)>,
}

impl Resolver<'_> {
    fn error(&mut self, at: &Token, message: impl Into<String>) {
        self.errors.push(at.error(message));
    }

    fn server_block(&mut self, line: &Line, block: &Block) {
        let header = line.name();
        let mut keys: Vec<ServerKey> = Vec::new();
        let mut bad_keys = false;
        for word in &line.words {
            for part in word.text.split(',').filter(|part| !part.is_empty()) {
                let key = match values::server_key(part) {
                    Ok(key) => key,
                    Err(message) => {
                        self.error(word, message);
                        bad_keys = true;
                        continue;
                    }
                };
                if let Some((_, first)) = self.served.iter().find(|(served, _)| *served == key) {
                    let message = format!(
                        "zone '{}' on port {} is already served by the server block at {}:{}",
                        key.zone,
                        key.port,
                        first.file.display(),
                        first.line
                    );
                    self.error(word, message);
                    bad_keys = true;
                    continue;
                }
                self.served.push((key.clone(), word.clone()));
                keys.push(key);
            }
        }
        if keys.is_empty() && !bad_keys {
            self.error(header, "expected a zone name like 'example.org' before '{'");
        }

        let mut server = ServerBlock {
            keys,
            binds: Vec::new(),
            files: Vec::new(),
            transfers: Vec::new(),
            secondaries: Vec::new(),
            tsig_requires: Vec::new(),
            log: false,
            log_classes: LogClasses::default(),
            errors: false,
            line: header.line,
            config_file: header.file.to_path_buf(),
        };
        for directive in &block.lines {
            self.directive(&mut server, directive);
        }
        self.servers.push(server);
    }

    fn directive(&mut self, server: &mut ServerBlock, line: &Line) {
        let name = line.name();
        match name.text.as_str() {
            "file" => self.file(server, line),
            "bind" => self.bind(server, line),
            // Their arguments (log formats, error policies) are accepted and
            // ignored until ringdns implements them.
            "log" => self.log(server, line),
            "errors" => server.errors = true,
            "engine" => self.engine(line),
            "tcp" => self.tcp(line),
            "prometheus" => self.http_endpoint(line, "localhost:9153", |http| &mut http.prometheus),
            "health" => self.http_endpoint(line, ":8080", |http| &mut http.health),
            "ready" => self.http_endpoint(line, ":8181", |http| &mut http.ready),
            "rrl" => self.rrl(line),
            "cookies" => self.cookies(line),
            "transfer" => self.transfer(server, line),
            "secondary" => self.secondary(server, line),
            "tsig" => self.tsig(server, line),
            "storage" => self.storage(line),
            "reload" => self.reload(line),
            "nsid" => {
                // CoreDNS joins the words; without any, the host's name.
                let words: Vec<&str> = line.args().iter().map(|word| word.text.as_str()).collect();
                let data = if words.is_empty() {
                    host_name()
                } else {
                    words.join(" ")
                };
                self.nsid.get_or_insert(data);
            }
            other => {
                let message = format!("unknown directive '{other}'; expected one of: {DIRECTIVES}");
                self.error(name, message);
            }
        }
    }

    /// `log [NAMES...] [FORMAT] [{ class success|denial|error|all... }]`:
    /// every query in CoreDNS's default format, filtered by class.
    fn log(&mut self, server: &mut ServerBlock, line: &Line) {
        server.log = true;
        if let Some(first) = line.args().first() {
            let message = "log names and formats are not yet supported; every query is logged in the default format";
            self.warnings.push(first.error(message));
        }
        let Some(block) = &line.block else { return };
        for sub in &block.lines {
            let sub_name = sub.name();
            if sub_name.text != "class" {
                let message = format!("'{}' in 'log' is not yet supported; ignored", sub_name.text);
                self.warnings.push(sub_name.error(message));
                continue;
            }
            let mut classes = LogClasses {
                success: false,
                denial: false,
                error: false,
            };
            for word in sub.args() {
                match word.text.as_str() {
                    "all" => classes = LogClasses::default(),
                    "success" => classes.success = true,
                    "denial" => classes.denial = true,
                    "error" => classes.error = true,
                    other => {
                        let message = format!(
                            "unknown log class '{other}'; expected all, success, denial or error"
                        );
                        self.error(word, message);
                    }
                }
            }
            if sub.args().is_empty() {
                self.error(
                    sub_name,
                    "expected at least one class: 'class all|success|denial|error...'",
                );
            }
            server.log_classes = classes;
        }
    }

    /// `rrl [ZONES...] { responses-per-second N … }` with the CoreDNS rrl
    /// plugin's setting names, plus `exempt CIDR...`; 0 means unlimited.
    fn rrl(&mut self, line: &Line) {
        let name = line.name();
        if let Some(first) = line.args().first() {
            self.warnings
                .push(first.error("rrl zones are not supported; rrl applies to every zone"));
        }
        let mut rrl = crate::rrl::RrlConfig::default();
        let mut responses: Option<u32> = None;
        let mut others: [Option<u32>; 4] = [None; 4];
        for setting in line.block.iter().flat_map(|block| &block.lines) {
            let key = setting.name();
            let args = setting.args();
            let number = |resolver: &mut Self| -> Option<u32> {
                match args {
                    [value] => match value.text.parse::<u32>() {
                        Ok(number) => Some(number),
                        Err(_) => {
                            resolver.error(
                                value,
                                format!(
                                    "expected a whole number for '{}', got '{}'",
                                    key.text, value.text
                                ),
                            );
                            None
                        }
                    },
                    _ => {
                        resolver.error(key, format!("expected one number after '{}'", key.text));
                        None
                    }
                }
            };
            match key.text.as_str() {
                "responses-per-second" => responses = number(self),
                "nodata-per-second" => others[0] = number(self),
                "nxdomains-per-second" => others[1] = number(self),
                "referrals-per-second" => others[2] = number(self),
                "errors-per-second" => others[3] = number(self),
                "slip-ratio" => rrl.slip = number(self).unwrap_or(rrl.slip),
                "ipv4-prefix-length" => rrl.ipv4_prefix = number(self).unwrap_or(24).min(32) as u8,
                "ipv6-prefix-length" => rrl.ipv6_prefix = number(self).unwrap_or(56).min(128) as u8,
                "max-table-size" => rrl.table_size = number(self).unwrap_or(65536) as usize,
                "window" => {
                    let _ = number(self); // buckets refill every second; accepted for compatibility
                }
                "report-only" => rrl.report_only = true,
                "exempt" => {
                    for network in args {
                        match values::cidr(&network.text) {
                            Ok(network) => rrl.exempt.push(network),
                            Err(message) => self.error(network, message),
                        }
                    }
                }
                other => {
                    let message = format!(
                        "unknown rrl setting '{other}'; expected responses-per-second, nodata-per-second, nxdomains-per-second, referrals-per-second, errors-per-second, slip-ratio, ipv4-prefix-length, ipv6-prefix-length, max-table-size, window, report-only or exempt"
                    );
                    self.error(key, message);
                }
            }
        }
        // Unset kinds follow responses-per-second, as in the CoreDNS plugin.
        let base = responses.unwrap_or(0);
        rrl.rates = [
            base,
            others[0].unwrap_or(base),
            others[1].unwrap_or(base),
            others[2].unwrap_or(base),
            others[3].unwrap_or(base),
        ];
        if self.rrl.is_some() {
            self.error(name, "only one 'rrl' directive is allowed");
            return;
        }
        self.rrl = Some(rrl);
    }

    /// `cookies [{ secret HEX32; rotate DURATION }]`: DNS Cookies (RFC
    /// 7873) with RFC 9018 server cookies. Without `secret` a random one is
    /// made at start and replaced every `rotate` (default 1h); with one, it
    /// is used as written unless `rotate` is given too (then each period's
    /// secret is derived from it). `rotate 0` never rotates.
    fn cookies(&mut self, line: &Line) {
        let name = line.name();
        if let Some(first) = line.args().first() {
            self.error(
                first,
                "'cookies' takes no arguments; expected 'cookies' or 'cookies {' with 'secret HEX32' or 'rotate DURATION' inside",
            );
        }
        let mut secret = None;
        let mut rotate = None;
        for setting in line.block.iter().flat_map(|block| &block.lines) {
            let key = setting.name();
            let example = match key.text.as_str() {
                "secret" => "secret 000102030405060708090a0b0c0d0e0f",
                "rotate" => "rotate 1h",
                other => {
                    let message =
                        format!("unknown cookies setting '{other}'; expected secret or rotate");
                    self.error(key, message);
                    continue;
                }
            };
            let [value] = setting.args() else {
                self.error(key, format!("expected one value: '{example}'"));
                continue;
            };
            if key.text == "secret" {
                match values::hex_bytes::<{ crate::cookie::SECRET_LEN }>(&value.text) {
                    Ok(bytes) => secret = Some(bytes),
                    Err(message) => self.error(value, format!("cookie secret: {message}")),
                }
                continue;
            }
            match values::duration(&value.text) {
                Ok(period) if period.is_zero() => rotate = Some(None),
                Ok(period) if period < Duration::from_secs(1) => self.error(
                    value,
                    "expected a rotation period of at least 1s, or 0 for never",
                ),
                Ok(period) if period > Duration::from_secs(COOKIE_ROTATE_S_MAX) => self.error(
                    value,
                    "expected a rotation period of at most a year (8760h)",
                ),
                Ok(period) => rotate = Some(Some(period)),
                Err(message) => self.error(value, message),
            }
        }
        if self.cookies.is_some() {
            self.error(name, "only one 'cookies' directive is allowed");
            return;
        }
        // A configured secret is shared with other servers (RFC 9018 §6):
        // changing it on our own would break that, so it stays unless asked.
        let rotate_default = match secret {
            Some(_) => None,
            None => Some(crate::cookie::ROTATE_DEFAULT),
        };
        self.cookies = Some(crate::cookie::CookieConfig {
            secret,
            rotate: rotate.unwrap_or(rotate_default),
        });
    }

    /// `prometheus [ADDR]`, `health [ADDR]`, `ready [ADDR]`: one address,
    /// CoreDNS's default without one. Blocks share the process, so the
    /// first address of each kind wins; a different one later is an error.
    fn http_endpoint(
        &mut self,
        line: &Line,
        default: &str,
        slot: impl Fn(&mut HttpEndpoints) -> &mut Option<std::net::SocketAddr>,
    ) {
        let name = line.name();
        let directive = name.text.clone();
        let args = line.args();
        if args.len() > 1 {
            self.error(
                &args[1],
                format!("expected at most one address: '{directive} [ADDR]'"),
            );
            return;
        }
        if let Some(block) = &line.block {
            for sub in &block.lines {
                let sub_name = sub.name();
                if directive == "health" && sub_name.text == "lameduck" {
                    // `lameduck DURATION`: on SIGTERM, report unhealthy this
                    // long before exiting, so load balancers drain first.
                    match sub.args() {
                        [duration] => match values::duration(&duration.text) {
                            Ok(duration) => self.http.lameduck = Some(duration),
                            Err(message) => self.error(duration, message),
                        },
                        _ => {
                            self.error(sub_name, "expected 'lameduck DURATION', e.g. 'lameduck 5s'")
                        }
                    }
                    continue;
                }
                let message = format!(
                    "'{}' in '{directive}' is not yet supported; ignored",
                    sub_name.text
                );
                self.warnings.push(sub_name.error(message));
            }
        }
        let text = args.first().map_or(default, |token| token.text.as_str());
        let address = match values::listen_address(text) {
            Ok(address) => address,
            Err(message) => {
                let at = args.first().unwrap_or(name).clone();
                self.error(&at, message);
                return;
            }
        };
        match *slot(&mut self.http) {
            None => *slot(&mut self.http) = Some(address),
            Some(earlier) if earlier == address => {}
            Some(earlier) => {
                self.error(
                    name,
                    format!("'{directive}' already listens on {earlier}; one address per process"),
                );
            }
        }
    }

    /// `file DBFILE [ZONES...] [{ reload DURATION }]`
    fn file(&mut self, server: &mut ServerBlock, line: &Line) {
        let name = line.name();
        let Some((path, zone_words)) = line.args().split_first() else {
            self.error(name, "expected a zone file path: 'file DBFILE [ZONES...]'");
            return;
        };

        let mut zones: Vec<String> = Vec::new();
        if zone_words.is_empty() {
            for key in &server.keys {
                if !zones.contains(&key.zone) {
                    zones.push(key.zone.clone());
                }
            }
        }
        for word in zone_words {
            let zone = match values::zone_name(&word.text) {
                Ok(zone) => zone,
                Err(message) => {
                    self.error(word, format!("file: {message}"));
                    continue;
                }
            };
            // CoreDNS only routes queries within the block's zones to it,
            // so a file for any other zone could never be asked.
            let inside =
                server.keys.is_empty() || server.keys.iter().any(|key| is_within(&zone, &key.zone));
            if !inside {
                let block_zones: Vec<&str> = server.keys.iter().map(|k| k.zone.as_str()).collect();
                let message = format!(
                    "zone '{zone}' is not within this server block's zones ({}); expected a zone at or below one of them",
                    block_zones.join(", ")
                );
                self.error(word, message);
                continue;
            }
            if !zones.contains(&zone) {
                zones.push(zone);
            }
        }

        for zone in &zones {
            if let Some(other) = server.files.iter().find(|f| f.zones.contains(zone)) {
                let message = format!(
                    "zone '{zone}' already gets its data from the 'file' directive at {}:{}",
                    other.config_file.display(),
                    other.line
                );
                self.error(name, message);
            }
        }

        let (reload, serve_unchanged_serial) = match &line.block {
            Some(block) => self.file_properties(block),
            None => (None, false),
        };
        server.files.push(FileZone {
            path: relative_to_file(&path.file, &path.text),
            zones,
            reload,
            serve_unchanged_serial,
            line: name.line,
            config_file: name.file.to_path_buf(),
        });
    }

    /// The block of a `file` directive: `reload DURATION` (CoreDNS) and
    /// `serve-unchanged-serial` (ringdns: a reloaded file whose data changed
    /// without a newer serial is served, with a warning, instead of kept
    /// out). Returns (reload, serve_unchanged_serial).
    fn file_properties(&mut self, block: &Block) -> (Option<Duration>, bool) {
        let mut reload: Option<(Duration, usize)> = None;
        let mut serve_unchanged_serial = false;
        for property in &block.lines {
            let name = property.name();
            if name.text == "serve-unchanged-serial" {
                if !property.args().is_empty() || property.block.is_some() {
                    self.error(name, "'serve-unchanged-serial' takes no arguments");
                }
                serve_unchanged_serial = true;
                continue;
            }
            if name.text != "reload" {
                let message = format!(
                    "unknown property '{}' in 'file' block; expected: reload, serve-unchanged-serial",
                    name.text
                );
                self.error(name, message);
                continue;
            }
            if property.block.is_some() {
                self.error(name, "'reload' takes no block; expected 'reload DURATION'");
                continue;
            }
            let [value] = property.args() else {
                self.error(
                    name,
                    "expected one duration after 'reload', like 'reload 30s'",
                );
                continue;
            };
            if let Some((_, first_line)) = reload {
                self.error(
                    name,
                    format!("'reload' is already set at line {first_line}"),
                );
                continue;
            }
            match values::duration(&value.text) {
                Ok(duration) => reload = Some((duration, name.line)),
                Err(message) => self.error(value, format!("reload: {message}")),
            }
        }
        (reload.map(|(duration, _)| duration), serve_unchanged_serial)
    }

    /// `bind ADDR...`
    fn bind(&mut self, server: &mut ServerBlock, line: &Line) {
        let name = line.name();
        if line.args().is_empty() {
            self.error(name, "expected at least one IP address after 'bind'");
        }
        if line.block.is_some() {
            self.error(name, "'bind' takes no block; expected 'bind ADDR...'");
        }
        for word in line.args() {
            if word.is_keyword("except") {
                self.error(
                    word,
                    "'bind ... except' is not supported by ringdns; expected IP addresses only",
                );
                return;
            }
            match values::ip_address(&word.text) {
                // Binding one address twice would fail at start-up for no
                // gain; the second mention adds nothing.
                Ok(address) if server.binds.contains(&address) => {}
                Ok(address) => server.binds.push(address),
                Err(message) => self.error(word, format!("bind: {message}")),
            }
        }
    }

    /// `engine { SETTING VALUE ... }`, at most once in the whole config
    /// because there is one engine per process.
    fn engine(&mut self, line: &Line) {
        let name = line.name();
        if let Some((_, first)) = &self.engine {
            let message = format!(
                "only one 'engine' directive is allowed; the first is at {}:{}",
                first.file.display(),
                first.line
            );
            self.error(name, message);
            return;
        }
        if let Some(arg) = line.args().first() {
            self.error(
                arg,
                "'engine' takes no arguments; expected 'engine {' with settings inside",
            );
        }
        let Some(block) = &line.block else {
            self.error(
                name,
                "expected '{' after 'engine', with settings like 'workers 4' inside",
            );
            self.engine = Some((EngineConfig::default(), name.clone()));
            return;
        };

        let mut engine = EngineConfig::default();
        self.for_each_setting(
            block,
            "engine",
            &ENGINE_SETTINGS,
            |resolver, setting, key, example| {
                let setting_name = setting.name();
                if setting.block.is_some() {
                    resolver.error(
                        setting_name,
                        format!("'{key}' takes no block; expected '{example}'"),
                    );
                    return;
                }
                if key == "cpus" {
                    // `cpus 0-3 6` and `cpus 0-3, 6` read as `cpus 0-3,6`.
                    let parts: Vec<&str> = setting
                        .args()
                        .iter()
                        .flat_map(|word| word.text.split(','))
                        .filter(|part| !part.is_empty())
                        .collect();
                    let Some(first) = setting.args().first() else {
                        resolver.error(
                            setting_name,
                            format!("expected a CPU list after 'cpus', like '{example}'"),
                        );
                        return;
                    };
                    match values::cpu_list(&parts.join(",")) {
                        Ok(cpus) => engine.cpus = Some(cpus),
                        Err(message) => resolver.error(first, format!("cpus: {message}")),
                    }
                    return;
                }
                let [value] = setting.args() else {
                    resolver.error(
                        setting_name,
                        format!("expected one value after '{key}', like '{example}'"),
                    );
                    return;
                };
                if let Err(message) = engine_setting(&mut engine, key, &value.text) {
                    resolver.error(value, format!("{key}: {message}"));
                }
            },
        );
        self.engine = Some((engine, name.clone()));
    }
}

impl Resolver<'_> {
    /// Calls `each` with every line of a settings block (`engine`, `tcp`)
    /// whose name is in `settings` (name, example), each name once, in
    /// order: an unknown name or a repeat is an error naming the line, and
    /// is skipped.
    fn for_each_setting(
        &mut self,
        block: &Block,
        what: &str,
        settings: &[(&'static str, &'static str)],
        mut each: impl FnMut(&mut Self, &Line, &'static str, &'static str),
    ) {
        let mut seen: Vec<(&str, usize)> = Vec::new();
        for setting in &block.lines {
            let setting_name = setting.name();
            let Some(&(key, example)) = settings.iter().find(|(key, _)| *key == setting_name.text)
            else {
                let valid: Vec<&str> = settings.iter().map(|(key, _)| *key).collect();
                let message = format!(
                    "unknown {what} setting '{}'; expected one of: {}",
                    setting_name.text,
                    valid.join(", ")
                );
                self.error(setting_name, message);
                continue;
            };
            if let Some((_, first_line)) = seen.iter().find(|(seen_key, _)| *seen_key == key) {
                let message = format!("'{key}' is already set at line {first_line}");
                self.error(setting_name, message);
                continue;
            }
            seen.push((key, setting_name.line));
            each(self, setting, key, example);
        }
    }
}

/// Sets one single-valued engine setting.
fn engine_setting(engine: &mut EngineConfig, key: &str, text: &str) -> Result<(), String> {
    match key {
        "workers" => engine.workers = Some(values::count(text, 1, WORKERS_MAX, "a worker count")?),
        "backend" => {
            engine.backend = match text {
                "auto" => Backend::Auto,
                "io_uring" => Backend::IoUring,
                "recvmmsg" => Backend::Recvmmsg,
                _ => return Err(format!("expected auto, io_uring or recvmmsg, got '{text}'")),
            }
        }
        "ring_entries" => {
            let power_of_two =
                || format!("expected a power of two from 1 to {RING_ENTRIES_MAX}, got '{text}'");
            let entries = values::count(text, 1, RING_ENTRIES_MAX, "a ring size")
                .map_err(|_| power_of_two())?;
            if !entries.is_power_of_two() {
                return Err(power_of_two());
            }
            engine.ring_entries = Some(u32::try_from(entries).map_err(|_| power_of_two())?);
        }
        "batch" => engine.batch = Some(values::count(text, 1, BATCH_MAX, "a batch size")?),
        "rcvbuf" => engine.rcvbuf = Some(values::size_bytes(text)?),
        "sndbuf" => engine.sndbuf = Some(values::size_bytes(text)?),
        // Only names from ENGINE_SETTINGS reach here; `cpus` is handled by
        // the caller because it takes several words.
        _ => return Err(format!("'{key}' is not a single-valued setting")),
    }
    Ok(())
}
