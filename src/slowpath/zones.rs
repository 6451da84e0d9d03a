//! The served zones as the slow path knows them: each zone's parsed data,
//! where it comes from (a file, or a primary), its IXFR journal and who may
//! transfer it. Every change of a zone — a file reload, a transfer in, an
//! expiry — goes through [`ZoneStore`], which records the difference in the
//! journal, compiles a new answer table for all zones and publishes it in
//! one swap, then says which secondaries to NOTIFY. The fast path never
//! sees this store; it only sees the tables published from it.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use crate::compile::{self, ZoneInput};
use crate::config::{self, TransferPeer};
use crate::publish::Published;
use crate::slowpath::journal::Journal;
use crate::tsig;
use crate::wire::name;
use crate::zone::{self, Zone, ZoneDiff};

/// Journals are trimmed to this many bytes per zone (oldest changes first).
pub const JOURNAL_BYTES_MAX: u64 = 64 << 20;

/// Where a zone's data comes from.
#[derive(Clone, Debug)]
pub enum Source {
    File(PathBuf),
    Secondary(config::SecondaryZones),
}

/// One zone as the slow path holds it.
pub struct ServedZone {
    /// Apex in presentation format, e.g. "example.com.".
    pub origin_text: String,
    pub origin: Vec<u8>,
    pub source: Source,
    /// The version served now; `None` while a file zone has never loaded,
    /// a secondary has no copy yet, or its copy expired (SERVFAIL).
    pub zone: Option<Arc<Zone>>,
    pub journal: Journal,
    /// `transfer { to … }`: who may transfer the zone, who is notified.
    pub transfer_to: Vec<TransferPeer>,
    /// Query types that must be TSIG-signed (`tsig { require … }`);
    /// `None` stands for every type.
    pub tsig_required: Vec<Option<u16>>,
    /// A secondary zone: when a primary last confirmed the copy (unix
    /// seconds), for the expire timer's metrics.
    pub refreshed_at: Option<u64>,
    /// When the served data was loaded or transferred (unix seconds).
    pub loaded_at: Option<u64>,
}

/// Counters of the replication traffic, for `/metrics`.
#[derive(Default)]
pub struct ReplicationCounters {
    /// [AXFR, IXFR] transfers out that were sent whole.
    pub transfers_out: [AtomicU64; 2],
    /// Transfers out refused (ACL, TSIG) or failed mid-stream.
    pub transfers_out_refused: AtomicU64,
    pub transfers_out_failed: AtomicU64,
    /// [AXFR, IXFR] transfers in applied.
    pub transfers_in: [AtomicU64; 2],
    pub transfers_in_failed: AtomicU64,
    pub notifies_sent: AtomicU64,
    pub notifies_failed: AtomicU64,
    pub notifies_received: AtomicU64,
    pub notifies_refused: AtomicU64,
}

pub fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A zone's origin, `transfer` peers and `tsig require` query types.
type TransferAcl = (Vec<u8>, Vec<TransferPeer>, Vec<Option<u16>>);

/// A primary's address and the TSIG key its messages must carry.
pub type Primary = (SocketAddr, Option<String>);

/// What `/metrics` shows of one zone.
#[derive(Clone, Debug)]
pub struct ZoneSummary {
    pub name: String,
    pub serial: u32,
    pub records: usize,
    pub loaded: bool,
    pub journal_bytes: u64,
    /// A secondary zone: (last confirmed by a primary, expires), unix
    /// seconds.
    pub secondary_times: Option<(u64, u64)>,
    pub loaded_at: Option<u64>,
}

