//! The IXFR journal of one zone: the consecutive diffs between the versions
//! served (by a primary) or received (by a secondary), kept on disk so IXFR
//! survives a restart, and bounded in size. This module owns the journal
//! file and its format; it does not compute diffs (`zone::diff`) or answer
//! queries.
//!
//! File format (integers big-endian):
//!
//! ```text
//! file   := "RINGJNL1" entry*
//! entry  := body_len:u32 body checksum:u64     (FNV-1a 64 of body)
//! body   := record(old_soa) record(new_soa)
//!           count:u32 record*count (removed) count:u32 record*count (added)
//! record := owner_len:u32 owner rtype:u16 ttl:u32 rdata_len:u32 rdata
//! ```
//!
//! The file is always rewritten whole, through a temporary file and a
//! rename, so a crash leaves the old journal or the new one; the checksums
//! catch what the disk itself corrupts.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::zone::{Record, ZoneDiff, serial_is_newer};

const MAGIC: &[u8; 8] = b"RINGJNL1";

/// The diffs of one zone, oldest first, each starting where the one before
/// it ends.
#[derive(Debug)]
pub struct Journal {
    /// Where the journal is kept; `None` keeps it in memory only.
    path: Option<PathBuf>,
    bytes_max: u64,
    diffs: Vec<ZoneDiff>,
    /// The encoded size of the journal: header and every entry.
    bytes: u64,
}

impl Journal {
    /// A journal kept in memory only (tests, or no journal directory
    /// configured).
    pub fn in_memory(bytes_max: u64) -> Journal {
        Journal {
            path: None,
            bytes_max,
            diffs: Vec::new(),
            bytes: MAGIC.len() as u64,
        }
    }

    /// Opens the journal at `path`, or starts one there when there is no
    /// file. Keeps the file's diffs only when they end at `current_serial`,
    /// the serial of the zone served now: otherwise the zone changed while
    /// we were down in a way the journal did not see. A file that cannot be
    /// read or decoded gives a warning on stderr and an empty journal, never
    /// a failure to start.
    pub fn open(path: PathBuf, bytes_max: u64, current_serial: u32) -> Journal {
        let mut journal = Journal::in_memory(bytes_max);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                journal.path = Some(path);
                return journal;
            }
            Err(error) => {
                warn(&path, &error.to_string());
                journal.path = Some(path);
                return journal;
            }
        };
        match decode(&bytes) {
            Err(problem) => warn(&path, &problem),
            Ok(diffs) => match diffs.last() {
                Some(last) if last.to_serial() != current_serial => warn(
                    &path,
                    &format!(
                        "it ends at serial {} but the zone is at serial {current_serial}",
                        last.to_serial()
                    ),
                ),
                _ => {
                    for diff in diffs {
                        journal.push(diff);
                    }
                }
            },
        }
        journal.path = Some(path);
        journal
    }

    /// Appends the diff to the newest version, drops the oldest diffs until
    /// the journal fits in `bytes_max`, then writes the journal to disk.
    ///
    /// A diff that does not start where the journal ends starts a new chain
    /// (the journal is cleared first). A diff that is larger than
    /// `bytes_max` on its own, or whose serial does not go forward (RFC
    /// 1982) is not kept, and the journal is left empty: older serials would
    /// name two different versions. An I/O error is returned; the journal in
    /// memory is updated all the same.
    pub fn append(&mut self, diff: ZoneDiff) -> io::Result<()> {
        if self
            .diffs
            .last()
            .is_some_and(|last| last.to_serial() != diff.from_serial())
        {
            self.clear();
        }
        if serial_is_newer(diff.to_serial(), diff.from_serial()) {
            self.push(diff);
        } else {
            self.clear();
        }
        self.write()
    }

    /// The diffs that take a secondary at `serial` to the newest version, in
    /// order. `None` when the journal does not reach back to `serial` (send
    /// the whole zone instead); empty when `serial` is the newest. An empty
    /// journal knows no serial at all: the caller answers a secondary that
    /// is up to date from the zone's own serial before asking.
    pub fn changes_since(&self, serial: u32) -> Option<&[ZoneDiff]> {
        if let Some(start) = self
            .diffs
            .iter()
            .position(|diff| diff.from_serial() == serial)
        {
            return Some(&self.diffs[start..]);
        }
        let newest = self.diffs.last()?;
        (newest.to_serial() == serial).then_some(&[])
    }

    pub fn len(&self) -> usize {
        self.diffs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.diffs.is_empty()
    }

    /// The size of the journal as written to disk.
    pub fn encoded_bytes(&self) -> u64 {
        self.bytes
    }

    /// Forgets every diff (in memory; the file follows at the next append).
    pub fn clear(&mut self) {
        self.diffs.clear();
        self.bytes = MAGIC.len() as u64;
    }

    /// Adds a diff that continues the chain, then trims to `bytes_max`.
    fn push(&mut self, diff: ZoneDiff) {
        self.bytes += entry_len(&diff);
        self.diffs.push(diff);
        let mut dropped = 0;
        while self.bytes > self.bytes_max && dropped < self.diffs.len() {
            self.bytes -= entry_len(&self.diffs[dropped]);
            dropped += 1;
        }
        self.diffs.drain(..dropped);
    }

    /// Replaces the file with the journal: write `PATH.tmp`, fsync it,
    /// rename it over `PATH`, fsync the directory so the rename lasts.
    fn write(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut encoded = Vec::with_capacity(usize::try_from(self.bytes).unwrap_or(0));
        encoded.extend_from_slice(MAGIC);
        for diff in &self.diffs {
            encode_entry(diff, &mut encoded)?;
        }
        let mut temporary = path.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let mut file = File::create(&temporary)?;
        file.write_all(&encoded)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, path)?;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        File::open(directory)?.sync_all()
    }
}

