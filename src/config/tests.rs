//! End-to-end tests of the config module: Corefile text in, `Config` or
//! located errors out.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn parse_at(text: &str, path: &Path) -> (Config, Vec<ConfigError>) {
    let env = |name: &str| match name {
        "RINGDNS_TEST_ZONE" => Some("example.org".to_string()),
        "RINGDNS_TEST_ADDRS" => Some("192.0.2.1 192.0.2.2".to_string()),
        _ => None,
    };
    parse_with_env(text, path, &env)
}

fn parse(text: &str) -> (Config, Vec<ConfigError>) {
    parse_at(text, Path::new("Corefile"))
}

fn shown(errors: &[ConfigError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

fn ok(text: &str) -> Config {
    let (config, errors) = parse(text);
    assert!(
        errors.is_empty(),
        "unexpected errors: {:#?}",
        shown(&errors)
    );
    config
}

fn errors(text: &str) -> Vec<String> {
    let (_, errors) = parse(text);
    shown(&errors)
}

/// The single error `text` produces, as displayed.
fn one_error(text: &str) -> String {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors[0].clone()
}

fn key(zone: &str, port: u16) -> ServerKey {
    ServerKey {
        zone: zone.to_string(),
        port,
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A scratch directory for import tests, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ringdns-config-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.0.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// The seed's Corefiles (seed/running-my-own-authoritative-dns-server.md).

const SEED_PRIMARY: &str = "\
kevinmingtarja.com {
    file db.kevinmingtarja.com

    transfer {
        to 3.89.236.104
    }

    health :8080
    prometheus
    log
    errors
}
";

const SEED_SECONDARY: &str = "\
kevinmingtarja.com {
    secondary {
        transfer from 18.140.254.171
    }

    health :8080
    prometheus
    log
    errors
}
";

#[test]
fn seed_primary_resolves_with_its_transfer() {
    let config = ok(SEED_PRIMARY);
    assert!(config.warnings.is_empty(), "{:#?}", shown(&config.warnings));
    assert_eq!(config.http.health.unwrap().to_string(), "0.0.0.0:8080");
    assert_eq!(
        config.http.prometheus.unwrap().to_string(),
        "127.0.0.1:9153"
    );
    assert_eq!(config.http.ready, None);
    let transfers = &config.servers[0].transfers;
    assert_eq!(
        transfers,
        &[TransferZones {
            zones: vec!["kevinmingtarja.com.".to_string()],
            to: vec![TransferPeer {
                network: ip("3.89.236.104"),
                prefix: 32,
                any: false,
                notify: Some("3.89.236.104:53".parse().unwrap()),
                key: None,
            }],
            line: 4,
        }]
    );
    assert!(transfers[0].to[0].matches(ip("3.89.236.104")));
    assert!(!transfers[0].to[0].matches(ip("3.89.236.105")));
}

#[test]
fn seed_primary_without_transfer_resolves_fully() {
    let text = SEED_PRIMARY.replace("    transfer {\n        to 3.89.236.104\n    }\n", "");
    let config = ok(&text);
    assert!(config.warnings.is_empty());
    assert_eq!(config.servers.len(), 1);
    let server = &config.servers[0];
    assert_eq!(server.keys, [key("kevinmingtarja.com.", 53)]);
    assert!(server.binds.is_empty());
    assert!(server.log && server.errors);
    assert_eq!(server.line, 1);
    assert_eq!(
        server.files,
        [FileZone {
            path: PathBuf::from("db.kevinmingtarja.com"),
            zones: vec!["kevinmingtarja.com.".to_string()],
            reload: None,
            serve_unchanged_serial: false,
            line: 2,
            config_file: PathBuf::from("Corefile"),
        }]
    );
    assert_eq!(config.engine, EngineConfig::default());
}

#[test]
fn seed_secondary_resolves_with_its_primary() {
    let config = ok(SEED_SECONDARY);
    assert!(config.warnings.is_empty());
    let secondaries = &config.servers[0].secondaries;
    assert_eq!(secondaries.len(), 1);
    assert_eq!(secondaries[0].zones, ["kevinmingtarja.com."]);
    assert_eq!(
        secondaries[0].from,
        [("18.140.254.171:53".parse().unwrap(), None)]
    );
}

#[test]
fn replication_directives_with_ports_keys_networks_and_timers() {
    let text = "a.org:1053 {\n secondary {\n  transfer from 192.0.2.1:5300 [2001:db8::1]:53 key k1\n  refresh-min 1m\n  expire-max 1h\n }\n transfer {\n  to * \n  to 10.0.0.0/8 key k1.\n }\n tsig {\n  secret k1 c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\n  require AXFR IXFR\n }\n storage /var/lib/x\n}";
    let config = ok(text);
    let server = &config.servers[0];
    let secondary = &server.secondaries[0];
    assert_eq!(
        secondary.from,
        [
            ("192.0.2.1:5300".parse().unwrap(), Some("k1.".to_string())),
            ("[2001:db8::1]:53".parse().unwrap(), Some("k1.".to_string())),
        ]
    );
    assert_eq!((secondary.refresh_min, secondary.expire_max), (60, 3600));
    let to = &server.transfers[0].to;
    assert!(to[0].any && to[0].notify.is_none() && to[0].matches(ip("2001:db8::5")));
    assert_eq!((to[1].prefix, to[1].key.as_deref()), (8, Some("k1.")));
    assert!(to[1].matches(ip("10.1.2.3")) && !to[1].matches(ip("11.0.0.1")));
    assert_eq!(config.tsig_secrets.len(), 1);
    assert_eq!(server.tsig_requires[0].qtypes, [Some(252), Some(251)]);
    assert_eq!(config.storage, Some(PathBuf::from("/var/lib/x")));
}

#[test]
fn replication_directive_errors_name_the_line_and_what_was_expected() {
    assert_eq!(
        one_error("a.org {\n transfer {\n  to 300.1.1.1\n }\n}"),
        "Corefile:3: expected an address like 192.0.2.1, 192.0.2.1:5300 or [2001:db8::1]:5300, got '300.1.1.1'"
    );
    assert_eq!(
        one_error("a.org {\n transfer {\n  to 10.0.0.1 key\n }\n}"),
        "Corefile:3: expected 'to ADDRESS... key KEYNAME' with one key name last"
    );
    assert_eq!(
        one_error("a.org {\n secondary {\n  refresh-min 1m\n }\n}"),
        "Corefile:2: expected 'transfer from ADDRESS...' in the secondary block"
    );
    assert_eq!(
        one_error("a.org {\n file db\n secondary {\n  transfer from 192.0.2.1\n }\n}"),
        "Corefile:3: zone 'a.org.' already gets its data from another 'file' or 'secondary' directive in this block"
    );
    assert!(
        one_error("a.org {\n tsig {\n  secret k1 not*base64\n }\n}").starts_with("Corefile:3: "),
    );
    assert_eq!(
        one_error(
            "a.org {\n transfer {\n  to 10.0.0.1 key k2\n }\n tsig {\n  secret k1 c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\n }\n}"
        ),
        "Corefile:3: key 'k2.' has no secret; expected a 'secret k2. BASE64SECRET' line in a 'tsig' block"
    );
    assert_eq!(
        one_error("a.org {\n transfer b.org {\n  to *\n }\n}"),
        "Corefile:2: transfer: zone 'b.org.' is not within this server block's zones; expected a zone at or below one of them"
    );
}

#[test]
fn public_parse_str_returns_errors_and_display_format() {
    let errors =
        parse_str("a.org {\n\n log\n\n\n\n fiel db\n}", Path::new("Corefile")).unwrap_err();
    assert_eq!(
        shown(&errors),
        [
            "Corefile:7: unknown directive 'fiel'; expected one of: bind, errors, file, log, engine, prometheus, health, ready, nsid, rrl, cookies, transfer, secondary, tsig, storage, tcp"
        ]
    );
    let config = parse_str("a.org {\n file db\n}", Path::new("Corefile")).unwrap();
    assert_eq!(config.servers.len(), 1);
}

#[test]
fn module_doc_example_parses() {
    // The example in the module documentation must stay true.
    let source = include_str!("mod.rs");
    let start = source.find("//! ```text\n").expect("example start") + "//! ```text\n".len();
    let end = start + source[start..].find("//! ```").expect("example end");
    let example: String = source[start..end]
        .lines()
        .map(|line| {
            line.strip_prefix("//!")
                .unwrap_or(line)
                .strip_prefix(' ')
                .unwrap_or("")
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let dir = TempDir::new("doc");
    let (config, errors) = parse_at(&example, &dir.0.join("Corefile"));
    assert!(errors.is_empty(), "{:#?}", shown(&errors));
    assert_eq!(config.warnings.len(), 1, "{:#?}", shown(&config.warnings));
    assert!(config.warnings[0].message.contains("matches no files"));
    let server = &config.servers[0];
    assert_eq!(
        server.keys,
        [key("example.org.", 53), key("example.net.", 1053)]
    );
    assert_eq!(server.files.len(), 2);
    assert_eq!(server.files[0].reload, Some(Duration::from_secs(60)));
    assert_eq!(server.binds, [ip("192.0.2.1"), ip("::1")]);
    assert!(server.log && server.errors);
    assert_eq!(config.engine.workers, Some(4));
    assert_eq!(config.engine.backend, Backend::IoUring);
}

// Server blocks and keys.

#[test]
fn keys_zones_and_ports() {
    let config = ok("Example.ORG, b.org:5353 dns://c.org.:1053,.\n{\n}\n:54 {\n}\n");
    assert_eq!(
        config.servers[0].keys,
        [
            key("example.org.", 53),
            key("b.org.", 5353),
            key("c.org.", 1053),
            key(".", 53)
        ]
    );
    assert_eq!(config.servers[1].keys, [key(".", 54)]);
    assert_eq!(config.servers[1].line, 4);
}

#[test]
fn keys_may_continue_after_a_trailing_comma() {
    let config = ok("a.org,\n  b.org {\n}");
    assert_eq!(
        config.servers[0].keys,
        [key("a.org.", 53), key("b.org.", 53)]
    );
}

#[test]
fn other_schemes_are_rejected() {
    let error = one_error("tls://a.org {\n}");
    assert!(
        error.starts_with("Corefile:1: scheme 'tls://' is not supported"),
        "{error}"
    );
    assert!(one_error("a.org https://b.org {\n}").contains("'https://'"));
    assert!(one_error("grpc://a.org {\n}").contains("expected 'dns://' or no scheme"));
}

#[test]
fn bad_keys_are_errors() {
    assert!(one_error("a..org {\n}").starts_with("Corefile:1: expected a zone name"));
    assert!(one_error("\n\na.org:99999 {\n}").starts_with("Corefile:3: expected a port number"));
    assert!(one_error(", {\n}").contains("expected a zone name like 'example.org' before '{'"));
}

#[test]
fn same_zone_and_port_in_two_blocks_names_both_lines() {
    let error = one_error("a.org {\n}\n\nb.org A.org. {\n}");
    assert_eq!(
        error,
        "Corefile:4: zone 'a.org.' on port 53 is already served by the server block at Corefile:1"
    );
    // Another port is another server.
    let config = ok("a.org {\n}\na.org:1053 {\n}");
    assert_eq!(config.servers.len(), 2);
}

#[test]
fn bare_key_without_braces_is_one_error() {
    let error = one_error("example.org\nfile db.example.org {\n reload 1s\n}\nlog\n");
    assert!(
        error.starts_with("Corefile:1: expected '{' after server block key 'example.org'"),
        "{error}"
    );
}

#[test]
fn empty_config_is_an_error() {
    assert!(one_error("# nothing here\n").contains("expected at least one"));
}

#[test]
fn brace_errors_name_their_lines() {
    assert_eq!(
        one_error("a.org {\n log\n}\n}\n"),
        "Corefile:4: unexpected '}'; no block is open here"
    );
    let error = one_error("a.org {\n log\n");
    assert!(
        error.starts_with("Corefile:1: block opened here is never closed; expected '}'"),
        "{error}"
    );
    assert!(
        one_error("a.org {\n file db{\n}\n}")
            .starts_with("Corefile:2: expected a space between 'db' and '{'")
    );
}

#[test]
fn several_errors_are_collected_in_one_pass() {
    let text =
        "a.org {\n fiel db\n bind eth0\n file\n}\nb.org {\n engine {\n  workers 0\n }\n}\n}\n";
    let errors = errors(text);
    assert_eq!(errors.len(), 5, "{errors:#?}");
    for (error, line) in errors.iter().zip(["11", "2", "3", "4", "8"]) {
        assert!(error.starts_with(&format!("Corefile:{line}: ")), "{error}");
    }
}

// Directives.

#[test]
fn file_zones_default_to_the_block_zones_without_repeats() {
    let config = ok("a.org b.org a.org:1053 {\n file db\n}");
    assert_eq!(config.servers[0].files[0].zones, ["a.org.", "b.org."]);
}

#[test]
fn file_zone_arguments_must_be_within_the_block() {
    let config = ok("a.org b.org {\n file db.a A.org\n file db.sub sub.B.org.\n}");
    assert_eq!(config.servers[0].files[0].zones, ["a.org."]);
    assert_eq!(config.servers[0].files[1].zones, ["sub.b.org."]);
    assert_eq!(
        one_error("a.org {\n file db c.org\n}"),
        "Corefile:2: zone 'c.org.' is not within this server block's zones (a.org.); expected a zone at or below one of them"
    );
    assert!(
        ok(". {\n file db anything.example\n}").servers[0].files[0].zones == ["anything.example."]
    );
}

#[test]
fn file_needs_a_path() {
    assert_eq!(
        one_error("a.org {\n file\n}"),
        "Corefile:2: expected a zone file path: 'file DBFILE [ZONES...]'"
    );
}

#[test]
fn two_files_for_one_zone_is_an_error() {
    assert_eq!(
        one_error("a.org {\n file db1\n file db2 a.org\n}"),
        "Corefile:3: zone 'a.org.' already gets its data from the 'file' directive at Corefile:2"
    );
}

#[test]
fn file_paths_are_relative_to_the_config_directory() {
    let (config, errors) = parse_at(
        "a.org {\n file db.a\n}\nb.org {\n file /var/db.b\n}",
        Path::new("/etc/ringdns/Corefile"),
    );
    assert!(errors.is_empty());
    assert_eq!(
        config.servers[0].files[0].path,
        PathBuf::from("/etc/ringdns/db.a")
    );
    assert_eq!(config.servers[1].files[0].path, PathBuf::from("/var/db.b"));
}

#[test]
fn file_reload() {
    let config =
        ok("a.org {\n file db {\n  reload 1h30m\n }\n}\nb.org {\n file db.b {\n  reload 0\n }\n}");
    assert_eq!(
        config.servers[0].files[0].reload,
        Some(Duration::from_secs(5400))
    );
    assert_eq!(config.servers[1].files[0].reload, Some(Duration::ZERO));
    assert_eq!(
        one_error("a.org {\n file db {\n  reload 5x\n }\n}"),
        "Corefile:3: reload: expected a duration like 30s, 1m, 1h30m or 500ms, got '5x'"
    );
    assert_eq!(
        one_error("a.org {\n file db {\n  reload\n }\n}"),
        "Corefile:3: expected one duration after 'reload', like 'reload 30s'"
    );
    assert_eq!(
        one_error("a.org {\n file db {\n  reload 1s\n  reload 2s\n }\n}"),
        "Corefile:4: 'reload' is already set at line 3"
    );
    assert_eq!(
        one_error("a.org {\n file db {\n  upstream\n }\n}"),
        "Corefile:3: unknown property 'upstream' in 'file' block; expected: reload, serve-unchanged-serial"
    );
}

#[test]
fn bind_addresses() {
    let config = ok("a.org {\n bind 127.0.0.1 ::1 [::2]\n bind 127.0.0.1 192.0.2.1\n}");
    assert_eq!(
        config.servers[0].binds,
        [ip("127.0.0.1"), ip("::1"), ip("::2"), ip("192.0.2.1")]
    );
    let error = one_error("a.org {\n bind lo\n}");
    assert!(
        error.starts_with("Corefile:2: bind: expected an IP address"),
        "{error}"
    );
    assert_eq!(
        one_error("a.org {\n bind\n}"),
        "Corefile:2: expected at least one IP address after 'bind'"
    );
    assert!(one_error("a.org {\n bind 0.0.0.0 except 1.2.3.4\n}").contains("except"));
}

#[test]
fn log_and_errors_ignore_their_arguments() {
    let config = ok(
        "a.org {\n log . \"{remote} {name}\" {\n  class denial\n }\n errors {\n  consolidate 5m \".* i/o timeout$\"\n }\n}",
    );
    assert!(config.servers[0].log && config.servers[0].errors);
    assert_eq!(
        config.servers[0].log_classes,
        LogClasses {
            success: false,
            denial: true,
            error: false
        }
    );
    assert_eq!(
        shown(&config.warnings),
        [
            "Corefile:2: log names and formats are not yet supported; every query is logged in the default format"
        ]
    );
    let config = ok("a.org {\n}");
    assert!(!config.servers[0].log && !config.servers[0].errors);
    assert!(
        one_error("a.org {\n log {\n  class failures\n }\n}")
            .contains("unknown log class 'failures'")
    );
}

#[test]
fn http_endpoints_take_coredns_defaults_and_addresses() {
    let config =
        ok("a.org {\n health :8080 {\n  lameduck 5s\n }\n ready\n prometheus [::1]:9253\n}");
    assert!(config.warnings.is_empty(), "{:#?}", shown(&config.warnings));
    assert_eq!(
        config.http.lameduck,
        Some(std::time::Duration::from_secs(5))
    );
    assert_eq!(config.http.health.unwrap().to_string(), "0.0.0.0:8080");
    assert_eq!(config.http.ready.unwrap().to_string(), "0.0.0.0:8181");
    assert_eq!(config.http.prometheus.unwrap().to_string(), "[::1]:9253");
    // The same address in two blocks is fine; a different one is not.
    ok("a.org {\n prometheus\n}\nb.org {\n prometheus localhost:9153\n}");
    assert!(
        one_error("a.org {\n prometheus\n}\nb.org {\n prometheus :9999\n}")
            .contains("already listens on 127.0.0.1:9153")
    );
    assert!(one_error("a.org {\n health 8080\n}").contains("expected an address like"));
    assert!(one_error("a.org {\n ready :1 :2\n}").contains("at most one address"));
}

#[test]
fn reload_directive_takes_coredns_arguments() {
    assert_eq!(
        ok("a.org {\n reload\n}").reload,
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        ok("a.org {\n reload 10s 5s\n}").reload,
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        one_error("a.org {\n reload 1s\n}"),
        "Corefile:2: reload: expected an interval of at least 2s"
    );
}

#[test]
fn engine_settings() {
    let text = "a.org {\n engine {\n  workers 4\n  cpus 0-2, 6 8\n  backend io_uring\n  ring_entries 4096\n  batch 64\n  rcvbuf 4M\n  sndbuf 212992\n }\n}";
    let config = ok(text);
    assert_eq!(
        config.engine,
        EngineConfig {
            workers: Some(4),
            cpus: Some(vec![0, 1, 2, 6, 8]),
            backend: Backend::IoUring,
            ring_entries: Some(4096),
            batch: Some(64),
            rcvbuf: Some(4 << 20),
            sndbuf: Some(212992),
        }
    );
    assert_eq!(
        ok("a.org {\n engine {\n  backend recvmmsg\n }\n}")
            .engine
            .backend,
        Backend::Recvmmsg
    );
    assert_eq!(
        ok("a.org {\n engine {\n }\n}").engine,
        EngineConfig::default()
    );
}

#[test]
fn engine_errors() {
    let engine = |body: &str| one_error(&format!("a.org {{\n engine {{\n  {body}\n }}\n}}"));
    assert_eq!(
        engine("threads 4"),
        "Corefile:3: unknown engine setting 'threads'; expected one of: workers, cpus, backend, ring_entries, batch, rcvbuf, sndbuf"
    );
    assert_eq!(
        engine("workers 0"),
        "Corefile:3: workers: expected a worker count from 1 to 1024, got '0'"
    );
    assert_eq!(
        engine("workers"),
        "Corefile:3: expected one value after 'workers', like 'workers 4'"
    );
    assert_eq!(
        engine("backend xdp"),
        "Corefile:3: backend: expected auto, io_uring or recvmmsg, got 'xdp'"
    );
    assert_eq!(
        engine("ring_entries 1000"),
        "Corefile:3: ring_entries: expected a power of two from 1 to 32768, got '1000'"
    );
    assert!(engine("batch 5000").contains("batch: expected a batch size from 1 to 1024"));
    assert!(engine("rcvbuf 4Q").contains("rcvbuf: expected a size in bytes"));
    assert!(engine("sndbuf 0").contains("sndbuf: expected a size in bytes"));
    assert!(engine("cpus 3-1").contains("cpus: expected a CPU list"));
    assert!(engine("cpus").contains("expected a CPU list after 'cpus'"));
    assert_eq!(
        one_error("a.org {\n engine {\n  batch 8\n  batch 16\n }\n}"),
        "Corefile:4: 'batch' is already set at line 3"
    );
    assert!(one_error("a.org {\n engine fast {\n }\n}").contains("'engine' takes no arguments"));
    assert!(one_error("a.org {\n engine\n}").contains("expected '{' after 'engine'"));
}

#[test]
fn second_engine_names_the_first() {
    let error = one_error("a.org {\n engine {\n }\n}\nb.org {\n engine {\n  workers 2\n }\n}");
    assert_eq!(
        error,
        "Corefile:6: only one 'engine' directive is allowed; the first is at Corefile:2"
    );
}

#[test]
fn environment_references_are_substituted() {
    let config = ok(
        "{$RINGDNS_TEST_ZONE} {\n bind {$RINGDNS_TEST_ADDRS}{%RINGDNS_UNSET%}\n file db.{%RINGDNS_TEST_ZONE%}\n}",
    );
    let server = &config.servers[0];
    assert_eq!(server.keys, [key("example.org.", 53)]);
    assert_eq!(server.binds, [ip("192.0.2.1"), ip("192.0.2.2")]);
    assert_eq!(server.files[0].path, PathBuf::from("db.example.org"));
}

// Snippets and imports.

#[test]
fn snippets_paste_directives_and_blocks() {
    let text = "(common) {\n log\n errors\n}\n(server) {\n c.org {\n  import common\n }\n}\na.org {\n import common\n file db\n}\nimport server\n";
    let config = ok(text);
    assert_eq!(config.servers.len(), 2);
    assert!(config.servers[0].log && config.servers[0].errors);
    assert_eq!(config.servers[1].keys, [key("c.org.", 53)]);
    assert!(config.servers[1].errors);
    assert_eq!(
        config.servers[1].line, 6,
        "pasted lines keep the line they were written on"
    );
}

#[test]
fn errors_inside_a_snippet_point_at_the_snippet() {
    assert!(
        one_error("(bad) {\n  fiel\n}\na.org {\n import bad\n}")
            .starts_with("Corefile:2: unknown directive 'fiel'")
    );
}

#[test]
fn snippet_errors() {
    let error = one_error("a.org {\n import common\n}\n(common) {\n log\n}");
    assert!(
        error.starts_with("Corefile:2: 'import common': no snippet of that name is defined above"),
        "{error}"
    );
    assert_eq!(
        one_error("(a) {\n}\n(a) {\n}\nx.org {\n}"),
        "Corefile:3: snippet 'a' is already defined at Corefile:1"
    );
    assert!(
        one_error("(a) b.org {\n}\nx.org {\n}").contains("a snippet definition must stand alone")
    );
    assert!(one_error("(a)\nx.org {\n}").contains("expected '{' after snippet name '(a)'"));
    assert!(
        one_error("x.org {\n import\n}")
            .contains("expected exactly one snippet name or file pattern")
    );
}

#[test]
fn snippet_cycle_shows_the_chain() {
    let error = one_error("(a) {\n import b\n}\n(b) {\n import a\n}\nx.org {\n import a\n}");
    assert_eq!(
        error,
        "Corefile:5: import cycle: snippet 'a' -> snippet 'b' -> snippet 'a'"
    );
}

#[test]
fn file_imports_with_globs_relative_to_the_importing_file() {
    let dir = TempDir::new("glob");
    let corefile = dir.write("Corefile", "import conf.d/*.conf\n(common) {\n log\n}\n");
    dir.write("conf.d/b.conf", "b.org {\n file db.b\n}\n");
    dir.write(
        "conf.d/a.conf",
        "a.org {\n import ../shared/common.txt\n}\n",
    );
    dir.write("conf.d/ignored.txt", "not { a config }\n");
    dir.write("shared/common.txt", "errors\nfile db.a\n");
    let config = load(&corefile).unwrap();
    let zones: Vec<&str> = config
        .servers
        .iter()
        .map(|s| s.keys[0].zone.as_str())
        .collect();
    assert_eq!(zones, ["a.org.", "b.org."], "sorted by file name");
    assert!(config.servers[0].errors);
    assert_eq!(config.servers[0].config_file, dir.0.join("conf.d/a.conf"));
    // `file` paths follow the file the directive is written in.
    assert_eq!(
        config.servers[0].files[0].path,
        dir.0.join("conf.d/../shared/db.a")
    );
    assert_eq!(config.servers[1].files[0].path, dir.0.join("conf.d/db.b"));
}

#[test]
fn errors_in_imported_files_name_that_file_and_line() {
    let dir = TempDir::new("errors");
    let corefile = dir.write("Corefile", "a.org {\n import inner.conf\n}\n");
    let inner = dir.write("inner.conf", "log\n\nfiel db\n");
    let errors = load(&corefile).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0].file.as_path(), errors[0].line),
        (inner.as_path(), 3)
    );
    assert!(errors[0].message.starts_with("unknown directive 'fiel'"));
}

#[test]
fn missing_import_and_empty_glob() {
    let dir = TempDir::new("missing");
    let corefile = dir.write(
        "Corefile",
        "import none.conf\nimport conf.d/*.conf\na.org {\n}\n",
    );
    fs::create_dir_all(dir.0.join("conf.d")).unwrap();
    let (config, errors) = parse_at(&fs::read_to_string(&corefile).unwrap(), &corefile);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].line, 1);
    assert!(errors[0].message.contains("cannot read"), "{}", errors[0]);
    assert_eq!(config.warnings.len(), 1);
    assert_eq!(config.warnings[0].line, 2);
    assert!(config.warnings[0].message.contains("matches no files"));
}

