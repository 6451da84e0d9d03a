//! From a validated config to what the server serves: which zone files to
//! load for which origins, which addresses to listen on, and the compiled
//! table. Shared by `ringdns` (serve) and `ringdns check`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use crate::compile::{self, AnswerTable, ZoneInput};
use crate::config::{self, Config};
use crate::wire::name;
use crate::zone::{self, Zone, ZoneProblem};

/// One zone to serve from one file.
#[derive(Clone, Debug)]
pub struct ZoneSource {
    /// Apex in presentation format, as configured (e.g. "example.com.").
    pub origin_text: String,
    pub origin: Vec<u8>,
    pub path: PathBuf,
    /// `serve-unchanged-serial` in its `file` block.
    pub serve_unchanged_serial: bool,
}

/// Every zone the config asks for, once each (the config parser already
/// rejects one zone served twice on one port).
pub fn zone_sources(config: &Config) -> Vec<ZoneSource> {
    let mut sources: BTreeMap<Vec<u8>, ZoneSource> = BTreeMap::new();
    for block in &config.servers {
        for file in &block.files {
            for origin_text in &file.zones {
                let Some(origin) = name::from_text(origin_text) else {
                    continue;
                };
                sources.entry(origin.clone()).or_insert_with(|| ZoneSource {
                    origin_text: origin_text.clone(),
                    origin,
                    path: file.path.clone(),
                    serve_unchanged_serial: file.serve_unchanged_serial,
                });
            }
        }
    }
    sources.into_values().collect()
}

/// Every `secondary` zone: (origin text, origin, its settings).
pub fn secondary_sources(config: &Config) -> Vec<(String, Vec<u8>, config::SecondaryZones)> {
    let mut sources: BTreeMap<Vec<u8>, (String, Vec<u8>, config::SecondaryZones)> = BTreeMap::new();
    for block in &config.servers {
        for secondary in &block.secondaries {
            for origin_text in &secondary.zones {
                let Some(origin) = name::from_text(origin_text) else {
                    continue;
                };
                sources
                    .entry(origin.clone())
                    .or_insert_with(|| (origin_text.clone(), origin, secondary.clone()));
            }
        }
    }
    sources.into_values().collect()
}

/// Zone `origin_text`'s `transfer { to … }` peers and the query types
/// `tsig { require … }` wants signed, from every block that names it.
pub fn transfer_settings(
    config: &Config,
    origin_text: &str,
) -> (Vec<config::TransferPeer>, Vec<Option<u16>>) {
    let mut peers = Vec::new();
    let mut required = Vec::new();
    for block in &config.servers {
        for transfer in &block.transfers {
            if transfer.zones.iter().any(|zone| zone == origin_text) {
                peers.extend(transfer.to.iter().cloned());
            }
        }
        for require in &block.tsig_requires {
            if require.zones.iter().any(|zone| zone == origin_text) {
                required.extend(require.qtypes.iter().copied());
            }
        }
    }
    (peers, required)
}

/// The process's TSIG keys (`tsig { secret … }`); the config parser has
/// checked each already.
pub fn tsig_keys(config: &Config) -> Vec<crate::tsig::Key> {
    config
        .tsig_secrets
        .iter()
        .filter_map(|secret| {
            crate::tsig::Key::new(&secret.name, &secret.algorithm, &secret.secret).ok()
        })
        .collect()
}

/// The outcome of loading one zone.
pub struct LoadedZone {
    pub source: ZoneSource,
    /// The files the zone was read from (its `$INCLUDE`s too), for the
    /// reload watcher.
    pub files: Vec<PathBuf>,
    pub zone: Result<Zone, Vec<ZoneProblem>>,
    pub warnings: Vec<ZoneProblem>,
}

pub fn load_zones(sources: &[ZoneSource]) -> Vec<LoadedZone> {
    sources
        .iter()
        .map(
            |source| match zone::load_file(&source.origin, &source.path) {
                Ok(loaded) => LoadedZone {
                    source: source.clone(),
                    files: loaded.files,
                    zone: Ok(loaded.zone),
                    warnings: loaded.warnings,
                },
                Err(problems) => LoadedZone {
                    source: source.clone(),
                    files: vec![source.path.clone()],
                    zone: Err(problems),
                    warnings: Vec::new(),
                },
            },
        )
        .collect()
}

/// Compiles every zone; a zone that failed to load answers SERVFAIL.
/// `nsid` is the identifier replies carry when asked (RFC 5001).
pub fn compile_zones(zones: &[LoadedZone], nsid: Option<&str>) -> AnswerTable {
    let inputs: Vec<ZoneInput<'_>> = zones
        .iter()
        .map(|loaded| match &loaded.zone {
            Ok(zone) => ZoneInput::Loaded(zone),
            Err(_) => ZoneInput::Failed {
                origin: loaded.source.origin.clone(),
            },
        })
        .collect();
    let mut table = compile::compile(&inputs);
    if let Some(nsid) = nsid {
        table.set_nsid(nsid.as_bytes());
    }
    table
}