fn warn(path: &Path, problem: &str) {
    eprintln!(
        "ringdns: warning: journal {}: {problem}; starting empty",
        path.display()
    );
}

/// FNV-1a, 64 bits: a few lines, and any change to a single byte changes
/// it (each step is a bijection of the state), which is what a torn or
/// flipped entry needs.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn record_len(record: &Record) -> u64 {
    (4 + record.owner.len() + 2 + 4 + 4 + record.rdata.len()) as u64
}

/// The size of a diff's entry in the file: length, body, checksum.
fn entry_len(diff: &ZoneDiff) -> u64 {
    let records: u64 = [&diff.old_soa, &diff.new_soa]
        .into_iter()
        .chain(&diff.removed)
        .chain(&diff.added)
        .map(record_len)
        .sum();
    4 + records + 4 + 4 + 8
}

fn encode_entry(diff: &ZoneDiff, out: &mut Vec<u8>) -> io::Result<()> {
    let too_large = || io::Error::new(io::ErrorKind::InvalidInput, "diff too large to journal");
    let length_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let body_at = out.len();
    encode_record(&diff.old_soa, out)?;
    encode_record(&diff.new_soa, out)?;
    for records in [&diff.removed, &diff.added] {
        put_u32(records.len(), out)?;
        for record in records {
            encode_record(record, out)?;
        }
    }
    let body_len = u32::try_from(out.len() - body_at).map_err(|_| too_large())?;
    out[length_at..body_at].copy_from_slice(&body_len.to_be_bytes());
    let sum = checksum(&out[body_at..]);
    out.extend_from_slice(&sum.to_be_bytes());
    Ok(())
}

fn encode_record(record: &Record, out: &mut Vec<u8>) -> io::Result<()> {
    put_u32(record.owner.len(), out)?;
    out.extend_from_slice(&record.owner);
    out.extend_from_slice(&record.rtype.to_be_bytes());
    out.extend_from_slice(&record.ttl.to_be_bytes());
    put_u32(record.rdata.len(), out)?;
    out.extend_from_slice(&record.rdata);
    Ok(())
}

fn put_u32(value: usize, out: &mut Vec<u8>) -> io::Result<()> {
    let value = u32::try_from(value)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length over 2^32"))?;
    out.extend_from_slice(&value.to_be_bytes());
    Ok(())
}