#[test]
fn file_import_cycle_shows_the_chain() {
    let dir = TempDir::new("cycle");
    let corefile = dir.write("Corefile", "import a.conf\nx.org {\n}\n");
    let a = dir.write("a.conf", "import ./b.conf\n");
    let b = dir.write("b.conf", "\nimport a.conf\n");
    let errors = load(&corefile).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].file.as_path(), errors[0].line), (b.as_path(), 2));
    assert_eq!(
        errors[0].message,
        format!(
            "import cycle: {} -> {} -> {}",
            a.display(),
            dir.0.join("./b.conf").display(),
            a.display()
        )
    );
}

#[test]
fn importing_itself_through_a_glob_is_a_cycle() {
    let dir = TempDir::new("self");
    let corefile = dir.write("Corefile", "x.org {\n}\nimport Core*\n");
    let errors = load(&corefile).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].message.starts_with("import cycle:"),
        "{}",
        errors[0]
    );
}

#[test]
fn load_reports_an_unreadable_file_without_a_line() {
    let errors = load(Path::new("/nonexistent/ringdns/Corefile")).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 0);
    assert!(
        errors[0]
            .to_string()
            .starts_with("/nonexistent/ringdns/Corefile: cannot read")
    );
}

#[test]
fn importing_a_device_is_an_error_not_an_endless_read() {
    let result = parse_str(
        "import /dev/zero\nexample.org {\n    log\n}\n",
        Path::new("Corefile"),
    );
    let Err(errors) = result else {
        panic!("importing /dev/zero must fail")
    };
    assert!(
        errors
            .iter()
            .any(|error| error.message.contains("not a regular file")),
        "{errors:#?}"
    );
}