/// Every served zone, behind one lock taken only by the slow path.
pub struct ZoneStore {
    zones: Mutex<Vec<ServedZone>>,
    published: Published,
    nsid: Option<String>,
    /// The `tsig` secrets of the whole process (replaced when the Corefile
    /// is reloaded).
    keys: ArcSwap<Vec<tsig::Key>>,
    pub counters: ReplicationCounters,
    pub reload_failed: AtomicU64,
    /// Transfers (out and in) running now; SIGTERM lets them finish.
    pub transfers_running: std::sync::atomic::AtomicUsize,
    /// Set on SIGTERM: no new transfer out starts.
    pub stopping: AtomicBool,
    /// The published table's EXPIRE board, so a secondary's successful SOA
    /// check moves its expiry without a new table.
    expiry: ArcSwap<compile::ExpiryBoard>,
    /// Tables published so far, and how long the last one took to compile.
    pub table_generation: AtomicU64,
    pub table_compile_ns: AtomicU64,
    /// Every zone has data (a secondary counts once it has a copy).
    pub ready: AtomicBool,
    summaries: Mutex<Vec<ZoneSummary>>,
    /// Each secondary zone's primaries (with the key each must sign
    /// with), a snapshot so NOTIFY checks on the workers take no lock.
    primaries: ArcSwap<Vec<(Vec<u8>, Vec<Primary>)>>,
    /// Each zone's transfer ACL and TSIG requirements, a snapshot so a
    /// worker can check an IXFR over UDP without a lock.
    acls: ArcSwap<Vec<TransferAcl>>,
    /// Wakes a secondary zone's refresh thread; dropping a zone's waker
    /// ends its thread.
    refresh_wakers: ArcSwap<Vec<(Vec<u8>, SyncSender<()>)>>,
}

/// What a transfer out needs, copied out of the store so the lock is not
/// held while a slow client reads.
pub struct TransferView {
    pub origin: Vec<u8>,
    pub origin_text: String,
    pub zone: Option<Arc<Zone>>,
    /// The journal's differences from the client's serial to now (IXFR),
    /// `None` when the journal does not reach back.
    pub changes: Option<Vec<ZoneDiff>>,
    pub transfer_to: Vec<TransferPeer>,
    pub tsig_required: Vec<Option<u16>>,
    /// The EDNS EXPIRE value (RFC 7314) now: a primary's SOA expire, the
    /// seconds left of a secondary's copy.
    pub expire: Option<u32>,
}

/// The snapshots of `zones` the workers read without a lock.
fn primaries_of(zones: &[ServedZone]) -> Vec<(Vec<u8>, Vec<Primary>)> {
    zones
        .iter()
        .filter_map(|served| match &served.source {
            Source::Secondary(secondary) => Some((served.origin.clone(), secondary.from.clone())),
            Source::File(_) => None,
        })
        .collect()
}

fn acls_of(zones: &[ServedZone]) -> Vec<TransferAcl> {
    zones
        .iter()
        .map(|served| {
            (
                served.origin.clone(),
                served.transfer_to.clone(),
                served.tsig_required.clone(),
            )
        })
        .collect()
}

impl ZoneStore {
    /// The store for `zones`, publishing into `published` from now on.
    pub fn new(
        zones: Vec<ServedZone>,
        published: Published,
        nsid: Option<String>,
        keys: Vec<tsig::Key>,
    ) -> ZoneStore {
        let store = ZoneStore {
            primaries: ArcSwap::from_pointee(primaries_of(&zones)),
            acls: ArcSwap::from_pointee(acls_of(&zones)),
            refresh_wakers: ArcSwap::from_pointee(Vec::new()),
            zones: Mutex::new(zones),
            published,
            nsid,
            keys: ArcSwap::from_pointee(keys),
            counters: ReplicationCounters::default(),
            reload_failed: AtomicU64::new(0),
            transfers_running: std::sync::atomic::AtomicUsize::new(0),
            expiry: ArcSwap::from_pointee(compile::ExpiryBoard::default()),
            stopping: AtomicBool::new(false),
            table_generation: AtomicU64::new(0),
            table_compile_ns: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            summaries: Mutex::new(Vec::new()),
        };
        store.refresh_status(&store.lock());
        store
    }

