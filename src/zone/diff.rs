//! Zone versions as records and as differences: what IXFR (RFC 1995) and
//! AXFR carry. This module owns `Zone` ↔ flat record lists and the diff
//! between two versions; it does no I/O and knows nothing of messages.

use std::collections::{BTreeMap, HashSet};

use super::{Rrset, Zone, soa_fields};
use crate::wire::name;
use crate::wire::rtype;

/// One resource record, class IN.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Record {
    /// Wire format; lowercased in every `Zone`.
    pub owner: Vec<u8>,
    pub rtype: u16,
    pub ttl: u32,
    /// Uncompressed wire format.
    pub rdata: Vec<u8>,
}

/// The difference between two versions of a zone, as IXFR (RFC 1995)
/// carries it: the old SOA, records removed, the new SOA, records added.
/// The SOA records are never in `removed` or `added`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneDiff {
    pub old_soa: Record,
    pub removed: Vec<Record>,
    pub new_soa: Record,
    pub added: Vec<Record>,
}

impl ZoneDiff {
    /// The serial of the version this diff starts from (0 when the old SOA
    /// RDATA is too short to hold one).
    pub fn from_serial(&self) -> u32 {
        soa_fields(&self.old_soa.rdata).map_or(0, |fields| fields.serial)
    }

    /// The serial of the version this diff leads to.
    pub fn to_serial(&self) -> u32 {
        soa_fields(&self.new_soa.rdata).map_or(0, |fields| fields.serial)
    }
}

/// The difference `old` → `new`, both versions of the same zone. A record
/// whose TTL changed is removed (old TTL) and added (new TTL): the TTL is
/// part of what a secondary must learn. `removed` and `added` are sorted, so
/// the same two zones always give the same diff.
pub fn diff(old: &Zone, new: &Zone) -> ZoneDiff {
    debug_assert_eq!(old.origin, new.origin, "diff of two different zones");
    let mut removed = one_side(old, new);
    let mut added = one_side(new, old);
    removed.sort_unstable();
    added.sort_unstable();
    ZoneDiff {
        old_soa: soa_record(old),
        removed,
        new_soa: soa_record(new),
        added,
    }
}

/// The records of `this` (apex SOA aside) that `other` lacks, or has with a
/// different TTL.
fn one_side(this: &Zone, other: &Zone) -> Vec<Record> {
    let mut missing = Vec::new();
    for (owner, rrsets) in &this.nodes {
        for rrset in rrsets {
            if is_apex_soa(this, owner, rrset.rtype) {
                continue;
            }
            let counterpart = other
                .rrset(owner, rrset.rtype)
                .filter(|counterpart| counterpart.ttl == rrset.ttl);
            let unchanged: HashSet<&[u8]> = match counterpart {
                Some(counterpart) if counterpart.rdatas == rrset.rdatas => continue,
                Some(counterpart) => counterpart.rdatas.iter().map(Vec::as_slice).collect(),
                None => HashSet::new(),
            };
            missing.extend(
                rrset
                    .rdatas
                    .iter()
                    .filter(|rdata| !unchanged.contains(rdata.as_slice()))
                    .map(|rdata| Record {
                        owner: owner.clone(),
                        rtype: rrset.rtype,
                        ttl: rrset.ttl,
                        rdata: rdata.clone(),
                    }),
            );
        }
    }
    missing
}

fn is_apex_soa(zone: &Zone, owner: &[u8], rtype: u16) -> bool {
    rtype == rtype::SOA && owner == zone.origin.as_slice()
}

/// The zone's SOA as a record; one with empty RDATA (serial 0) when the zone
/// has none, which a validated zone always has.
fn soa_record(zone: &Zone) -> Record {
    let soa = zone.rrset(&zone.origin, rtype::SOA);
    Record {
        owner: zone.origin.clone(),
        rtype: rtype::SOA,
        ttl: soa.map_or(0, |soa| soa.ttl),
        rdata: soa
            .and_then(|soa| soa.rdatas.first())
            .cloned()
            .unwrap_or_default(),
    }
}

