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
    pub file: PathBuf,
    pub line: usize,
}

/// Types that may share an owner with a CNAME (RFC 2181 §10.1, RFC 4035).
fn may_accompany_cname(rtype: u16) -> bool {
    matches!(rtype, rtype::CNAME | rtype::RRSIG | rtype::NSEC)
}

pub fn build_zone(
    origin: &[u8],
    records: Vec<SourcedRecord>,
    path: &Path,
) -> Result<Loaded, Vec<ZoneProblem>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let at = |record: &SourcedRecord, message: String| ZoneProblem {
        file: record.file.clone(),
        line: record.line,
        message,
    };
    let origin_text = to_text(origin);

    // Owner → type → (rrset, line of its first record).
    let mut nodes: BTreeMap<Vec<u8>, Vec<(Rrset, usize)>> = BTreeMap::new();
    let mut first_line_of: BTreeMap<Vec<u8>, (PathBuf, usize)> = BTreeMap::new();
    for record in &records {
        if record.class != rtype::CLASS_IN {
            errors.push(at(
                record,
                format!("class {} is not supported; only IN", record.class),
            ));
            continue;
        }
        if !name::is_within(&record.owner, origin) {
            errors.push(at(
                record,
                format!(
                    "record {} is outside the zone {origin_text}",
                    to_text(&record.owner)
                ),
            ));
            continue;
        }
        if record.rtype == rtype::SOA && record.owner != origin {
            errors.push(at(
                record,
                format!(
                    "SOA record at {} is not at the zone apex {origin_text}",
                    to_text(&record.owner)
                ),
            ));
            continue;
        }
        first_line_of
            .entry(record.owner.clone())
            .or_insert((record.file.clone(), record.line));
        let rrsets = nodes.entry(record.owner.clone()).or_default();
        match rrsets
            .iter_mut()
            .find(|(rrset, _)| rrset.rtype == record.rtype)
        {
            Some((rrset, _)) => {
                if rrset.rdatas.contains(&record.rdata) {
                    continue; // duplicate records collapse silently (RFC 2181 §5)
                }
                if rrset.ttl != record.ttl {
                    warnings.push(at(
                        record,
                        format!(
                            "TTL {} differs from {} of the same RRset; using {}",
                            record.ttl,
                            rrset.ttl,
                            rrset.ttl.min(record.ttl)
                        ),
                    ));
                    rrset.ttl = rrset.ttl.min(record.ttl);
                }
                if matches!(record.rtype, rtype::SOA | rtype::CNAME | rtype::DNAME) {
                    errors.push(at(
                        record,
                        format!(
                            "more than one {} record at {}",
                            rtype::to_text(record.rtype),
                            to_text(&record.owner)
                        ),
                    ));
                    continue;
                }
                rrset.rdatas.push(record.rdata.clone());
            }
            None => rrsets.push((
                Rrset {
                    rtype: record.rtype,
                    ttl: record.ttl,
                    rdatas: vec![record.rdata.clone()],
                },
                record.line,
            )),
        }
    }

    // Apex problems are reported at the apex's first record, else line 1.
    let (apex_file, apex_line) = first_line_of
        .get(origin)
        .cloned()
        .unwrap_or_else(|| (path.to_path_buf(), 1));
    let whole_file = |message: String| ZoneProblem {
        file: apex_file.clone(),
        line: apex_line,
        message,
    };
    let apex = nodes.get(origin);
    if !apex.is_some_and(|rrsets| rrsets.iter().any(|(rrset, _)| rrset.rtype == rtype::SOA)) {
        errors.push(whole_file(format!(
            "no SOA record at the zone apex {origin_text}"
        )));
    }
    if !apex.is_some_and(|rrsets| rrsets.iter().any(|(rrset, _)| rrset.rtype == rtype::NS)) {
        errors.push(whole_file(format!(
            "no NS records at the zone apex {origin_text}"
        )));
    }

    for (owner, rrsets) in &nodes {
        let cname = rrsets.iter().find(|(rrset, _)| rrset.rtype == rtype::CNAME);
        if let Some((_, line)) = cname
            && let Some((other, _)) = rrsets
                .iter()
                .find(|(rrset, _)| !may_accompany_cname(rrset.rtype))
        {
            let file = first_line_of
                .get(owner)
                .map_or_else(|| path.to_path_buf(), |(file, _)| file.clone());
            errors.push(ZoneProblem {
                file,
                line: *line,
                message: format!(
                    "CNAME and other data ({}) at {}",
                    rtype::to_text(other.rtype),
                    to_text(owner)
                ),
            });
        }
    }

    // Glue: every name server inside the subtree it serves needs an address.
    for (owner, rrsets) in &nodes {
        let Some((ns, line)) = rrsets.iter().find(|(rrset, _)| rrset.rtype == rtype::NS) else {
            continue;
        };
        for target in &ns.rdatas {
            let target = name::to_lowercase(target);
            if owner == origin || !name::is_within(&target, owner) {
                continue;
            }
            let has_address = nodes.get(&target).is_some_and(|rrsets| {
                rrsets
                    .iter()
                    .any(|(rrset, _)| matches!(rrset.rtype, rtype::A | rtype::AAAA))
            });
            if !has_address {
                let file = first_line_of
                    .get(owner)
                    .map_or_else(|| path.to_path_buf(), |(file, _)| file.clone());
                warnings.push(ZoneProblem {
                    file,
                    line: *line,
                    message: format!(
                        "missing glue: no A or AAAA for name server {} of delegation {}",
                        to_text(&target),
                        to_text(owner)
                    ),
                });
            }
        }
    }

    if !errors.is_empty() {
        errors.sort_by_key(|problem| (problem.file.clone(), problem.line));
        return Err(errors);
    }
    let nodes = nodes
        .into_iter()
        .map(|(owner, rrsets)| (owner, rrsets.into_iter().map(|(rrset, _)| rrset).collect()))
        .collect();
    Ok(Loaded {
        zone: Zone {
            origin: origin.to_vec(),
            nodes,
        },
        warnings,
    })
}
