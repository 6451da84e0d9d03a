//! Reloading zones while serving: on SIGHUP, and when a zone file's
//! modification time changes (`file … { reload DURATION }`). Loads and
//! compiles off the fast path and publishes through `publish` in one swap;
//! it never writes into a published table.

use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::slowpath::zones::{ServedZone, Source, ZoneStore};
use crate::slowpath::{notify, secondary};
use crate::{config, server, zone};

/// Watches the zone files for changes and turns each into a SIGHUP, so
/// every reload takes the same path as an operator's:
/// - CoreDNS's `file … { reload DURATION }` (default one minute, 0 off): a
///   thread checks the files' modification times at the shortest interval;
/// - beyond CoreDNS, inotify on the files' directories reloads within
///   ~100 ms of an edit (an editor's write-and-rename included), for the
///   zone files and their `$INCLUDE`s (`files`). Zones with `reload 0`
///   are not watched at all.
pub fn start_watch(config: &config::Config, files: Vec<(PathBuf, Vec<PathBuf>)>) {
    const RELOAD_DEFAULT: Duration = Duration::from_secs(60);
    let watched: Vec<(PathBuf, Duration)> = config
        .servers
        .iter()
        .flat_map(|block| &block.files)
        .map(|file| (file.path.clone(), file.reload.unwrap_or(RELOAD_DEFAULT)))
        .filter(|(_, interval)| !interval.is_zero())
        .collect();
    let Some(interval) = watched.iter().map(|(_, interval)| *interval).min() else {
        return;
    };
    // The `$INCLUDE`s of watched zone files are watched too.
    let mut inotify_files: Vec<PathBuf> = Vec::new();
    for (zone_file, read) in files {
        if watched.iter().any(|(path, _)| *path == zone_file) {
            for file in std::iter::once(zone_file).chain(read) {
                if !inotify_files.contains(&file) {
                    inotify_files.push(file);
                }
            }
        }
    }
    if let Err(error) = start_inotify(&inotify_files) {
        eprintln!(
            "ringdns: warning: inotify unavailable ({error}); zone files are checked every {} s",
            interval.as_secs()
        );
    }
    let modified = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|metadata| metadata.modified())
            .ok()
    };
    let mut seen: Vec<_> = watched.iter().map(|(path, _)| modified(path)).collect();
    let spawned = std::thread::Builder::new()
        .name("reload-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                let now: Vec<_> = watched.iter().map(|(path, _)| modified(path)).collect();
                if now != seen {
                    seen = now;
                    hang_up_self();
                }
            }
        });
    if let Err(error) = spawned {
        eprintln!("ringdns: warning: cannot watch zone files for reload: {error}");
    }
}

fn hang_up_self() {
    // SAFETY: signalling our own process; the main thread waits for it.
    unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
}

/// inotify on the directories of `files` (a file replaced by rename is a
/// new inode, so watching the file itself would miss the edit): a write,
/// create or rename of one of `files` sends SIGHUP once the directory has
/// been quiet for 100 ms, so an editor's several writes make one reload.
fn start_inotify(files: &[PathBuf]) -> std::io::Result<()> {
    // SAFETY: inotify_init1 takes flags only and returns a new descriptor.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by inotify_init1 and is ours alone.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let mut watches: Vec<(i32, PathBuf, Vec<std::ffi::OsString>)> = Vec::new();
    for file in files {
        let directory = match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let Some(name) = file.file_name() else {
            continue;
        };
        if let Some((_, _, names)) = watches.iter_mut().find(|(_, dir, _)| *dir == directory) {
            names.push(name.to_os_string());
            continue;
        }
        let c_path = std::ffi::CString::new(directory.as_os_str().as_encoded_bytes())
            .map_err(|_| std::io::Error::other("a path with a NUL byte"))?;
        let mask = libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_CREATE;
        // SAFETY: `fd` is a live inotify descriptor; `c_path` is NUL-terminated.
        let wd = unsafe { libc::inotify_add_watch(owned.as_raw_fd(), c_path.as_ptr(), mask) };
        if wd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        watches.push((wd, directory, vec![name.to_os_string()]));
    }
    std::thread::Builder::new()
        .name("reload-inotify".into())
        .spawn(move || inotify_loop(owned, watches))?;
    Ok(())
}

fn inotify_loop(fd: std::os::fd::OwnedFd, watches: Vec<(i32, PathBuf, Vec<std::ffi::OsString>)>) {
    use std::os::unix::ffi::OsStrExt;
    const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut pending = false;
    loop {
        // Block until an event; once one is pending, wait only for quiet.
        let timeout = if pending { 100 } else { -1 };
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, timeout) };
        if ready == 0 {
            pending = false;
            hang_up_self();
            continue;
        }
        // SAFETY: reading into our own buffer, at most its length.
        let read = unsafe { libc::read(fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
        if read <= 0 {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let mut at = 0;
        let read = read as usize;
        while at + HEADER <= read {
            let field = |offset: usize| {
                let bytes = &buffer[at + offset..at + offset + 4];
                u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
            };
            let (wd, length) = (field(0) as i32, field(12) as usize);
            let name_bytes = buffer.get(at + HEADER..at + HEADER + length).unwrap_or(&[]);
            let name_end = name_bytes
                .iter()
                .position(|byte| *byte == 0)
                .unwrap_or(name_bytes.len());
            let name = std::ffi::OsStr::from_bytes(&name_bytes[..name_end]);
            if watches.iter().any(|(watch, _, names)| {
                *watch == wd && names.iter().any(|watched| watched == name)
            }) {
                pending = true;
            }
            at += HEADER + length;
        }
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
                    if !loaded.source.serve_unchanged_serial {
                        refuse(format!(
                            "the data changed but serial {} is not newer than {}",
                            new.serial(),
                            old.serial()
                        ));
                        continue;
                    }
                    eprintln!(
                        "ringdns: warning: zone {origin_text}: the data changed under the same serial {}; serving it (serve-unchanged-serial), but secondaries will not see the change until the serial moves",
                        new.serial()
                    );
                }
            }
            eprintln!(
                "ringdns: zone {origin_text}: reloaded serial {}",
                new.serial()
            );
            notifies.extend(store.replace(&mut zones, index, new, Vec::new()));
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

/// CoreDNS's `reload` plugin: the Corefile is read every `interval` and,
/// when its bytes changed, this process gets SIGUSR2, which rereads it
/// (`reload_config`).
pub fn start_config_watch(corefile: &Path, interval: Duration) {
    let corefile = corefile.to_path_buf();
    let digest = |path: &Path| {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::fs::read(path).ok().hash(&mut hasher);
        hasher.finish()
    };
    let mut seen = digest(&corefile);
    let spawned = std::thread::Builder::new()
        .name("corefile-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                let now = digest(&corefile);
                if now != seen {
                    seen = now;
                    // SAFETY: signalling our own process; the main thread waits for it.
                    unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
                }
            }
        });
    if let Err(error) = spawned {
        eprintln!("ringdns: warning: cannot watch the Corefile: {error}");
    }
}

