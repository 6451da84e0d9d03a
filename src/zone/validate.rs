//! Scanned records → a validated `Zone`, with the checks kzonecheck and
//! named-checkzone make (RFC 1034 §4.2.1, RFC 2181 §10.1, RFC 6672 §2.4).
//! Errors stop the zone from loading; warnings are reported and the zone
//! loads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::load::Loaded;
use super::{Rrset, Zone, ZoneProblem};
use crate::wire::name::{self, to_text};
use crate::wire::rtype;

/// A record as scanned, with where it came from.
#[derive(Clone, Debug)]
pub struct SourcedRecord {
    /// Lowercased wire name.
    pub owner: Vec<u8>,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
    /// Index into `Scanned::files`.
    pub file: u32,
    pub line: u32,
}

/// Everything scanned for one zone: its records and the files they came
/// from (the zone file and its `$INCLUDE`s).
#[derive(Debug, Default)]
pub struct Scanned {
    pub files: Vec<PathBuf>,
    pub records: Vec<SourcedRecord>,
}

/// Types that may share an owner with a CNAME (RFC 2181 §10.1, RFC 4035).
fn may_accompany_cname(rtype: u16) -> bool {
    matches!(rtype, rtype::CNAME | rtype::RRSIG | rtype::NSEC)
}

/// An RRset being assembled, with where its first record was.
struct Sourced {
    rrset: Rrset,
    file: u32,
    line: u32,
}

pub fn build_zone(
    origin: &[u8],
    scanned: Scanned,
    path: &Path,
) -> Result<Loaded, Vec<ZoneProblem>> {
    let Scanned { files, mut records } = scanned;
    let problem = |file: u32, line: u32, message: String| ZoneProblem {
        file: files
            .get(file as usize)
            .cloned()
            .unwrap_or_else(|| path.to_path_buf()),
        line: line as usize,
        message,
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let origin_text = to_text(origin);

    records.retain(|record| {
        let message = if record.class != rtype::CLASS_IN {
            format!("class {} is not supported; only IN", record.class)
        } else if !name::is_within(&record.owner, origin) {
            format!(
                "record {} is outside the zone {origin_text}",
                to_text(&record.owner)
            )
        } else if record.rtype == rtype::SOA && record.owner != origin {
            format!(
                "SOA record at {} is not at the zone apex {origin_text}",
                to_text(&record.owner)
            )
        } else {
            return true;
        };
        errors.push(problem(record.file, record.line, message));
        false
    });

    // Group by owner. The sort is stable, so each RRset keeps zone order.
    records.sort_by(|a, b| a.owner.cmp(&b.owner));
    let mut nodes: Vec<(Vec<u8>, Vec<Sourced>)> = Vec::new();
    for record in records {
        if nodes.last().is_none_or(|(owner, _)| *owner != record.owner) {
            nodes.push((record.owner, Vec::new()));
        }
        let Some((owner, rrsets)) = nodes.last_mut() else {
            continue;
        };
        match rrsets
            .iter_mut()
            .find(|sourced| sourced.rrset.rtype == record.rtype)
        {
            None => rrsets.push(Sourced {
                rrset: Rrset {
                    rtype: record.rtype,
                    ttl: record.ttl,
                    rdatas: vec![record.rdata],
                },
                file: record.file,
                line: record.line,
            }),
            Some(sourced) => {
                let rrset = &mut sourced.rrset;
                if rrset.rdatas.contains(&record.rdata) {
                    continue; // duplicate records collapse silently (RFC 2181 §5)
                }
                if matches!(record.rtype, rtype::SOA | rtype::CNAME | rtype::DNAME) {
                    let message = format!(
                        "more than one {} record at {}",
                        rtype::to_text(record.rtype),
                        to_text(owner)
                    );
                    errors.push(problem(record.file, record.line, message));
                    continue;
                }
                if rrset.ttl != record.ttl {
                    let lowest = rrset.ttl.min(record.ttl);
                    let message = format!(
                        "TTL {} differs from {} of the same RRset; using {lowest}",
                        record.ttl, rrset.ttl
                    );
                    warnings.push(problem(record.file, record.line, message));
                    rrset.ttl = lowest;
                }
                rrset.rdatas.push(record.rdata);
            }
        }
    }

    for (owner, rrsets) in &nodes {
        let cname = rrsets
            .iter()
            .find(|sourced| sourced.rrset.rtype == rtype::CNAME);
        let other = rrsets
            .iter()
            .find(|sourced| !may_accompany_cname(sourced.rrset.rtype));
        if let (Some(cname), Some(other)) = (cname, other) {
            let message = format!(
                "CNAME and other data ({}) at {}",
                rtype::to_text(other.rrset.rtype),
                to_text(owner)
            );
            errors.push(problem(cname.file, cname.line, message));
        }
    }

    let nodes: BTreeMap<Vec<u8>, Vec<Sourced>> = nodes.into_iter().collect();
    let has = |owner: &[u8], wanted: u16| {
        nodes
            .get(owner)
            .is_some_and(|rrsets| rrsets.iter().any(|s| s.rrset.rtype == wanted))
    };
    // Apex problems are reported at the apex's first record, else line 1.
    let (apex_file, apex_line) = nodes
        .get(origin)
        .and_then(|rrsets| rrsets.first())
        .map_or((u32::MAX, 1), |s| (s.file, s.line));
    if !has(origin, rtype::SOA) {
        errors.push(problem(
            apex_file,
            apex_line,
            format!("no SOA record at the zone apex {origin_text}"),
        ));
    }
    if !has(origin, rtype::NS) {
        errors.push(problem(
            apex_file,
            apex_line,
            format!("no NS records at the zone apex {origin_text}"),
        ));
    }

    // Glue: every name server inside the subtree it serves needs an address.
    for (owner, rrsets) in &nodes {
        if owner.as_slice() == origin {
            continue;
        }
        let Some(ns) = rrsets
            .iter()
            .find(|sourced| sourced.rrset.rtype == rtype::NS)
        else {
            continue;
        };
        for target in &ns.rrset.rdatas {
            let target = name::to_lowercase(target);
            if name::is_within(&target, owner)
                && !has(&target, rtype::A)
                && !has(&target, rtype::AAAA)
            {
                let message = format!(
                    "missing glue: no A or AAAA for name server {} of delegation {}",
                    to_text(&target),
                    to_text(owner)
                );
                warnings.push(problem(ns.file, ns.line, message));
            }
        }
    }

    if !errors.is_empty() {
        errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        return Err(errors);
    }
    let nodes = nodes
        .into_iter()
        .map(|(owner, rrsets)| {
            (
                owner,
                rrsets.into_iter().map(|sourced| sourced.rrset).collect(),
            )
        })
        .collect();
    Ok(Loaded {
        zone: Zone {
            origin: origin.to_vec(),
            nodes,
        },
        warnings,
        files: files.clone(),
    })
}