/// What `/metrics` reports of each zone: (name, serial, records, loaded).
pub fn zone_summaries(zones: &[LoadedZone]) -> Vec<(String, u32, usize, bool)> {
    zones
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
        .collect()
}

/// Every address to listen on: each `bind` address (or both wildcards)
/// on each port of the block's keys.
pub fn listen_addresses(config: &Config) -> Vec<SocketAddr> {
    let mut addresses = Vec::new();
    for block in &config.servers {
        let ips: Vec<IpAddr> = if block.binds.is_empty() {
            vec![
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ]
        } else {
            block.binds.clone()
        };
        for key in &block.keys {
            for ip in &ips {
                let address = SocketAddr::new(*ip, key.port);
                if !addresses.contains(&address) {
                    addresses.push(address);
                }
            }
        }
    }
    addresses
}

/// Prints each zone's problems; returns how many zones failed. `serving`
/// says what a failed zone means for a running server.
pub fn report_zones(zones: &[LoadedZone], serving: bool) -> usize {
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

/// A zone file and every file it read (its `$INCLUDE`s), for the watcher.
pub type ZoneFiles = (std::path::PathBuf, Vec<std::path::PathBuf>);

/// The zones to serve, as the slow path keeps them: file zones loaded now
/// (a failed one is kept, unloaded, to answer SERVFAIL), secondary zones
/// from their copy on disk when it has not expired. Returns them and how
/// many file zones failed.
pub fn served_zones(
    config: &config::Config,
    storage: &std::path::Path,
) -> (
    Vec<crate::slowpath::zones::ServedZone>,
    usize,
    Vec<ZoneFiles>,
) {
    use crate::slowpath::zones::{JOURNAL_BYTES_MAX, ServedZone, Source, storage_file};
    let journal = |origin_text: &str, peers: &[config::TransferPeer], serial: u32| {
        if peers.is_empty() {
            // Nobody may transfer the zone: no IXFR to serve.
            crate::slowpath::journal::Journal::in_memory(0)
        } else {
            if let Err(error) = std::fs::create_dir_all(storage) {
                eprintln!(
                    "ringdns: warning: cannot create the storage directory {}: {error}",
                    storage.display()
                );
            }
            let path = storage_file(storage, origin_text, "journal");
            crate::slowpath::journal::Journal::open(path, JOURNAL_BYTES_MAX, serial)
        }
    };
    let loaded = load_zones(&zone_sources(config));
    let failed = report_zones(&loaded, true);
    let mut served = Vec::new();
    let files: Vec<ZoneFiles> = loaded
        .iter()
        .map(|loaded| (loaded.source.path.clone(), loaded.files.clone()))
        .collect();
    for loaded in loaded {
        let origin_text = loaded.source.origin_text;
        let (transfer_to, tsig_required) = transfer_settings(config, &origin_text);
        let zone = loaded.zone.ok();
        let zone_loaded_at = zone.as_ref().map(|_| crate::slowpath::xfr_out::now_unix());
        let serial = zone.as_ref().map_or(0, crate::zone::Zone::serial);
        served.push(ServedZone {
            journal: journal(&origin_text, &transfer_to, serial),
            origin: loaded.source.origin,
            source: Source::File(loaded.source.path),
            zone: zone.map(std::sync::Arc::new),
            origin_text,
            transfer_to,
            tsig_required,
            refreshed_at: None,
            loaded_at: zone_loaded_at,
        });
    }
    let now = crate::slowpath::xfr_out::now_unix();
    for (origin_text, origin, secondary) in secondary_sources(config) {
        let (transfer_to, tsig_required) = transfer_settings(config, &origin_text);
        let mut refreshed = None;
        let zone = match crate::slowpath::secondary::load_persisted(storage, &origin, &origin_text)
        {
            Some((zone, refreshed_at))
                if !crate::slowpath::secondary::is_expired(
                    &zone,
                    &secondary,
                    refreshed_at,
                    now,
                ) =>
            {
                eprintln!(
                    "ringdns: secondary {origin_text}: serving serial {} from disk until the primary is checked",
                    zone.serial()
                );
                refreshed = Some(refreshed_at);
                Some(zone)
            }
            Some(_) => {
                eprintln!(
                    "ringdns: secondary {origin_text}: the copy on disk has expired; answering SERVFAIL until a transfer"
                );
                None
            }
            None => None,
        };
        let serial = zone.as_ref().map_or(0, crate::zone::Zone::serial);
        served.push(ServedZone {
            journal: journal(&origin_text, &transfer_to, serial),
            origin,
            source: Source::Secondary(secondary),
            zone: zone.map(std::sync::Arc::new),
            origin_text,
            transfer_to,
            tsig_required,
            refreshed_at: refreshed,
            loaded_at: refreshed,
        });
    }
    (served, failed, files)
}
