//! Reloading zones while serving: on SIGHUP, and when a zone file's
//! modification time changes (`file … { reload DURATION }`). Loads and
//! compiles off the fast path and publishes through `publish` in one swap;
//! it never writes into a published table.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::slowpath::notify;
use crate::slowpath::zones::ZoneStore;
use crate::{config, server, zone};

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

/// SIGHUP: loads every zone file again, off the fast path, and publishes
/// one new table for all zones that changed. Zone by zone: a file with an
/// error, or whose data changed without a newer serial (RFC 1982), keeps
/// its zone as it was served (as Knot and CoreDNS keep a zone whose serial
/// did not move), with the reason logged and counted; the other zones
/// still reload. Each changed zone's difference goes into its journal and
/// its secondaries are sent NOTIFY.
pub fn reload(config: &config::Config, store: &Arc<ZoneStore>) {
    eprintln!("ringdns: SIGHUP: reloading zones");
    let loaded = server::load_zones(&server::zone_sources(config));
    server::report_zones(&loaded, false);
    let mut notifies = Vec::new();
    let mut changed = 0;
    {
        let mut zones = store.lock();
        for loaded in loaded {
            let Some(index) = zones
                .iter()
                .position(|served| served.origin == loaded.source.origin)
            else {
                continue; // a zone added to the Corefile needs a restart
            };
            let origin_text = &loaded.source.origin_text;
            let old = zones[index].zone.clone();
            let refuse = |reason: String| {
                eprintln!(
                    "ringdns: zone {origin_text}: reload refused: {reason}; still serving {}",
                    old.as_ref()
                        .map_or("nothing (SERVFAIL)".to_string(), |zone| format!(
                            "serial {}",
                            zone.serial()
                        ))
                );
                store.reload_failed.fetch_add(1, Ordering::Relaxed);
            };
            let new = match loaded.zone {
                Ok(new) => new,
                Err(problems) => {
                    refuse(format!(
                        "{} error(s) in {}",
                        problems.len(),
                        loaded.source.path.display()
                    ));
                    continue;
                }
            };
            if let Some(old) = &old {
                if old.digest() == new.digest() {
                    continue;
                }
                if !zone::serial_is_newer(new.serial(), old.serial()) {
                    refuse(format!(
                        "the data changed but serial {} is not newer than {}",
                        new.serial(),
                        old.serial()
                    ));
                    continue;
                }
            }
            eprintln!(
                "ringdns: zone {origin_text}: reloaded serial {}",
                new.serial()
            );
            notifies.extend(store.replace(&mut zones, index, new, None));
            changed += 1;
        }
        if changed > 0 {
            store.publish(&zones);
        }
    }
    if changed == 0 {
        eprintln!("ringdns: reload: no zone changed");
    } else {
        eprintln!("ringdns: reloaded {changed} zone(s)");
    }
    notify::send_all(notifies, store);
}