#[test]
fn nsid_takes_its_words_or_the_host_name() {
    assert_eq!(
        ok("a.org {\n nsid ns1 in paris\n}").nsid.as_deref(),
        Some("ns1 in paris")
    );
    let host = ok("a.org {\n nsid\n}").nsid.unwrap();
    assert!(!host.is_empty());
    assert_eq!(ok("a.org {\n}").nsid, None);
}

#[test]
fn rrl_settings() {
    let config = ok(
        "a.org {\n rrl {\n  responses-per-second 10\n  nxdomains-per-second 2\n  slip-ratio 3\n  exempt 192.0.2.0/24 ::1\n }\n}",
    );
    let rrl = config.rrl.unwrap();
    assert_eq!(rrl.rates, [10, 10, 2, 10, 10]);
    assert_eq!(rrl.slip, 3);
    assert_eq!(rrl.exempt.len(), 2);
    assert!(
        one_error("a.org {\n rrl {\n  responses-per-second many\n }\n}")
            .contains("expected a whole number")
    );
    assert!(one_error("a.org {\n rrl {\n  burst 5\n }\n}").contains("unknown rrl setting 'burst'"));
    assert!(
        one_error("a.org {\n rrl {\n  exempt 192.0.2.0/33\n }\n}").contains("expected a network")
    );
}