    /// The process's TSIG keys now.
    pub fn keys(&self) -> Arc<Vec<tsig::Key>> {
        self.keys.load_full()
    }

    /// Replaces the zone set (a Corefile reload: zones added, removed, or
    /// with other transfer rules) and the keys; the caller publishes.
    pub fn replace_all(
        &self,
        zones: &mut Vec<ServedZone>,
        new: Vec<ServedZone>,
        keys: Vec<tsig::Key>,
    ) {
        *zones = new;
        self.keys.store(Arc::new(keys));
        self.primaries.store(Arc::new(primaries_of(zones)));
        self.acls.store(Arc::new(acls_of(zones)));
        // Secondaries that are gone lose their waker, which ends their
        // refresh threads.
        let wakers: Vec<(Vec<u8>, SyncSender<()>)> = self
            .refresh_wakers
            .load()
            .iter()
            .filter(|(origin, _)| {
                zones.iter().any(|served| {
                    served.origin == *origin && matches!(served.source, Source::Secondary(_))
                })
            })
            .cloned()
            .collect();
        self.refresh_wakers.store(Arc::new(wakers));
    }

    pub fn lock(&self) -> MutexGuard<'_, Vec<ServedZone>> {
        self.zones
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn summaries(&self) -> Vec<ZoneSummary> {
        self.summaries
            .lock()
            .map(|summaries| summaries.clone())
            .unwrap_or_default()
    }

    /// Compiles every zone into a new table and publishes it.
    pub fn publish(&self, zones: &[ServedZone]) {
        let inputs: Vec<ZoneInput<'_>> = zones
            .iter()
            .map(|served| match &served.zone {
                Some(zone) => ZoneInput::Loaded(zone),
                None => ZoneInput::Failed {
                    origin: served.origin.clone(),
                },
            })
            .collect();
        let started = std::time::Instant::now();
        let mut table = compile::compile(&inputs);
        if let Some(nsid) = &self.nsid {
            table.set_nsid(nsid.as_bytes());
        }
        let board = Arc::new(compile::ExpiryBoard::new(
            zones.iter().filter_map(zone_expiry).collect(),
        ));
        table.set_expiry(Arc::clone(&board));
        self.expiry.store(board);
        self.table_compile_ns
            .store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.published.publish(table);
        self.table_generation.fetch_add(1, Ordering::Relaxed);
        self.refresh_status(zones);
        // SAFETY: mi_collect only walks mimalloc's own heap structures.
        unsafe { libmimalloc_sys::mi_collect(false) };
    }

    fn refresh_status(&self, zones: &[ServedZone]) {
        let summaries = zones
            .iter()
            .map(|served| ZoneSummary {
                name: served.origin_text.clone(),
                serial: served.zone.as_ref().map_or(0, |zone| zone.serial()),
                records: served.zone.as_ref().map_or(0, |zone| zone.record_count()),
                loaded: served.zone.is_some(),
                journal_bytes: served.journal.encoded_bytes(),
                secondary_times: secondary_times(served),
                loaded_at: served.loaded_at.filter(|_| served.zone.is_some()),
            })
            .collect::<Vec<_>>();
        self.ready
            .store(summaries.iter().all(|zone| zone.loaded), Ordering::Relaxed);
        if let Ok(mut current) = self.summaries.lock() {
            *current = summaries;
        }
    }