/// SIGUSR2 (or `reload`): rereads the Corefile and applies what can change
/// while serving: zones added, removed, moved to another file or primary,
/// their transfer peers, `tsig` keys and requirements. What needs new
/// sockets or threads (listen addresses, `engine`, the HTTP endpoints,
/// `rrl`, `cookies`, `nsid`, `storage`) keeps its running value, with a
/// warning to restart. A Corefile with errors changes nothing.
pub fn reload_config(
    corefile: &Path,
    config: &mut config::Config,
    store: &Arc<ZoneStore>,
    storage: &Path,
) {
    eprintln!("ringdns: rereading {}", corefile.display());
    let new = match config::load(corefile) {
        Ok(new) => new,
        Err(errors) => {
            for error in &errors {
                eprintln!("ringdns: error: {error}");
            }
            eprintln!(
                "ringdns: Corefile reload refused: it has errors; still running the previous configuration"
            );
            store.reload_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let kept: Vec<&str> = [
        (
            server::listen_addresses(config) != server::listen_addresses(&new),
            "listen addresses",
        ),
        (config.engine != new.engine, "engine"),
        (config.tcp != new.tcp, "tcp"),
        (config.http != new.http, "prometheus/health/ready"),
        (config.rrl != new.rrl, "rrl"),
        (config.cookies != new.cookies, "cookies"),
        (config.nsid != new.nsid, "nsid"),
        (config.storage != new.storage, "storage"),
    ]
    .into_iter()
    .filter_map(|(changed, what)| changed.then_some(what))
    .collect();
    if !kept.is_empty() {
        eprintln!(
            "ringdns: warning: Corefile changes to {} need a restart; still running the previous ones",
            kept.join(", ")
        );
    }
    let (fresh, _, _) = server::served_zones(&new, storage);
    let keys = server::tsig_keys(&new);
    // New zones with data: their secondaries are told, as at start-up.
    let mut new_with_data: Vec<Vec<u8>> = Vec::new();
    let mut new_secondaries = Vec::new();
    {
        let mut zones = store.lock();
        let mut old: Vec<ServedZone> = std::mem::take(&mut *zones);
        let mut merged = Vec::new();
        for fresh_zone in fresh {
            let same_source = old.iter().position(|served| {
                served.origin == fresh_zone.origin
                    && match (&served.source, &fresh_zone.source) {
                        (Source::File(a), Source::File(b)) => a == b,
                        (Source::Secondary(a), Source::Secondary(b)) => a.from == b.from,
                        _ => false,
                    }
            });
            match same_source {
                // Same data source: keep the served data and journal (zone
                // file edits are SIGHUP's business), take the new rules.
                Some(index) => {
                    let mut kept = old.swap_remove(index);
                    kept.transfer_to = fresh_zone.transfer_to;
                    kept.tsig_required = fresh_zone.tsig_required;
                    if let (Source::Secondary(kept_config), Source::Secondary(new_config)) =
                        (&mut kept.source, fresh_zone.source)
                    {
                        *kept_config = new_config;
                    }
                    merged.push(kept);
                }
                None => {
                    eprintln!(
                        "ringdns: Corefile reload: zone {} is new or has a new source",
                        fresh_zone.origin_text
                    );
                    if let Source::Secondary(secondary) = &fresh_zone.source {
                        new_secondaries.push((
                            fresh_zone.origin.clone(),
                            fresh_zone.origin_text.clone(),
                            secondary.clone(),
                        ));
                    }
                    if fresh_zone.zone.is_some() {
                        new_with_data.push(fresh_zone.origin.clone());
                    }
                    merged.push(fresh_zone);
                }
            }
        }
        for gone in &old {
            eprintln!(
                "ringdns: Corefile reload: zone {} is no longer served",
                gone.origin_text
            );
        }
        store.replace_all(&mut zones, merged, keys);
        store.publish(&zones);
    }
    for (origin, origin_text, secondary) in new_secondaries {
        secondary::start_zone(store, storage, origin, origin_text, secondary);
    }
    let startup = store.startup_notifies();
    notify::send_all(
        startup
            .into_iter()
            .filter(|notify| new_with_data.contains(&notify.origin))
            .collect(),
        store,
    );
    *config = new;
    eprintln!("ringdns: Corefile reloaded");
}