#[test]
fn cookies_settings() {
    use crate::cookie::{CookieConfig, ROTATE_DEFAULT};
    assert_eq!(ok("a.org {\n}").cookies, None);
    // Bare: a random secret, rotated hourly.
    assert_eq!(
        ok("a.org {\n cookies\n}").cookies,
        Some(CookieConfig {
            secret: None,
            rotate: Some(ROTATE_DEFAULT),
        })
    );
    // A shared secret stays as written unless a rotation is asked for.
    let secret: [u8; 16] = std::array::from_fn(|index| index as u8 * 0x11);
    let config = ok("a.org {\n cookies {\n  secret 00112233445566778899AaBbCcDdEeFf\n }\n}");
    assert_eq!(
        config.cookies,
        Some(CookieConfig {
            secret: Some(secret),
            rotate: None,
        })
    );
    let config =
        ok("a.org {\n cookies {\n  secret 00112233445566778899aabbccddeeff\n  rotate 24h\n }\n}");
    assert_eq!(
        config.cookies.as_ref().unwrap().rotate,
        Some(Duration::from_secs(86400))
    );
    assert_eq!(
        ok("a.org {\n cookies {\n  rotate 0\n }\n}")
            .cookies
            .unwrap()
            .rotate,
        None
    );
    // In another block, as rrl: process-wide.
    assert!(ok("a.org {\n}\nb.org {\n cookies\n}").cookies.is_some());
    // The secret never shows in Debug output.
    assert!(!format!("{config:?}").contains("aabb"));

    assert_eq!(
        one_error("a.org {\n cookies {\n  secret 0011\n }\n}"),
        "Corefile:3: cookie secret: expected 32 hex digits (16 bytes), got '0011'"
    );
    assert!(
        one_error("a.org {\n cookies {\n  secret 00112233445566778899aabbccddeefg\n }\n}")
            .starts_with("Corefile:3: cookie secret: expected 32 hex digits")
    );
    assert_eq!(
        one_error("a.org {\n cookies {\n  rotate soon\n }\n}"),
        "Corefile:3: expected a duration like 30s, 1m, 1h30m or 500ms, got 'soon'"
    );
    assert_eq!(
        one_error("a.org {\n cookies {\n  rotate 10ms\n }\n}"),
        "Corefile:3: expected a rotation period of at least 1s, or 0 for never"
    );
    assert_eq!(
        one_error("a.org {\n cookies {\n  enforce\n }\n}"),
        "Corefile:3: unknown cookies setting 'enforce'; expected secret or rotate"
    );
    assert_eq!(
        one_error("a.org {\n cookies {\n  rotate\n }\n}"),
        "Corefile:3: expected one value: 'rotate 1h'"
    );
    assert!(
        one_error("a.org {\n cookies on\n}")
            .starts_with("Corefile:2: 'cookies' takes no arguments")
    );
    assert_eq!(
        one_error("a.org {\n cookies\n}\nb.org {\n cookies\n}"),
        "Corefile:5: only one 'cookies' directive is allowed"
    );
}