    /// Replaces the data of zone `index` by `new` (already validated, with
    /// a newer serial), recording in its journal `diffs` (the differences
    /// from the served version to `new`, in order, as an IXFR brought them)
    /// or, when there are none, the difference computed between the two.
    /// Returns where to send NOTIFY. The caller publishes.
    pub fn replace(
        &self,
        zones: &mut [ServedZone],
        index: usize,
        new: Zone,
        mut diffs: Vec<ZoneDiff>,
    ) -> Vec<Notify> {
        let Some(served) = zones.get_mut(index) else {
            return Vec::new();
        };
        if diffs.is_empty()
            && let Some(old) = served.zone.as_deref()
        {
            diffs.push(zone::diff(old, &new));
        }
        if diffs.is_empty() {
            served.journal.clear();
        }
        for diff in diffs {
            if let Err(error) = served.journal.append(diff) {
                eprintln!(
                    "ringdns: warning: zone {}: cannot write the journal: {error}",
                    served.origin_text
                );
            }
        }
        let serial = new.serial();
        served.zone = Some(Arc::new(new));
        served.loaded_at = Some(crate::slowpath::xfr_out::now_unix());
        notifications(served, serial, &self.keys())
    }

    /// NOTIFY for every loaded zone to its secondaries, sent at start-up
    /// as Knot and BIND do, so secondaries that missed a change while we
    /// were down catch up at once instead of at their next refresh.
    pub fn startup_notifies(&self) -> Vec<Notify> {
        self.lock()
            .iter()
            .filter_map(|served| {
                let serial = served.zone.as_ref()?.serial();
                Some(notifications(served, serial, &self.keys()))
            })
            .flatten()
            .collect()
    }

    /// The copy of zone `origin` a transfer to a client at `serial` (IXFR)
    /// or from scratch (AXFR, `serial` None) needs.
    pub fn transfer_view(&self, origin: &[u8], serial: Option<u32>) -> Option<TransferView> {
        let zones = self.lock();
        let served = zones.iter().find(|served| served.origin == origin)?;
        Some(TransferView {
            origin: served.origin.clone(),
            origin_text: served.origin_text.clone(),
            zone: served.zone.clone(),
            changes: serial.and_then(|serial| {
                served
                    .journal
                    .changes_since(serial)
                    .map(|diffs| diffs.to_vec())
            }),
            transfer_to: served.transfer_to.clone(),
            tsig_required: served.tsig_required.clone(),
            expire: self
                .expiry
                .load()
                .seconds(origin, crate::slowpath::xfr_out::now_unix()),
        })
    }

    /// Signs `reply`, the answer to the TSIG-signed query `request`, with
    /// the query's key (RFC 8945 §5.3); a query whose signature does not
    /// verify gets NOTAUTH with the TSIG error instead. Returns the reply
    /// to send. Runs for signed queries only, so their allocation never
    /// touches ordinary queries.
    pub fn sign_reply(&self, request: &[u8], reply: &[u8]) -> Vec<u8> {
        let now = crate::slowpath::xfr_out::now_unix();
        let mut signed = reply.to_vec();
        let keys = self.keys();
        match tsig::check_request(request, &keys, now) {
            tsig::RequestCheck::Valid { key, mac, .. } => {
                if let Some(key) = keys.get(key) {
                    tsig::sign_response(&mut signed, key, &mac, now);
                }
            }
            tsig::RequestCheck::Invalid(invalid) => {
                let Some(header) = crate::wire::message::Header::read(request) else {
                    return Vec::new();
                };
                signed = crate::slowpath::xfr_out::error_reply(request, &header, tsig::NOTAUTH);
                tsig::append_error(&mut signed, &invalid, &keys, now);
            }
            tsig::RequestCheck::Unsigned | tsig::RequestCheck::Malformed => {}
        }
        signed
    }

