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
    /// Where each of its records was, kept for signed zones only.
    record_lines: Vec<(u32, u32)>,
}

/// Where each record of a signed zone came from, in the zone's order:
/// `Zone::nodes` in key order, each node's RRsets in order, each RRset's
/// RDATAs in order. `check-zone --dnssec` names lines with it. Empty for
/// unsigned zones (nothing needs it, so nothing is kept).
#[derive(Clone, Debug, Default)]
pub struct RecordLines {
    pub files: Vec<PathBuf>,
    /// (index into `files`, line) of each record.
    pub records: Vec<(u32, u32)>,
}

impl RecordLines {
    /// The file and line of the record at `index` in the zone's order.
    pub fn get(&self, index: usize) -> Option<(&Path, usize)> {
        let &(file, line) = self.records.get(index)?;
        let file = self.files.get(file as usize)?;
        Some((file.as_path(), line as usize))
    }
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
    let signed = records
        .iter()
        .any(|record| record.rtype == rtype::DNSKEY && record.owner == origin);

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
                record_lines: if signed {
                    vec![(record.file, record.line)]
                } else {
                    Vec::new()
                },
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
                // RRSIGs at one owner cover different RRsets and carry
                // their TTLs (RFC 4034 §3): they may differ. Answers give
                // each signature the TTL of the RRset it covers.
                if rrset.ttl != record.ttl && record.rtype != rtype::RRSIG {
                    let lowest = rrset.ttl.min(record.ttl);
                    let message = format!(
                        "TTL {} differs from {} of the same RRset; using {lowest}",
                        record.ttl, rrset.ttl
                    );
                    warnings.push(problem(record.file, record.line, message));
                    rrset.ttl = lowest;
                }
                rrset.rdatas.push(record.rdata);
                if signed {
                    sourced.record_lines.push((record.file, record.line));
                }
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

    if has(origin, rtype::DNSKEY) {
        warnings.extend(dnssec_warnings(origin, &nodes, |file, line, message| {
            problem(file, line, message)
        }));
    }