/// Applies one diff to a zone, for a secondary receiving IXFR. The zone's
/// serial must be the diff's `from_serial`, and every removed record must be
/// there (matched by owner, type and RDATA: the TTL is not part of a
/// record's identity, RFC 2181 §5); otherwise `Err`, and the client falls
/// back to AXFR. Adding a record that is there already only sets the TTL.
/// An RRset whose records were added with different TTLs takes the TTL of
/// the last one, as BIND does. RRsets and nodes left empty disappear.
/// Returns the new version; `zone` is untouched.
pub fn apply(zone: &Zone, diff: &ZoneDiff) -> Result<Zone, String> {
    apply_all(zone, std::slice::from_ref(diff))
}

/// Applies consecutive diffs (what one IXFR response carries) with a single
/// copy of the zone. Fails, leaving `zone` untouched, if any of them fails.
pub fn apply_all(zone: &Zone, diffs: &[ZoneDiff]) -> Result<Zone, String> {
    let mut next = zone.clone();
    for diff in diffs {
        apply_in_place(&mut next, diff)?;
    }
    Ok(next)
}

fn apply_in_place(zone: &mut Zone, diff: &ZoneDiff) -> Result<(), String> {
    let serial = zone.serial();
    if serial != diff.from_serial() {
        return Err(format!(
            "the zone is at serial {serial} but the diff starts at {}",
            diff.from_serial()
        ));
    }
    if name::to_lowercase(&diff.new_soa.owner) != zone.origin {
        return Err(format!(
            "the new SOA is at {}, not at the zone apex {}",
            name::to_text(&diff.new_soa.owner),
            name::to_text(&zone.origin)
        ));
    }
    for record in &diff.removed {
        remove(zone, record)?;
    }
    for record in &diff.added {
        add(&mut zone.nodes, record);
    }
    let soa = Rrset {
        rtype: rtype::SOA,
        ttl: diff.new_soa.ttl,
        rdatas: vec![diff.new_soa.rdata.clone()],
    };
    let apex = zone.nodes.entry(zone.origin.clone()).or_default();
    match apex.iter_mut().find(|rrset| rrset.rtype == rtype::SOA) {
        Some(old) => *old = soa,
        None => apex.push(soa),
    }
    Ok(())
}

fn remove(zone: &mut Zone, record: &Record) -> Result<(), String> {
    let owner = name::to_lowercase(&record.owner);
    let not_there = || {
        format!(
            "cannot remove {} {}: not in the zone",
            name::to_text(&owner),
            rtype::to_text(record.rtype)
        )
    };
    let rrsets = zone.nodes.get_mut(&owner).ok_or_else(not_there)?;
    let index = rrsets
        .iter()
        .position(|rrset| rrset.rtype == record.rtype)
        .ok_or_else(not_there)?;
    let rrset = &mut rrsets[index];
    let at = rrset
        .rdatas
        .iter()
        .position(|rdata| *rdata == record.rdata)
        .ok_or_else(not_there)?;
    rrset.rdatas.remove(at);
    if rrset.rdatas.is_empty() {
        rrsets.remove(index);
    }
    if rrsets.is_empty() {
        zone.nodes.remove(&owner);
    }
    Ok(())
}

fn add(nodes: &mut BTreeMap<Vec<u8>, Vec<Rrset>>, record: &Record) {
    let rrsets = nodes.entry(name::to_lowercase(&record.owner)).or_default();
    match rrsets.iter_mut().find(|rrset| rrset.rtype == record.rtype) {
        Some(rrset) => {
            rrset.ttl = record.ttl;
            if !rrset.rdatas.contains(&record.rdata) {
                rrset.rdatas.push(record.rdata.clone());
            }
        }
        None => rrsets.push(Rrset {
            rtype: record.rtype,
            ttl: record.ttl,
            rdatas: vec![record.rdata.clone()],
        }),
    }
}

