//! Reloading zones while serving: on SIGHUP, and when a zone file's
//! modification time changes (`file … { reload DURATION }`). Loads and
//! compiles off the fast path and publishes through `publish` in one swap;
//! it never writes into a published table.

use crate::slowpath::http::HttpState;
use crate::{config, publish, server};

/// CoreDNS's `file … { reload DURATION }` (default one minute, 0 off):
/// a thread checks the zone files' modification times at the shortest
/// interval and, when one changed, sends this process SIGHUP, so every
/// reload takes the same path as an operator's.
pub fn start_watch(config: &config::Config) {
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
pub type ServedVersions = Vec<Option<(u32, u64)>>;

pub fn served_versions(zones: &[server::LoadedZone]) -> ServedVersions {
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
pub fn reload(
    config: &config::Config,
    published: &publish::Published,
    state: &HttpState,
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
    if server::report_zones(&zones, false) > 0 {
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
            && !crate::zone::serial_is_newer(*new_serial, *old_serial)
        {
            let zone = &loaded.source.origin_text;
            return refuse(&format!(
                "zone {zone} changed but its serial {new_serial} is not newer than {old_serial}"
            ));
        }
    }
    let table = server::compile_zones(&zones, config.nsid.as_deref());
    let summaries = server::zone_summaries(&zones);
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