    /// May `peer` see zone `qname`'s IXFR answer over UDP (the current SOA)?
    /// The same rules as transfers over TCP: the address must be in the
    /// zone's `transfer` list, signed with its key when one is named. Knot
    /// and NSD answer others NOTAUTH.
    pub fn may_transfer(&self, request: &[u8], qname: &[u8], peer: SocketAddr) -> bool {
        let acls = self.acls.load();
        let Some((_, transfer_to, tsig_required)) =
            acls.iter().find(|(origin, _, _)| origin == qname)
        else {
            return false;
        };
        let keys = self.keys();
        let key_name =
            match tsig::check_request(request, &keys, crate::slowpath::xfr_out::now_unix()) {
                tsig::RequestCheck::Valid { key, .. } => {
                    keys.get(key).map(|key| key.name.as_slice())
                }
                tsig::RequestCheck::Unsigned => None,
                _ => return false,
            };
        crate::slowpath::xfr_out::permission(
            transfer_to,
            tsig_required,
            peer,
            key_name,
            crate::wire::rtype::IXFR,
        )
        .is_ok()
    }

    /// Records that a primary confirmed secondary zone `origin` at `now`.
    pub fn set_refreshed(&self, origin: &[u8], now: u64) {
        let zones = &mut self.lock();
        if let Some(served) = zones.iter_mut().find(|served| served.origin == origin) {
            served.refreshed_at = Some(now);
            if let Some((_, expires)) = secondary_times(served) {
                self.expiry.load().set_until(origin, expires);
            }
        }
        self.refresh_status(zones);
    }

    /// Registers the waker of a secondary zone's refresh thread (replacing
    /// an earlier one, whose thread then ends).
    pub fn add_refresh_waker(&self, origin: Vec<u8>, waker: SyncSender<()>) {
        let mut wakers: Vec<(Vec<u8>, SyncSender<()>)> = self
            .refresh_wakers
            .load()
            .iter()
            .filter(|(existing, _)| *existing != origin)
            .cloned()
            .collect();
        wakers.push((origin, waker));
        self.refresh_wakers.store(Arc::new(wakers));
    }

    /// Checks a NOTIFY for `zone` from `peer` (signed with `key_name`) and
    /// wakes the zone's refresh thread when it is from a primary.
    /// Repeated NOTIFYs coalesce: the waker holds at most one wake-up.
    pub fn accept_notify(
        &self,
        zone: &[u8],
        peer: SocketAddr,
        key_name: Option<&[u8]>,
    ) -> Result<(), (u8, String)> {
        let zone_text = name::to_text(zone);
        let all_primaries = self.primaries.load();
        let Some((_, primaries)) = all_primaries.iter().find(|(origin, _)| origin == zone) else {
            return Err((
                crate::respond::rcode::REFUSED,
                format!("{zone_text} is not a secondary zone here"),
            ));
        };
        let Some((_, required_key)) = primaries
            .iter()
            .find(|(primary, _)| primary.ip() == peer.ip())
        else {
            return Err((
                crate::respond::rcode::REFUSED,
                format!("{} is not a primary of {zone_text}", peer.ip()),
            ));
        };
        if let Some(required) = required_key {
            let wire = name::from_text(required).unwrap_or_default();
            if key_name != Some(wire.as_slice()) {
                return Err((
                    tsig::NOTAUTH,
                    format!("the NOTIFY is not signed with key {required}"),
                ));
            }
        }
        if let Some((_, waker)) = self
            .refresh_wakers
            .load()
            .iter()
            .find(|(origin, _)| origin == zone)
        {
            let _ = waker.try_send(());
        }
        Ok(())
    }

    pub fn key(&self, name_text: &str) -> Option<tsig::Key> {
        let wire = name::from_text(name_text)?;
        self.keys().iter().find(|key| key.name == wire).cloned()
    }
}

/// What EDNS EXPIRE (RFC 7314) says of a zone with data: a primary's SOA
/// expire, or when a secondary's copy expires.
fn zone_expiry(served: &ServedZone) -> Option<(Box<[u8]>, compile::ZoneExpiry)> {
    let zone = served.zone.as_deref()?;
    let expiry = match &served.source {
        Source::File(_) => compile::ZoneExpiry::Fixed(zone::soa_fields_of(zone)?.expire),
        Source::Secondary(_) => compile::ZoneExpiry::Until(secondary_times(served)?.1),
    };
    Some((served.origin.clone().into_boxed_slice(), expiry))
}