/// The diffs of a journal file, checked: magic, every checksum, and that
/// each diff starts where the one before it ends.
fn decode(file: &[u8]) -> Result<Vec<ZoneDiff>, String> {
    let mut reader = Reader(file);
    if reader.take(MAGIC.len()) != Some(MAGIC.as_slice()) {
        return Err("not a ringdns journal (bad magic)".to_string());
    }
    let mut diffs: Vec<ZoneDiff> = Vec::new();
    while !reader.0.is_empty() {
        let entry = diffs.len() + 1;
        let corrupt = |what: &str| format!("entry {entry}: {what}");
        let body_len = reader.u32().ok_or_else(|| corrupt("truncated"))?;
        let body = reader
            .take(body_len as usize)
            .ok_or_else(|| corrupt("truncated"))?;
        let sum = reader.u64().ok_or_else(|| corrupt("truncated"))?;
        if checksum(body) != sum {
            return Err(corrupt("checksum mismatch"));
        }
        let diff = decode_body(body).ok_or_else(|| corrupt("malformed"))?;
        if let Some(last) = diffs.last()
            && last.to_serial() != diff.from_serial()
        {
            return Err(corrupt("does not follow the entry before it"));
        }
        diffs.push(diff);
    }
    Ok(diffs)
}

fn decode_body(body: &[u8]) -> Option<ZoneDiff> {
    let mut reader = Reader(body);
    let old_soa = reader.record()?;
    let new_soa = reader.record()?;
    let removed = reader.records()?;
    let added = reader.records()?;
    reader.0.is_empty().then_some(ZoneDiff {
        old_soa,
        removed,
        new_soa,
        added,
    })
}