    if !errors.is_empty() {
        errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        return Err(errors);
    }
    let mut lines = RecordLines {
        files: if signed { files.clone() } else { Vec::new() },
        records: Vec::new(),
    };
    let nodes = nodes
        .into_iter()
        .map(|(owner, rrsets)| {
            (
                owner,
                rrsets
                    .into_iter()
                    .map(|sourced| {
                        lines.records.extend(sourced.record_lines);
                        sourced.rrset
                    })
                    .collect(),
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
        lines,
    })
}

/// Most unsigned RRsets named one by one; the rest are counted.
const UNSIGNED_LISTED_MAX: usize = 5;

/// The cheap checks of a signed zone (one with a DNSKEY at its apex), as
/// warnings: authoritative RRsets without an RRSIG, and an NSEC chain that
/// does not run from the apex through every NSEC owner back to the apex.
/// Signatures themselves are not verified here.
fn dnssec_warnings(
    origin: &[u8],
    nodes: &BTreeMap<Vec<u8>, Vec<Sourced>>,
    problem: impl Fn(u32, u32, String) -> ZoneProblem,
) -> Vec<ZoneProblem> {
    let mut warnings = Vec::new();
    let is_cut = |owner: &[u8]| {
        owner != origin
            && nodes
                .get(owner)
                .is_some_and(|rrsets| rrsets.iter().any(|s| s.rrset.rtype == rtype::NS))
    };
    // Below a cut only glue lives; it is not signed (RFC 4035 §2.2).
    let occluded = |owner: &[u8]| {
        let mut current = owner;
        while let Some(up) = name::parent(current) {
            if up.len() < origin.len() {
                return false;
            }
            if is_cut(up) {
                return true;
            }
            current = up;
        }
        false
    };
    let mut unsigned = 0;
    for (owner, rrsets) in nodes {
        if occluded(owner) {
            continue;
        }
        let covered: Vec<u16> = rrsets
            .iter()
            .filter(|s| s.rrset.rtype == rtype::RRSIG)
            .flat_map(|s| s.rrset.rdatas.iter())
            .filter_map(|rdata| crate::wire::dnssec::rrsig_type_covered(rdata))
            .collect();
        for sourced in rrsets {
            let rrset_type = sourced.rrset.rtype;
            // A delegation's NS RRset is not signed by the parent.
            if rrset_type == rtype::RRSIG || (rrset_type == rtype::NS && is_cut(owner)) {
                continue;
            }
            if !covered.contains(&rrset_type) {
                unsigned += 1;
                if unsigned <= UNSIGNED_LISTED_MAX {
                    let message = format!(
                        "the zone is signed but the {} RRset at {} has no RRSIG",
                        rtype::to_text(rrset_type),
                        to_text(owner)
                    );
                    warnings.push(problem(sourced.file, sourced.line, message));
                }
            }
        }
    }
    if unsigned > UNSIGNED_LISTED_MAX {
        let message = format!(
            "{} more RRsets have no RRSIG",
            unsigned - UNSIGNED_LISTED_MAX
        );
        warnings.push(problem(u32::MAX, 1, message));
    }

    // The NSEC chain: from the apex, each NSEC's next name is the next
    // owner with an NSEC, and the last leads back to the apex.
    let nsec = |owner: &[u8]| {
        nodes.get(owner).and_then(|rrsets| {
            rrsets
                .iter()
                .find(|s| s.rrset.rtype == rtype::NSEC)
                .map(|s| (s.rrset.rdatas.first(), s.file, s.line))
        })
    };
    let nsec_owners = nodes
        .keys()
        .filter(|owner| nsec(owner).is_some() && !occluded(owner))
        .count();
    if nsec_owners > 0 {
        let mut current = origin.to_vec();
        let mut visited = 0;
        let broken = loop {
            let Some((Some(rdata), file, line)) = nsec(&current) else {
                break Some((u32::MAX, 1, format!("no NSEC at {}", to_text(&current))));
            };
            visited += 1;
            let mut next = Vec::new();
            if name::read_compressed(rdata, 0, &mut next).is_none() {
                break Some((file, line, "unreadable NSEC next name".to_string()));
            }
            let next = name::to_lowercase(&next);
            if next.as_slice() == origin {
                break (visited != nsec_owners).then(|| {
                    let message = format!(
                        "the NSEC chain returns to the apex after {visited} of {nsec_owners} NSEC records"
                    );
                    (file, line, message)
                });
            }
            if visited > nsec_owners {
                break Some((file, line, "the NSEC chain loops".to_string()));
            }
            current = next;
        };
        if let Some((file, line, message)) = broken {
            warnings.push(problem(
                file,
                line,
                format!("NSEC chain not closed: {message}"),
            ));
        }
    }
    warnings.extend(nsec3_chain_warning(origin, nodes, &problem));
    warnings
}

/// The NSEC3 chain's cheap check: sorted by hash, each NSEC3 of the
/// NSEC3PARAM's chain names the next one's hash, and the last the first
/// (RFC 5155 §7.1). Hashing the zone's names to see that each has its
/// NSEC3 costs the iterations per name; `check-zone --dnssec` does that.
fn nsec3_chain_warning(
    origin: &[u8],
    nodes: &BTreeMap<Vec<u8>, Vec<Sourced>>,
    problem: impl Fn(u32, u32, String) -> ZoneProblem,
) -> Option<ZoneProblem> {
    use super::dnssec_check::nsec3_next_hash;
    use crate::wire::dnssec::{Nsec3Params, base32hex, nsec3_owner_hash};
    let rrset_of = |owner: &[u8], wanted: u16| {
        nodes
            .get(owner)
            .and_then(|rrsets| rrsets.iter().find(|s| s.rrset.rtype == wanted))
    };
    let chain_params = rrset_of(origin, rtype::NSEC3PARAM)
        .and_then(|sourced| sourced.rrset.rdatas.first())
        .and_then(|rdata| Nsec3Params::parse(rdata));
    // (owner hash, next hash, file, line) of each NSEC3 of the chain.
    let mut chain = Vec::new();
    for (owner, rrsets) in nodes {
        let Some(sourced) = rrsets.iter().find(|s| s.rrset.rtype == rtype::NSEC3) else {
            continue;
        };
        let Some(rdata) = sourced.rrset.rdatas.first() else {
            continue;
        };
        let params = Nsec3Params::parse(rdata);
        let in_chain = match (&chain_params, &params) {
            (Some(chain_params), Some(params)) => params.same_chain(chain_params),
            (None, _) => true,
            (Some(_), None) => false,
        };
        if !in_chain {
            continue;
        }
        let (Some(hash), Some(next)) = (nsec3_owner_hash(owner), nsec3_next_hash(rdata)) else {
            let message = format!("unreadable NSEC3 record at {}", to_text(owner));
            return Some(problem(sourced.file, sourced.line, message));
        };
        chain.push((hash, next, sourced.file, sourced.line));
    }
    chain.sort_by_key(|entry| entry.0);
    let mut broken = 0;
    let mut first_break = None;
    for (index, (hash, next, file, line)) in chain.iter().enumerate() {
        let expected = chain[(index + 1) % chain.len()].0;
        if *next != expected {
            broken += 1;
            first_break.get_or_insert((*file, *line, *hash, *next, expected));
        }
    }
    let (file, line, hash, next, expected) = first_break?;
    let mut message = format!(
        "NSEC3 chain not closed: the NSEC3 of hash {} names {} as next, but the next NSEC3 is {}",
        base32hex(&hash),
        base32hex(&next),
        base32hex(&expected)
    );
    if broken > 1 {
        message.push_str(&format!(" ({} more breaks)", broken - 1));
    }
    Some(problem(file, line, message))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::wire::name::from_text;
    use crate::zone::load_text;

    const SIGNED: &str = "$ORIGIN example.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n NS ns\n DNSKEY 257 3 13 AAAA\n NSEC ns NS SOA RRSIG NSEC DNSKEY\n RRSIG SOA 13 1 60 20340101000000 20240101000000 1 example. AAAA\n RRSIG NS 13 1 3600 20340101000000 20240101000000 1 example. AAAA\n RRSIG DNSKEY 13 1 60 20340101000000 20240101000000 1 example. AAAA\n RRSIG NSEC 13 1 60 20340101000000 20240101000000 1 example. AAAA\nns A 192.0.2.1\n NSEC www A RRSIG NSEC\n RRSIG NSEC 13 2 60 20340101000000 20240101000000 1 example. AAAA\nsub NS ns.sub\nns.sub A 192.0.2.2\n";

    #[test]
    fn signed_zone_warnings_name_unsigned_rrsets_and_an_open_chain() {
        let origin = from_text("example").unwrap();
        let loaded = load_text(&origin, SIGNED, Path::new("z")).unwrap();
        let messages: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
        // ns's A is unsigned; sub's NS (a delegation) and its glue are not
        // expected to be signed. RRSIG TTLs differing is no problem.
        assert!(
            messages
                .iter()
                .any(|m| m.contains("the A RRset at ns.example. has no RRSIG")),
            "{messages:?}"
        );
        assert!(
            !messages.iter().any(|m| m.contains("sub.example.")),
            "{messages:?}"
        );
        assert!(!messages.iter().any(|m| m.contains("TTL")), "{messages:?}");
        // ns's NSEC names www, which has none.
        assert!(
            messages
                .iter()
                .any(|m| m.contains("NSEC chain not closed: no NSEC at www.example.")),
            "{messages:?}"
        );
    }
}