/// Every record of the zone, apex SOA first, then in name order (AXFR out
/// sends this between two copies of the SOA).
pub fn records(zone: &Zone) -> Vec<Record> {
    let mut all = Vec::with_capacity(zone.record_count());
    if zone.rrset(&zone.origin, rtype::SOA).is_some() {
        all.push(soa_record(zone));
    }
    for (owner, rrsets) in &zone.nodes {
        for rrset in rrsets {
            if is_apex_soa(zone, owner, rrset.rtype) {
                continue;
            }
            all.extend(rrset.rdatas.iter().map(|rdata| Record {
                owner: owner.clone(),
                rtype: rrset.rtype,
                ttl: rrset.ttl,
                rdata: rdata.clone(),
            }));
        }
    }
    all
}

/// Builds a zone from records (AXFR in), in their order. Owners are
/// lowercased, duplicate records collapse (RFC 2181 §5). When the records of
/// one RRset disagree on TTL the RRset takes the lowest, as the zone file
/// loader does: a secondary then serves what the primary would load from
/// the same records, and no copy is cached longer than any record said.
/// No validation: the primary validated its zone.
pub fn from_records(origin: &[u8], records: impl IntoIterator<Item = Record>) -> Zone {
    let mut nodes: BTreeMap<Vec<u8>, Vec<Rrset>> = BTreeMap::new();
    for record in records {
        let rrsets = nodes.entry(name::to_lowercase(&record.owner)).or_default();
        match rrsets.iter_mut().find(|rrset| rrset.rtype == record.rtype) {
            Some(rrset) => {
                rrset.ttl = rrset.ttl.min(record.ttl);
                if !rrset.rdatas.contains(&record.rdata) {
                    rrset.rdatas.push(record.rdata);
                }
            }
            None => rrsets.push(Rrset {
                rtype: record.rtype,
                ttl: record.ttl,
                rdatas: vec![record.rdata],
            }),
        }
    }
    Zone {
        origin: name::to_lowercase(origin),
        nodes,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::zone::load_text;

    fn zone(text: &str) -> Zone {
        let origin = name::from_text("example.").unwrap();
        load_text(&origin, text, Path::new("test.zone"))
            .unwrap()
            .zone
    }

    fn with_serial(serial: u32, body: &str) -> Zone {
        zone(&format!(
            "$ORIGIN example.\n$TTL 3600\n\
             @ IN SOA ns1 hostmaster {serial} 7200 900 1209600 300\n{body}"
        ))
    }

    /// A zone's content regardless of the order of RRsets and RDATA (which
    /// DNS does not give meaning to): owner → type → (TTL, sorted RDATA).
    type Content = BTreeMap<Vec<u8>, BTreeMap<u16, (u32, Vec<Vec<u8>>)>>;

    fn content(zone: &Zone) -> Content {
        zone.nodes
            .iter()
            .map(|(owner, rrsets)| {
                let by_type = rrsets
                    .iter()
                    .map(|rrset| {
                        let mut rdatas = rrset.rdatas.clone();
                        rdatas.sort();
                        (rrset.rtype, (rrset.ttl, rdatas))
                    })
                    .collect();
                (owner.clone(), by_type)
            })
            .collect()
    }

    fn assert_same(a: &Zone, b: &Zone) {
        assert_eq!(a.origin, b.origin);
        assert_eq!(content(a), content(b));
    }

    const BASE: &str = "@ NS ns1\n@ NS ns2\nns1 A 192.0.2.1\nns2 A 192.0.2.2\n\
                        www A 192.0.2.10\nwww A 192.0.2.11\nmail MX 10 mx\nmx A 192.0.2.25\n";

    /// Versions that exercise each kind of change from `BASE` at serial 1.
    fn versions() -> Vec<(&'static str, Zone)> {
        vec![
            ("unchanged but serial", with_serial(2, BASE)),
            (
                "record added",
                with_serial(2, &format!("{BASE}www A 192.0.2.12\n")),
            ),
            (
                "record removed",
                with_serial(2, &BASE.replace("www A 192.0.2.11\n", "")),
            ),
            (
                "TTL changed",
                with_serial(
                    2,
                    &BASE.replace(
                        "www A 192.0.2.10\nwww A 192.0.2.11",
                        "www 60 A 192.0.2.10\nwww 60 A 192.0.2.11",
                    ),
                ),
            ),
            (
                "new node",
                with_serial(2, &format!("{BASE}ftp AAAA 2001:db8::21\n")),
            ),
            (
                "node removed",
                with_serial(2, &BASE.replace("mail MX 10 mx\n", "")),
            ),
            (
                "SOA fields changed",
                zone(&format!(
                    "$ORIGIN example.\n$TTL 3600\n\
                     @ 600 IN SOA ns2 admin 2 3600 600 604800 60\n{BASE}"
                )),
            ),
            (
                "everything at once",
                with_serial(
                    4_000_000_000,
                    "@ NS ns1\nns1 A 192.0.2.1\nwww 30 A 192.0.2.10\nnew TXT \"x\"\n",
                ),
            ),
        ]
    }

    #[test]
    fn diff_then_apply_reproduces_the_new_version() {
        let old = with_serial(1, BASE);
        for (what, new) in versions() {
            let change = diff(&old, &new);
            assert_eq!(change.from_serial(), 1, "{what}");
            assert_eq!(change.to_serial(), new.serial(), "{what}");
            let applied = apply(&old, &change).unwrap_or_else(|error| panic!("{what}: {error}"));
            assert_same(&applied, &new);
            // And back again.
            let back = apply(&new, &diff(&new, &old)).unwrap();
            assert_same(&back, &old);
        }
    }

    #[test]
    fn diff_lists_only_what_changed() {
        let old = with_serial(1, BASE);
        let change = diff(&old, &with_serial(2, BASE));
        assert!(change.removed.is_empty() && change.added.is_empty());

        let new = with_serial(2, &format!("{BASE}www A 192.0.2.12\n"));
        let change = diff(&old, &new);
        assert!(change.removed.is_empty());
        assert_eq!(change.added.len(), 1);
        assert_eq!(change.added[0].rdata, vec![192, 0, 2, 12]);
    }

    #[test]
    fn a_changed_ttl_removes_and_adds_the_whole_rrset() {
        let old = with_serial(1, BASE);
        let (_, new) = &versions()[3];
        let change = diff(&old, new);
        let www = name::from_text("www.example.").unwrap();
        assert_eq!(change.removed.len(), 2);
        assert_eq!(change.added.len(), 2);
        assert!(
            change
                .removed
                .iter()
                .all(|r| r.owner == www && r.ttl == 3600)
        );
        assert!(change.added.iter().all(|r| r.owner == www && r.ttl == 60));
    }

    #[test]
    fn diff_is_sorted_and_deterministic() {
        let old = with_serial(1, BASE);
        let (_, new) = &versions()[7];
        let change = diff(&old, new);
        assert!(change.removed.is_sorted());
        assert!(change.added.is_sorted());
        assert_eq!(change, diff(&old, new));
        assert!(
            change
                .removed
                .iter()
                .chain(&change.added)
                .all(|r| r.rtype != rtype::SOA),
            "SOA records travel in old_soa and new_soa only"
        );
    }

    #[test]
    fn apply_refuses_a_diff_from_another_serial() {
        let old = with_serial(1, BASE);
        let new = with_serial(2, BASE);
        let change = diff(&old, &new);
        let error = apply(&new, &change).unwrap_err();
        assert!(error.contains("serial 2"), "{error}");
    }

    #[test]
    fn apply_refuses_to_remove_a_record_that_is_not_there() {
        let old = with_serial(1, BASE);
        let new = with_serial(2, &BASE.replace("www A 192.0.2.11\n", ""));
        let mut change = diff(&old, &new);
        change.removed[0].rdata = vec![198, 51, 100, 1];
        let error = apply(&old, &change).unwrap_err();
        assert!(error.contains("www.example."), "{error}");
    }

    #[test]
    fn apply_ignores_the_ttl_of_a_removal_and_an_existing_addition_sets_the_ttl() {
        let old = with_serial(1, BASE);
        let www = name::from_text("www.example.").unwrap();
        let mut change = diff(&old, &with_serial(2, BASE));
        change.removed.push(Record {
            owner: www.clone(),
            rtype: rtype::A,
            ttl: 5,
            rdata: vec![192, 0, 2, 10],
        });
        change.added.push(Record {
            owner: www.clone(),
            rtype: rtype::A,
            ttl: 120,
            rdata: vec![192, 0, 2, 11],
        });
        change.added.push(Record {
            owner: www.clone(),
            rtype: rtype::A,
            ttl: 90,
            rdata: vec![192, 0, 2, 12],
        });
        let applied = apply(&old, &change).unwrap();
        let rrset = applied.rrset(&www, rtype::A).unwrap();
        assert_eq!(rrset.ttl, 90, "the last added record's TTL wins");
        assert_eq!(rrset.rdatas, vec![vec![192, 0, 2, 11], vec![192, 0, 2, 12]]);
    }

    #[test]
    fn apply_leaves_its_input_untouched() {
        let old = with_serial(1, BASE);
        let before = content(&old);
        let (_, new) = &versions()[7];
        apply(&old, &diff(&old, new)).unwrap();
        assert_eq!(content(&old), before);
    }

    #[test]
    fn diffs_chain() {
        let a = with_serial(1, BASE);
        let b = with_serial(2, &format!("{BASE}www A 192.0.2.12\n"));
        let c = with_serial(3, &BASE.replace("mail MX 10 mx\n", ""));
        let ab = diff(&a, &b);
        let bc = diff(&b, &c);
        let at_b = apply(&a, &ab).unwrap();
        let at_c = apply(&at_b, &bc).unwrap();
        assert_same(&at_c, &c);
        assert_same(&apply_all(&a, &[ab.clone(), bc.clone()]).unwrap(), &c);
        assert!(apply_all(&a, &[bc, ab]).is_err(), "out of order");
    }

    #[test]
    fn serial_wraps_around() {
        let a = with_serial(u32::MAX, BASE);
        let b = with_serial(1, &format!("{BASE}www A 192.0.2.12\n"));
        let change = diff(&a, &b);
        assert_eq!((change.from_serial(), change.to_serial()), (u32::MAX, 1));
        assert_same(&apply(&a, &change).unwrap(), &b);
    }

    #[test]
    fn records_round_trip_through_from_records() {
        let zone = with_serial(7, BASE);
        let all = records(&zone);
        assert_eq!(all[0].rtype, rtype::SOA, "SOA first");
        assert_eq!(all.iter().filter(|r| r.rtype == rtype::SOA).count(), 1);
        assert_eq!(all.len(), zone.record_count());
        let rebuilt = from_records(&zone.origin, all);
        assert_same(&rebuilt, &zone);
        assert_eq!(rebuilt.serial(), 7);
    }

    #[test]
    fn from_records_lowercases_collapses_duplicates_and_takes_the_lowest_ttl() {
        let origin = name::from_text("example.").unwrap();
        // Built by hand: `name::from_text` would lowercase already.
        let record = |owner: &[u8], ttl| Record {
            owner: owner.to_vec(),
            rtype: rtype::A,
            ttl,
            rdata: vec![192, 0, 2, 1],
        };
        let zone = from_records(
            &origin,
            [
                record(b"\x03WWW\x07example\x00", 300),
                record(b"\x03www\x07EXAMPLE\x00", 60),
                Record {
                    rdata: vec![192, 0, 2, 2],
                    ..record(b"\x03www\x07example\x00", 600)
                },
            ],
        );
        let www = name::from_text("www.example.").unwrap();
        assert_eq!(zone.nodes.len(), 1);
        let rrset = zone.rrset(&www, rtype::A).unwrap();
        assert_eq!(rrset.ttl, 60);
        assert_eq!(rrset.rdatas.len(), 2);
    }
}