/// Reads from a byte slice; every read is bounds-checked and `None` past
/// the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(count)?;
        self.0 = rest;
        Some(taken)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<Vec<u8>> {
        let length = self.u32()?;
        Some(self.take(length as usize)?.to_vec())
    }

    fn record(&mut self) -> Option<Record> {
        Some(Record {
            owner: self.bytes()?,
            rtype: self.u16()?,
            ttl: self.u32()?,
            rdata: self.bytes()?,
        })
    }

    /// A count, then that many records. No capacity is reserved from the
    /// count: the reads bound the allocation by the bytes really there.
    fn records(&mut self) -> Option<Vec<Record>> {
        let count = self.u32()?;
        let mut records = Vec::new();
        for _ in 0..count {
            records.push(self.record()?);
        }
        Some(records)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::wire::rtype;

    /// A temporary directory of its own for each test, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "ringdns-journal-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        fn journal(&self) -> PathBuf {
            self.0.join("example.jnl")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const BYTES_MAX: u64 = 1 << 20;

    fn soa(serial: u32) -> Record {
        // Root MNAME and RNAME, then serial, refresh, retry, expire, minimum.
        let mut rdata = vec![0, 0];
        for field in [serial, 7200, 900, 1_209_600, 300] {
            rdata.extend_from_slice(&field.to_be_bytes());
        }
        Record {
            owner: b"\x07example\x00".to_vec(),
            rtype: rtype::SOA,
            ttl: 3600,
            rdata,
        }
    }

    fn address(last_octet: u8) -> Record {
        Record {
            owner: b"\x03www\x07example\x00".to_vec(),
            rtype: rtype::A,
            ttl: 300,
            rdata: vec![192, 0, 2, last_octet],
        }
    }

    /// `from` → `to`: the address `from` goes, the address `to` comes.
    fn step(from: u32, to: u32) -> ZoneDiff {
        ZoneDiff {
            old_soa: soa(from),
            removed: vec![address(from as u8)],
            new_soa: soa(to),
            added: vec![address(to as u8)],
        }
    }

    fn serials(diffs: &[ZoneDiff]) -> Vec<(u32, u32)> {
        diffs
            .iter()
            .map(|diff| (diff.from_serial(), diff.to_serial()))
            .collect()
    }

    fn three_steps(path: PathBuf) -> Journal {
        let mut journal = Journal::open(path, BYTES_MAX, 1);
        for serial in 1..=3 {
            journal.append(step(serial, serial + 1)).unwrap();
        }
        journal
    }

    #[test]
    fn survives_a_reopen() {
        let dir = TempDir::new();
        let written = three_steps(dir.journal());
        assert_eq!(
            written.encoded_bytes(),
            fs::metadata(dir.journal()).unwrap().len(),
            "encoded_bytes is the file's size"
        );
        assert!(!dir.0.join("example.jnl.tmp").exists());

        let journal = Journal::open(dir.journal(), BYTES_MAX, 4);
        assert_eq!(journal.len(), 3);
        assert_eq!(journal.encoded_bytes(), written.encoded_bytes());
        assert_eq!(journal.changes_since(1), written.changes_since(1));
        assert_eq!(
            serials(journal.changes_since(1).unwrap()),
            [(1, 2), (2, 3), (3, 4)]
        );
        assert_eq!(serials(journal.changes_since(2).unwrap()), [(2, 3), (3, 4)]);
        assert_eq!(serials(journal.changes_since(3).unwrap()), [(3, 4)]);
        assert_eq!(journal.changes_since(4), Some(&[][..]), "up to date");
        assert_eq!(journal.changes_since(0), None, "older than the journal");
        assert_eq!(journal.changes_since(5), None, "unknown");
        assert_eq!(journal.changes_since(1).unwrap()[1], step(2, 3));
    }

    #[test]
    fn a_file_that_does_not_end_at_the_zones_serial_is_dropped() {
        let dir = TempDir::new();
        three_steps(dir.journal());
        let mut journal = Journal::open(dir.journal(), BYTES_MAX, 9);
        assert!(journal.is_empty());
        assert_eq!(journal.changes_since(1), None);
        // The next append starts a new chain on disk.
        journal.append(step(9, 10)).unwrap();
        let reopened = Journal::open(dir.journal(), BYTES_MAX, 10);
        assert_eq!(serials(reopened.changes_since(9).unwrap()), [(9, 10)]);
    }

    #[test]
    fn a_missing_file_is_an_empty_journal() {
        let dir = TempDir::new();
        let journal = Journal::open(dir.journal(), BYTES_MAX, 1);
        assert!(journal.is_empty());
        assert_eq!(journal.changes_since(1), None);
    }

    #[test]
    fn a_diff_that_does_not_follow_starts_a_new_chain() {
        let mut journal = Journal::in_memory(BYTES_MAX);
        journal.append(step(1, 2)).unwrap();
        journal.append(step(2, 3)).unwrap();
        journal.append(step(7, 8)).unwrap();
        assert_eq!(serials(journal.changes_since(7).unwrap()), [(7, 8)]);
        assert_eq!(journal.changes_since(1), None);
    }

    #[test]
    fn a_serial_that_goes_back_empties_the_journal() {
        let mut journal = Journal::in_memory(BYTES_MAX);
        journal.append(step(1, 2)).unwrap();
        journal.append(step(2, 2)).unwrap();
        assert!(journal.is_empty());
        journal.append(step(5, 6)).unwrap();
        journal.append(step(6, 3)).unwrap();
        assert!(journal.is_empty());
    }

    #[test]
    fn oldest_diffs_are_dropped_to_fit() {
        let entry = entry_len(&step(1, 2));
        let header = MAGIC.len() as u64;
        let mut journal = Journal::in_memory(header + 2 * entry);
        for serial in 1..=5 {
            journal.append(step(serial, serial + 1)).unwrap();
            assert!(journal.encoded_bytes() <= header + 2 * entry);
        }
        assert_eq!(serials(journal.changes_since(4).unwrap()), [(4, 5), (5, 6)]);
        assert_eq!(journal.changes_since(3), None);
        assert_eq!(journal.encoded_bytes(), header + 2 * entry);

        let mut small = Journal::in_memory(header + entry - 1);
        small.append(step(1, 2)).unwrap();
        assert!(small.is_empty(), "a diff larger than the bound is not kept");
        assert_eq!(small.encoded_bytes(), header);
    }

    #[test]
    fn trims_on_open_when_the_bound_shrank() {
        let dir = TempDir::new();
        three_steps(dir.journal());
        let entry = entry_len(&step(1, 2));
        let journal = Journal::open(dir.journal(), MAGIC.len() as u64 + entry, 4);
        assert_eq!(serials(journal.changes_since(3).unwrap()), [(3, 4)]);
    }

    #[test]
    fn serial_wraps_around() {
        let dir = TempDir::new();
        let mut journal = Journal::open(dir.journal(), BYTES_MAX, u32::MAX - 1);
        journal.append(step(u32::MAX - 1, u32::MAX)).unwrap();
        journal.append(step(u32::MAX, 1)).unwrap();
        journal.append(step(1, 2)).unwrap();
        let journal = Journal::open(dir.journal(), BYTES_MAX, 2);
        assert_eq!(
            serials(journal.changes_since(u32::MAX - 1).unwrap()),
            [(u32::MAX - 1, u32::MAX), (u32::MAX, 1), (1, 2)]
        );
        assert_eq!(serials(journal.changes_since(u32::MAX).unwrap()).len(), 2);
    }

    #[test]
    fn every_truncation_is_detected() {
        let dir = TempDir::new();
        three_steps(dir.journal());
        let file = fs::read(dir.journal()).unwrap();
        let entry_ends: Vec<usize> = {
            let mut ends = vec![MAGIC.len()];
            for serial in 1..=3 {
                ends.push(ends[ends.len() - 1] + entry_len(&step(serial, serial + 1)) as usize);
            }
            ends
        };
        assert_eq!(entry_ends.last(), Some(&file.len()));
        for length in 0..file.len() {
            let decoded = decode(&file[..length]);
            if entry_ends.contains(&length) {
                // A cut between entries is a shorter valid journal, which
                // `open` then rejects because it does not end at the zone's
                // serial.
                assert!(decoded.is_ok(), "cut at {length}");
            } else {
                assert!(decoded.is_err(), "cut at {length}");
            }
        }
        fs::write(dir.journal(), &file[..file.len() - 1]).unwrap();
        assert!(Journal::open(dir.journal(), BYTES_MAX, 4).is_empty());
        fs::write(dir.journal(), &file[..entry_ends[2]]).unwrap();
        assert!(Journal::open(dir.journal(), BYTES_MAX, 4).is_empty());
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let dir = TempDir::new();
        three_steps(dir.journal());
        let file = fs::read(dir.journal()).unwrap();
        for bit in 0..file.len() * 8 {
            let mut flipped = file.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&flipped).is_err(), "bit {bit}");
        }
        let mut flipped = file.clone();
        flipped[MAGIC.len() + 10] ^= 0x40;
        fs::write(dir.journal(), &flipped).unwrap();
        assert!(Journal::open(dir.journal(), BYTES_MAX, 4).is_empty());
    }

    #[test]
    fn garbage_is_not_a_panic() {
        let dir = TempDir::new();
        let mut garbage = MAGIC.to_vec();
        garbage.extend_from_slice(&[0xff; 64]);
        for file in [&b""[..], b"RINGJNL0", b"RINGJNL", &garbage] {
            fs::write(dir.journal(), file).unwrap();
            assert!(Journal::open(dir.journal(), BYTES_MAX, 1).is_empty());
        }
        // A valid checksum around a body that lies about its counts.
        let mut body = Vec::new();
        encode_record(&soa(1), &mut body).unwrap();
        encode_record(&soa(2), &mut body).unwrap();
        body.extend_from_slice(&u32::MAX.to_be_bytes());
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&(body.len() as u32).to_be_bytes());
        file.extend_from_slice(&body);
        file.extend_from_slice(&checksum(&body).to_be_bytes());
        assert!(decode(&file).is_err());
    }

    #[test]
    fn an_empty_file_after_clear_is_written() {
        let dir = TempDir::new();
        let mut journal = three_steps(dir.journal());
        journal.append(step(4, 4)).unwrap();
        let reopened = Journal::open(dir.journal(), BYTES_MAX, 4);
        assert!(reopened.is_empty());
        assert_eq!(
            fs::metadata(dir.journal()).unwrap().len(),
            MAGIC.len() as u64
        );
    }

    #[test]
    fn an_unwritable_directory_is_an_error_but_memory_is_updated() {
        let dir = TempDir::new();
        let mut journal = Journal::open(dir.0.join("missing").join("example.jnl"), BYTES_MAX, 1);
        assert!(journal.append(step(1, 2)).is_err());
        assert_eq!(serials(journal.changes_since(1).unwrap()), [(1, 2)]);
    }
}