/// A secondary zone's (refreshed, expires) times, when it has a copy.
fn secondary_times(served: &ServedZone) -> Option<(u64, u64)> {
    let Source::Secondary(config) = &served.source else {
        return None;
    };
    let refreshed_at = served.refreshed_at?;
    let expire = served
        .zone
        .as_deref()
        .and_then(zone::soa_fields_of)?
        .expire
        .min(config.expire_max);
    Some((refreshed_at, refreshed_at.saturating_add(u64::from(expire))))
}

/// Counts one running transfer for as long as it lives.
pub struct TransferRunning<'a>(&'a ZoneStore);

impl<'a> TransferRunning<'a> {
    pub fn new(store: &'a ZoneStore) -> TransferRunning<'a> {
        store.transfers_running.fetch_add(1, Ordering::Relaxed);
        TransferRunning(store)
    }
}

impl Drop for TransferRunning<'_> {
    fn drop(&mut self) {
        self.0.transfers_running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One NOTIFY to send: zone, serial, to whom, signed with which key.
#[derive(Clone, Debug)]
pub struct Notify {
    pub origin: Vec<u8>,
    pub origin_text: String,
    pub serial: u32,
    pub to: SocketAddr,
    pub key: Option<tsig::Key>,
}

fn notifications(served: &ServedZone, serial: u32, keys: &[tsig::Key]) -> Vec<Notify> {
    served
        .transfer_to
        .iter()
        .filter_map(|peer| {
            let to = peer.notify?;
            let key = peer.key.as_ref().and_then(|key_name| {
                let wire = name::from_text(key_name)?;
                keys.iter().find(|key| key.name == wire).cloned()
            });
            Some(Notify {
                origin: served.origin.clone(),
                origin_text: served.origin_text.clone(),
                serial,
                to,
                key,
            })
        })
        .collect()
}

/// The transfer ACL entry that lets `address` transfer, if any (the first
/// that matches, as written).
pub fn transfer_peer(peers: &[TransferPeer], address: IpAddr) -> Option<&TransferPeer> {
    peers.iter().find(|peer| peer.matches(address))
}

/// The directory for journals and transferred zones: `storage DIR`, else
/// systemd's `$STATE_DIRECTORY`, else `ringdns-data` beside the Corefile.
pub fn storage_directory(config: &config::Config, corefile: &Path) -> PathBuf {
    if let Some(directory) = &config.storage {
        return directory.clone();
    }
    if let Some(directory) = std::env::var_os("STATE_DIRECTORY")
        && !directory.is_empty()
    {
        // systemd may list several, separated by ':'; the first is ours.
        let first = directory
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        return PathBuf::from(first);
    }
    corefile
        .parent()
        .unwrap_or(Path::new("."))
        .join("ringdns-data")
}

/// A file name for zone `origin_text` inside the storage directory: the
/// name without its final dot ("root" for the root), with anything but
/// letters, digits, '-', '_' and '.' replaced, so no name can escape.
pub fn storage_file(directory: &Path, origin_text: &str, extension: &str) -> PathBuf {
    let trimmed = origin_text.trim_end_matches('.');
    let base: String = if trimmed.is_empty() {
        "root".to_string()
    } else {
        trimmed
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    directory.join(format!("{base}.{extension}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_files_stay_inside_the_directory() {
        let directory = Path::new("/var/lib/ringdns");
        assert_eq!(
            storage_file(directory, "Example.COM.", "journal"),
            Path::new("/var/lib/ringdns/example.com.journal")
        );
        assert_eq!(
            storage_file(directory, ".", "zone"),
            Path::new("/var/lib/ringdns/root.zone")
        );
        assert_eq!(
            storage_file(directory, "a/../b\\.c.", "zone"),
            Path::new("/var/lib/ringdns/a_.._b_.c.zone")
        );
    }
}
