//! Zone → nodes and answers. Each outcome has one small function, as NSD's
//! query.c does: `positive`, `nodata`, `referral`, `cname_chain`.

use ahash::{AHashMap as HashMap, AHashSet as HashSet};

use super::body::{Body, BodyBuilder, Owner, Section};
use super::dnssec::{Mode, NO_PIECE, ZoneSigning, signatures};
use super::{AnswerId, AnswerTable, Below, Denial, TypedAnswers};
use crate::wire::dnssec::{next_closer, rrsig_type_covered};
use crate::wire::name;
use crate::wire::rtype;
use crate::zone::{Rrset, Zone, soa_fields};

/// Longest CNAME chain followed inside a zone when compiling an answer.
pub const CNAME_CHAIN_MAX: usize = 8;

/// RCODEs (RFC 1035 §4.1.1).
pub const NOERROR: u8 = 0;
pub const SERVFAIL: u8 = 2;
pub const NXDOMAIN: u8 = 3;

/// A zone to compile: its data, or only its name when it failed to load
/// (its names then get SERVFAIL).
pub enum ZoneInput<'a> {
    Loaded(&'a Zone),
    Failed { origin: Vec<u8> },
}

impl ZoneInput<'_> {
    fn origin(&self) -> &[u8] {
        match self {
            ZoneInput::Loaded(zone) => &zone.origin,
            ZoneInput::Failed { origin } => origin,
        }
    }
}

/// Compiles every zone into one table. Where zones nest, the deeper zone's
/// names win.
pub fn compile(zones: &[ZoneInput<'_>]) -> AnswerTable {
    let mut order: Vec<&ZoneInput<'_>> = zones.iter().collect();
    order.sort_by_key(|zone| name::label_count(zone.origin()));
    let mut table = AnswerTable::default();
    // Size the table once from the zones: growing vectors of hundreds of
    // megabytes by doubling touches (and the kernel zeroes) twice the memory.
    let (mut names, mut rrsets, mut rdata_bytes) = (0, 0, 0);
    for zone in zones.iter().filter_map(|zone| match zone {
        ZoneInput::Loaded(zone) => Some(zone),
        ZoneInput::Failed { .. } => None,
    }) {
        names += zone.nodes.len();
        for (owner, node_rrsets) in &zone.nodes {
            rrsets += node_rrsets.len();
            for rrset in node_rrsets {
                // Each record: owner (often a 2-byte pointer), 10 fixed bytes, RDATA.
                rdata_bytes += rrset
                    .rdatas
                    .iter()
                    .map(|rdata| 12 + rdata.len().min(owner.len() + 2))
                    .sum::<usize>();
            }
        }
    }
    table.reserve(names, rrsets + names, rdata_bytes + 64 * names / 16);
    for zone in order {
        match zone {
            ZoneInput::Loaded(zone) => ZoneCompiler::new(zone, &mut table).compile(),
            ZoneInput::Failed { origin } => {
                let servfail = push_answer(&mut table, &Body::default(), SERVFAIL, false, 0);
                let exact = push_typed(&mut table, Vec::new(), servfail);
                table.insert_apex(origin, exact, Below::Fixed(servfail));
            }
        }
    }
    table.shrink_to_fit();
    table
}

/// Longest body kept: it must fit a TCP message (65,535 bytes) after a
/// header, the longest question and an OPT record.
pub const BODY_LEN_MAX: usize = 65_000;

fn push_answer(
    table: &mut AnswerTable,
    body: &Body,
    rcode: u8,
    authoritative: bool,
    encloser_len: usize,
) -> AnswerId {
    let mut bytes = body.bytes();
    let mut counts = body.counts;
    let mut rcode = rcode;
    if bytes.len() > BODY_LEN_MAX {
        if body.additional_at <= BODY_LEN_MAX {
            // Additional records are optional: leave them out.
            bytes = &bytes[..body.additional_at];
            counts[2] = 0;
        } else {
            // No transport can carry it: answer SERVFAIL rather than a
            // truncated RRset, and say so at load.
            eprintln!(
                "ringdns: warning: an answer of {} bytes cannot fit a DNS message; it is served as SERVFAIL",
                bytes.len()
            );
            bytes = &[];
            counts = [0; 3];
            rcode = SERVFAIL;
        }
    }
    // Every position below is under BODY_LEN_MAX, so u16 holds it.
    let kept = |positions: &[u32]| -> Vec<u16> {
        positions
            .iter()
            .filter(|&&at| (at as usize) < bytes.len())
            .map(|&at| at as u16)
            .collect()
    };
    let fixups = kept(&body.fixups);
    let question_pointers = kept(&body.question_pointers);
    let cuts: Vec<_> = body
        .additional_cuts
        .iter()
        .filter(|cut| cut.end as usize <= bytes.len())
        .copied()
        .collect();
    let answer = super::Answer {
        rcode,
        authoritative,
        cuts_start: table.additional_cuts.len() as u32,
        cuts_len: cuts.len() as u16,
        counts,
        body_start: table.bodies.len() as u32,
        body_len: bytes.len() as u32,
        authority_at: body.authority_at.min(bytes.len()) as u32,
        additional_at: body.additional_at.min(bytes.len()) as u32,
        fixup_start: table.fixups.len() as u32,
        fixup_len: fixups.len() as u16,
        question_pointer_len: question_pointers.len() as u16,
        encloser_len: encloser_len as u8,
        dnssec: table.answers.len() as AnswerId,
        denial: None,
    };
    table.bodies.extend_from_slice(bytes);
    table.fixups.extend_from_slice(&fixups);
    table.fixups.extend_from_slice(&question_pointers);
    table.additional_cuts.extend_from_slice(&cuts);
    table.answers.push(answer);
    (table.answers.len() - 1) as AnswerId
}

fn push_typed(
    table: &mut AnswerTable,
    listed: Vec<(u16, AnswerId)>,
    other: AnswerId,
) -> TypedAnswers {
    let start = table.typed.len() as u32;
    let len = listed.len() as u32;
    table.typed.extend(listed);
    TypedAnswers { start, len, other }
}

/// Where a name leads inside the zone, for CNAME chains.
enum Target<'z> {
    OutOfZone,
    /// At or below a zone cut: the referral's cut name.
    Delegated(&'z [u8]),
    /// Below a DNAME: not followed at compile time.
    BelowDname,
    /// An existing name with its RRsets (empty for an empty non-terminal).
    Exists(&'z [Rrset]),
    /// Synthesised from the wildcard owner named first, with its RRsets.
    Wildcard(Vec<u8>, &'z [Rrset]),
    NxDomain,
}

/// An owner for records decided during compilation.
#[derive(Clone, Debug)]
enum OwnerName {
    Question,
    Name(Vec<u8>),
}

impl OwnerName {
    fn as_owner(&self) -> Owner<'_> {
        match self {
            OwnerName::Question => Owner::Question,
            OwnerName::Name(name) => Owner::Name(name),
        }
    }
}

/// How a CNAME chain ends.
enum ChainEnd<'z> {
    /// At a name with data: its RRsets, under this owner, held (and
    /// signed) at the source name (a wildcard's when synthesised).
    Data(OwnerName, Vec<u8>, &'z [Rrset]),
    NoData(Vec<u8>),
    NxDomain(Vec<u8>),
    Referral(&'z [u8]),
    /// Out of the zone, below a DNAME, a loop, or too long: no more records.
    Stop,
}

/// One record of a CNAME chain: its owner, the name holding it, the RRset.
type ChainStep<'z> = (OwnerName, Vec<u8>, &'z Rrset);

struct ZoneCompiler<'z, 't> {
    zone: &'z Zone,
    table: &'t mut AnswerTable,
    /// Owners of NS RRsets other than the apex.
    cuts: HashSet<&'z [u8]>,
    dnames: HashSet<&'z [u8]>,
    /// The zone's owners and their RRsets, for constant-time lookups.
    owners: HashMap<&'z [u8], &'z [Rrset]>,
    /// Owners hidden below a zone cut or a DNAME (glue and occluded data).
    occluded: HashSet<&'z [u8]>,
    /// Empty non-terminals: names with no RRsets but with owners below.
    empty_non_terminals: HashSet<Vec<u8>>,
    negative_soa: (u32, Vec<u8>),
    nodata: AnswerId,
    nxdomain: AnswerId,
    referrals: HashMap<Vec<u8>, AnswerId>,
    /// True when the zone has a DNSKEY at its apex: DO queries then get
    /// answers of their own, with signatures and denial proofs.
    signed: bool,
    /// The zone's NSEC or NSEC3 chain, when it is signed and has one.
    signing: Option<ZoneSigning>,
    /// DO variants of NXDOMAIN already compiled, by the records they hold
    /// and the length of the name they were compiled for.
    nxdomain_variants: HashMap<(Vec<usize>, usize), AnswerId>,
}

impl<'z, 't> ZoneCompiler<'z, 't> {
    fn new(zone: &'z Zone, table: &'t mut AnswerTable) -> Self {
        let origin = zone.origin.as_slice();
        let owners_with = |wanted: u16| -> HashSet<&'z [u8]> {
            zone.nodes
                .iter()
                .filter(|(owner, rrsets)| {
                    owner.as_slice() != origin && rrsets.iter().any(|r| r.rtype == wanted)
                })
                .map(|(owner, _)| owner.as_slice())
                .collect()
        };
        let cuts = owners_with(rtype::NS);
        let dnames = owners_with(rtype::DNAME);
        // RFC 2308 §5: negative answers carry the SOA with TTL = min(TTL, MINIMUM).
        let soa = zone
            .rrset(origin, rtype::SOA)
            .and_then(|soa| Some((soa.ttl, soa.rdatas.first()?.clone())));
        let negative_soa = soa
            .map(|(ttl, rdata)| {
                (
                    soa_fields(&rdata).map_or(ttl, |fields| ttl.min(fields.minimum)),
                    rdata,
                )
            })
            .unwrap_or_default();
        let mut compiler = ZoneCompiler {
            zone,
            table,
            cuts,
            dnames,
            owners: zone
                .nodes
                .iter()
                .map(|(owner, rrsets)| (owner.as_slice(), rrsets.as_slice()))
                .collect(),
            occluded: HashSet::new(),
            empty_non_terminals: HashSet::new(),
            negative_soa,
            nodata: 0,
            nxdomain: 0,
            referrals: HashMap::new(),
            signed: zone.rrset(origin, rtype::DNSKEY).is_some(),
            signing: None,
            nxdomain_variants: HashMap::new(),
        };
        for owner in zone.nodes.keys() {
            if compiler.is_occluded(owner) {
                compiler.occluded.insert(owner.as_slice());
            }
        }
        if compiler.signed {
            let occluded = &compiler.occluded;
            compiler.signing =
                ZoneSigning::new(zone, |owner| !occluded.contains(owner), compiler.table);
        }
        for owner in zone.nodes.keys() {
            if compiler.occluded.contains(owner.as_slice()) || compiler.is_hashed_owner(owner) {
                continue;
            }
            // Every name between an owner and the apex exists (RFC 4592 §2.2.2).
            let mut current = owner.as_slice();
            while current != origin
                && let Some(up) = name::parent(current)
            {
                if compiler.owners.contains_key(up)
                    || !compiler.empty_non_terminals.insert(up.to_vec())
                {
                    break;
                }
                current = up;
            }
        }
        let mut negative = BodyBuilder::new(origin);
        compiler.add_negative_soa(&mut negative, false);
        let negative = negative.finish();
        compiler.nodata = push_answer(compiler.table, &negative, NOERROR, true, origin.len());
        compiler.nxdomain = push_answer(compiler.table, &negative, NXDOMAIN, true, origin.len());
        compiler
    }

    fn compile(mut self) {
        let zone = self.zone;
        for owner in zone.nodes.keys() {
            if self.is_hashed_owner(owner) {
                continue;
            }
            if self.occluded.contains(owner.as_slice()) {
                // Glue names get their own copy of the referral, compiled for
                // exactly that question: its names compress against all of
                // the question's labels, as Knot and NSD compress them, which
                // decides how much glue fits in 512 bytes.
                if let Some(cut) = self.enclosing_cut(owner) {
                    let here = self.variants(owner, NOERROR, false, |compiler, builder, dnssec| {
                        compiler.add_delegation(builder, cut, dnssec);
                        None
                    });
                    let exact = push_typed(self.table, Vec::new(), here);
                    let below = Below::Fixed(self.referral(cut));
                    self.table.insert_node(owner, exact, below);
                }
                continue;
            }
            let (exact, below) = self.node(owner);
            if owner.as_slice() == self.origin() {
                self.table.insert_apex(owner, exact, below);
            } else {
                self.table.insert_node(owner, exact, below);
            }
        }
        for name in std::mem::take(&mut self.empty_non_terminals) {
            let (exact, below) = self.node(&name);
            self.table.insert_node(&name, exact, below);
        }
    }

    /// Builds an answer with `build` and, for a signed zone, its DO variant
    /// (`build` called again with `dnssec` set; what it returns is the
    /// variant's per-query proof). Returns the DO=0 answer, linked to it.
    fn variants(
        &mut self,
        encloser: &[u8],
        rcode: u8,
        authoritative: bool,
        build: impl Fn(&Self, &mut BodyBuilder, bool) -> Option<Denial>,
    ) -> AnswerId {
        let mut builder = BodyBuilder::new(encloser);
        build(self, &mut builder, false);
        let plain = push_answer(
            self.table,
            &builder.finish(),
            rcode,
            authoritative,
            encloser.len(),
        );
        if self.signed {
            let mut builder = BodyBuilder::new(encloser);
            let denial = build(self, &mut builder, true);
            let dnssec = push_answer(
                self.table,
                &builder.finish(),
                rcode,
                authoritative,
                encloser.len(),
            );
            self.link(plain, dnssec, denial);
        }
        plain
    }

    /// A copy of the DO=0 answer `plain` (sharing its body) whose DO
    /// variant is built by `build`, for negative answers: the DO=0 body is
    /// the same zone-wide SOA, the DO=1 proof depends on the name.
    fn with_dnssec_variant(
        &mut self,
        plain: AnswerId,
        encloser: &[u8],
        build: impl Fn(&Self, &mut BodyBuilder) -> Option<Denial>,
    ) -> AnswerId {
        if !self.signed {
            return plain;
        }
        let mut copy = self.table.answers[plain as usize];
        let copy_id = self.table.answers.len() as AnswerId;
        copy.dnssec = copy_id;
        self.table.answers.push(copy);
        let mut builder = BodyBuilder::new(encloser);
        let denial = build(self, &mut builder);
        let dnssec = push_answer(
            self.table,
            &builder.finish(),
            copy.rcode,
            true,
            encloser.len(),
        );
        self.link(copy_id, dnssec, denial);
        copy_id
    }

    fn link(&mut self, plain: AnswerId, dnssec: AnswerId, denial: Option<Denial>) {
        self.table.answers[dnssec as usize].denial = denial;
        self.table.answers[plain as usize].dnssec = dnssec;
    }

    /// True for the owners of NSEC3 records: hashes, not names of the
    /// zone's namespace (RFC 5155 §7.2.8), unless other data shares them.
    fn is_hashed_owner(&self, owner: &[u8]) -> bool {
        self.signing
            .as_ref()
            .is_some_and(|signing| signing.is_nsec3_owner(owner))
            && self
                .rrsets(owner)
                .iter()
                .all(|rrset| matches!(rrset.rtype, rtype::NSEC3 | rtype::RRSIG))
    }

    /// True for the names this zone answers: authoritative owners and
    /// empty non-terminals.
    fn exists(&self, owner: &[u8]) -> bool {
        (self.owners.contains_key(owner)
            && !self.occluded.contains(owner)
            && !self.is_hashed_owner(owner))
            || self.empty_non_terminals.contains(owner)
    }

    fn rrset(&self, owner: &[u8], wanted: u16) -> Option<&'z Rrset> {
        self.owners
            .get(owner)?
            .iter()
            .find(|rrset| rrset.rtype == wanted)
    }

    fn origin(&self) -> &'z [u8] {
        &self.zone.origin
    }

    fn rrsets(&self, owner: &[u8]) -> &'z [Rrset] {
        self.owners.get(owner).copied().unwrap_or(&[])
    }

    /// True for names hidden below a zone cut or a DNAME (RFC 1034 §4.2.1,
    /// RFC 6672 §2.4): only glue lives there.
    fn is_occluded(&self, owner: &[u8]) -> bool {
        let mut current = owner;
        while let Some(up) = name::parent(current) {
            if up.len() < self.origin().len() {
                break;
            }
            if self.cuts.contains(up) || self.dnames.contains(up) {
                return true;
            }
            current = up;
        }
        false
    }

    /// The highest zone cut at or above `owner`, if any.
    fn enclosing_cut(&self, owner: &[u8]) -> Option<&'z [u8]> {
        let mut found = None;
        let mut current = owner;
        while current.len() > self.origin().len() {
            if let Some(cut) = self.cuts.get(current) {
                found = Some(*cut);
            }
            current = name::parent(current)?;
        }
        found
    }

    /// What a query for `owner` gets, and what one for a name below it gets.
    fn node(&mut self, owner: &[u8]) -> (TypedAnswers, Below) {
        if self.cuts.contains(owner) {
            let referral = self.referral(owner);
            // DS lives in the parent (RFC 4035 §3.1.4.1): answered, not referred.
            let ds = match self.rrset(owner, rtype::DS) {
                Some(ds) => self.positive(&OwnerName::Name(owner.to_vec()), owner, owner, ds),
                None => self.nodata_for(owner),
            };
            let exact = push_typed(self.table, vec![(rtype::DS, ds)], referral);
            return (exact, Below::Fixed(referral));
        }
        let exact = self.answers_for(owner, OwnerName::Name(owner.to_vec()), owner);
        let wildcard = [&[1, b'*'][..], owner].concat();
        let below = if let Some(dname) = self.rrset(owner, rtype::DNAME) {
            let answer = self.variants(owner, NOERROR, true, |compiler, builder, dnssec| {
                compiler.add_signed_rrset(builder, Owner::Name(owner), owner, dname, dnssec);
                None
            });
            self.table
                .dname_targets
                .push(dname.rdatas[0].clone().into_boxed_slice());
            Below::Dname {
                answer,
                target: (self.table.dname_targets.len() - 1) as u32,
                ttl: dname.ttl,
                // Knot and NSD continue with the substituted name only
                // inside the DNAME's own zone.
                follow: name::is_within(&dname.rdatas[0], self.origin()),
            }
        } else if self.exists(&wildcard) {
            Below::Wildcard(self.answers_for(owner, OwnerName::Question, &wildcard))
        } else {
            Below::Fixed(self.nxdomain_below(owner))
        };
        (exact, below)
    }

    /// Answers by type for a name holding the RRsets of `source` (itself,
    /// or the wildcard it is synthesised from), written with `owner`, for
    /// questions ending in `encloser`.
    fn answers_for(&mut self, encloser: &[u8], owner: OwnerName, source: &[u8]) -> TypedAnswers {
        let rrsets = self.rrsets(source);
        if let Some(cname) = rrsets.iter().find(|rrset| rrset.rtype == rtype::CNAME) {
            return self.cname_chain(encloser, owner, source, cname);
        }
        let mut listed = Vec::new();
        for rrset in rrsets {
            let answer = match rrset.rtype {
                rtype::RRSIG => self.signatures_answer(encloser, &owner, source),
                _ => self.positive(&owner, source, encloser, rrset),
            };
            listed.push((rrset.rtype, answer));
        }
        // ANY gets one RRset (RFC 8482 §4.2), the lowest type as Knot does:
        // the same answer as a query for that type.
        if let Some(&(_, lowest)) = listed.iter().min_by_key(|(rtype, _)| *rtype) {
            listed.push((rtype::ANY, lowest));
        }
        let other = match owner {
            OwnerName::Question => self.wildcard_nodata(encloser, source),
            OwnerName::Name(_) => self.nodata_for(encloser),
        };
        push_typed(self.table, listed, other)
    }

    fn positive(
        &mut self,
        owner: &OwnerName,
        source: &[u8],
        encloser: &[u8],
        rrset: &Rrset,
    ) -> AnswerId {
        self.variants(encloser, NOERROR, true, |compiler, builder, dnssec| {
            compiler.add_signed_rrset(builder, owner.as_owner(), source, rrset, dnssec);
            compiler.add_additional(builder, std::iter::once(rrset), dnssec);
            compiler.synthesis_proof(owner, dnssec)
        })
    }

    /// A query for the RRSIG type: every signature at the name, each with
    /// the TTL of the RRset it covers (RFC 4034 §3), as NSD answers (Knot
    /// gives one). The same with and without DO.
    fn signatures_answer(&mut self, encloser: &[u8], owner: &OwnerName, source: &[u8]) -> AnswerId {
        let rrsets = self.rrsets(source);
        let Some(all) = rrsets.iter().find(|rrset| rrset.rtype == rtype::RRSIG) else {
            return self.nodata;
        };
        let mut builder = BodyBuilder::new(encloser);
        let mut covered_types: Vec<u16> = Vec::new();
        for rdata in &all.rdatas {
            if let Some(covered) = rrsig_type_covered(rdata)
                && !covered_types.contains(&covered)
            {
                covered_types.push(covered);
            }
        }
        for covered in covered_types {
            let ttl = rrsets
                .iter()
                .find(|rrset| rrset.rtype == covered)
                .map_or(all.ttl, |rrset| rrset.ttl);
            let sigs = signatures(rrsets, covered);
            builder.add_rrset(owner.as_owner(), rtype::RRSIG, ttl, &sigs);
        }
        push_answer(self.table, &builder.finish(), NOERROR, true, encloser.len())
    }

    fn cname_chain(
        &mut self,
        encloser: &[u8],
        owner: OwnerName,
        source: &[u8],
        cname: &'z Rrset,
    ) -> TypedAnswers {
        let mut steps: Vec<ChainStep<'z>> = vec![(owner.clone(), source.to_vec(), cname)];
        let mut visited: Vec<Vec<u8>> = match &owner {
            OwnerName::Name(start) => vec![start.clone()],
            OwnerName::Question => Vec::new(),
        };
        // Targets answered from a wildcard: DO answers prove each has no
        // closer match (RFC 4035 §3.1.3.3).
        let mut synthesised: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut target = name::to_lowercase(&cname.rdatas[0]);
        let end = loop {
            if visited.contains(&target) || steps.len() > CNAME_CHAIN_MAX {
                break ChainEnd::Stop;
            }
            visited.push(target.clone());
            let (source, rrsets) = match self.find(&target) {
                Target::Exists([]) => break ChainEnd::NoData(target),
                Target::Exists(rrsets) => (target.clone(), rrsets),
                Target::Wildcard(wildcard, rrsets) => {
                    synthesised.push((target.clone(), wildcard.clone()));
                    (wildcard, rrsets)
                }
                Target::NxDomain => break ChainEnd::NxDomain(target),
                Target::Delegated(cut) => break ChainEnd::Referral(cut),
                Target::OutOfZone | Target::BelowDname => break ChainEnd::Stop,
            };
            match rrsets.iter().find(|rrset| rrset.rtype == rtype::CNAME) {
                Some(next) => {
                    steps.push((OwnerName::Name(target.clone()), source, next));
                    target = name::to_lowercase(&next.rdatas[0]);
                }
                None => break ChainEnd::Data(OwnerName::Name(target), source, rrsets),
            }
        };

        let add_steps = |compiler: &Self, builder: &mut BodyBuilder, dnssec: bool| {
            for (step_owner, step_source, rrset) in &steps {
                compiler.add_signed_rrset(
                    builder,
                    step_owner.as_owner(),
                    step_source,
                    rrset,
                    dnssec,
                );
            }
        };
        let add_synthesis_proofs = |compiler: &Self, builder: &mut BodyBuilder, dnssec: bool| {
            if dnssec {
                let records: Vec<usize> = synthesised
                    .iter()
                    .flat_map(|(target, wildcard)| compiler.synthesis_records(target, wildcard))
                    .collect();
                compiler.add_chain_records(builder, &records);
            }
        };

        let mut listed = Vec::new();
        let only_cname = self.positive(&owner, source, encloser, cname);
        listed.push((rtype::CNAME, only_cname));
        listed.push((rtype::ANY, only_cname));
        // The DNSSEC records beside a CNAME (RFC 4035 §2.5) answer queries
        // for their own types, as Knot and NSD answer them.
        for rrset in self.rrsets(source) {
            match rrset.rtype {
                rtype::RRSIG => {
                    let answer = self.signatures_answer(encloser, &owner, source);
                    listed.push((rtype::RRSIG, answer));
                }
                rtype::NSEC => {
                    let answer = self.positive(&owner, source, encloser, rrset);
                    listed.push((rtype::NSEC, answer));
                }
                _ => {}
            }
        }
        if let ChainEnd::Data(data_owner, data_source, rrsets) = &end {
            for rrset in rrsets.iter() {
                let answer = self.variants(encloser, NOERROR, true, |compiler, builder, dnssec| {
                    add_steps(compiler, builder, dnssec);
                    compiler.add_signed_rrset(
                        builder,
                        data_owner.as_owner(),
                        data_source,
                        rrset,
                        dnssec,
                    );
                    add_synthesis_proofs(compiler, builder, dnssec);
                    compiler.add_additional(builder, std::iter::once(rrset), dnssec);
                    compiler.synthesis_proof(&owner, dnssec)
                });
                listed.push((rrset.rtype, answer));
            }
        }
        let rcode = match end {
            ChainEnd::NxDomain(_) => NXDOMAIN,
            _ => NOERROR,
        };
        let other = self.variants(encloser, rcode, true, |compiler, builder, dnssec| {
            add_steps(compiler, builder, dnssec);
            add_synthesis_proofs(compiler, builder, dnssec);
            match &end {
                ChainEnd::Data(..) | ChainEnd::NoData(_) => {
                    compiler.add_negative_soa(builder, dnssec);
                    if dnssec {
                        let records = match &end {
                            ChainEnd::Data(_, data_source, _) => {
                                compiler.wildcard_nodata_records(data_source)
                            }
                            ChainEnd::NoData(target) => compiler.nodata_records(target),
                            _ => Vec::new(),
                        };
                        compiler.add_chain_records(builder, &records);
                    }
                }
                ChainEnd::NxDomain(target) => {
                    compiler.add_negative_soa(builder, dnssec);
                    if dnssec {
                        let records = compiler.nxdomain_records(target);
                        compiler.add_chain_records(builder, &records);
                    }
                }
                ChainEnd::Referral(cut) => compiler.add_delegation(builder, cut, dnssec),
                ChainEnd::Stop => {}
            }
            compiler.synthesis_proof(&owner, dnssec)
        });
        push_typed(self.table, listed, other)
    }

    /// Where `target` leads in this zone.
    fn find(&self, target: &[u8]) -> Target<'z> {
        if !name::is_within(target, self.origin()) {
            return Target::OutOfZone;
        }
        if let Some(cut) = self.enclosing_cut(target) {
            return Target::Delegated(cut);
        }
        if self.is_occluded(target) {
            return Target::BelowDname;
        }
        if self.exists(target) {
            return Target::Exists(self.rrsets(target));
        }
        let mut current = target;
        while let Some(up) = name::parent(current) {
            if self.exists(up) {
                if self.dnames.contains(up) {
                    return Target::BelowDname;
                }
                let wildcard = [&[1, b'*'][..], up].concat();
                if self.exists(&wildcard) {
                    let rrsets = self.rrsets(&wildcard);
                    return Target::Wildcard(wildcard, rrsets);
                }
                return Target::NxDomain;
            }
            current = up;
        }
        Target::NxDomain
    }

    /// The SOA of negative answers, with its signatures under DO. They get
    /// the SOA's negative TTL too, as Knot and NSD give them.
    fn add_negative_soa(&self, builder: &mut BodyBuilder, dnssec: bool) {
        builder.section(Section::Authority);
        let (ttl, rdata) = &self.negative_soa;
        builder.add_record(Owner::Name(self.origin()), rtype::SOA, *ttl, rdata);
        if dnssec {
            let sigs = signatures(self.rrsets(self.origin()), rtype::SOA);
            builder.add_rrset(Owner::Name(self.origin()), rtype::RRSIG, *ttl, &sigs);
        }
    }

    /// `rrset` under `owner`, followed under DO by the RRSIGs covering it
    /// that `source` holds, with the RRset's TTL (RFC 4034 §3).
    fn add_signed_rrset(
        &self,
        builder: &mut BodyBuilder,
        owner: Owner<'_>,
        source: &[u8],
        rrset: &Rrset,
        dnssec: bool,
    ) {
        builder.add_rrset(owner, rrset.rtype, rrset.ttl, &rrset.rdatas);
        if dnssec && rrset.rtype != rtype::RRSIG {
            let sigs = signatures(self.rrsets(source), rrset.rtype);
            builder.add_rrset(owner, rtype::RRSIG, rrset.ttl, &sigs);
        }
    }

    /// The cut's NS RRset in authority, under DO with the DS RRset and its
    /// RRSIGs or the proof that there is no DS (RFC 4035 §3.1.4), and its
    /// glue in additional, glue for name servers inside the delegated zone
    /// marked required.
    fn add_delegation(&self, builder: &mut BodyBuilder, cut: &[u8], dnssec: bool) {
        let Some(ns) = self.rrset(cut, rtype::NS) else {
            return;
        };
        builder.section(Section::Authority);
        builder.add_rrset(Owner::Name(cut), rtype::NS, ns.ttl, &ns.rdatas);
        if dnssec {
            match self.rrset(cut, rtype::DS) {
                Some(ds) => self.add_signed_rrset(builder, Owner::Name(cut), cut, ds, true),
                None => self.add_chain_records(builder, &self.nodata_records(cut)),
            }
        }
        builder.section(Section::Additional);
        let mut targets: Vec<Vec<u8>> = Vec::new();
        for target in &ns.rdatas {
            let target = name::to_lowercase(target);
            if !targets.contains(&target) && name::is_within(&target, self.origin()) {
                targets.push(target);
            }
        }
        // Glue the referral cannot do without comes first, as Knot orders
        // it: when the section must be cut (DO answers with a small
        // payload), it is what survives.
        let (required, optional): (Vec<Vec<u8>>, Vec<Vec<u8>>) = targets
            .into_iter()
            .partition(|target| name::is_within(target, cut));
        self.add_addresses(builder, &required, |_| true, false);
        self.add_addresses(builder, &optional, |_| false, false);
    }

    fn referral(&mut self, cut: &[u8]) -> AnswerId {
        if let Some(&id) = self.referrals.get(cut) {
            return id;
        }
        let id = self.variants(cut, NOERROR, false, |compiler, builder, dnssec| {
            compiler.add_delegation(builder, cut, dnssec);
            None
        });
        self.referrals.insert(cut.to_vec(), id);
        id
    }

    /// Additional-section addresses for NS, MX and SRV targets in the zone
    /// (RFC 1035 §3.3, RFC 2782), signed under DO. Glue below cuts only
    /// for NS.
    fn add_additional<'r>(
        &self,
        builder: &mut BodyBuilder,
        rrsets: impl Iterator<Item = &'r Rrset>,
        dnssec: bool,
    ) {
        builder.section(Section::Additional);
        let mut targets: Vec<Vec<u8>> = Vec::new();
        for rrset in rrsets {
            for rdata in &rrset.rdatas {
                let Some(target) = rtype::additional_target(rrset.rtype, rdata) else {
                    continue;
                };
                let target = name::to_lowercase(target);
                if targets.contains(&target) || !name::is_within(&target, self.origin()) {
                    continue;
                }
                if rrset.rtype != rtype::NS
                    && (self.enclosing_cut(&target).is_some() || self.is_occluded(&target))
                {
                    continue;
                }
                targets.push(target);
            }
        }
        self.add_addresses(builder, &targets, |_| false, dnssec);
    }

    /// The A records of every target, then their AAAA records, as NSD and
    /// Knot order them: when the section must be cut to fit, IPv4
    /// addresses for all name servers survive first. Each RRset's RRSIGs
    /// (under DO; glue has none) stay with it when the section is cut.
    fn add_addresses(
        &self,
        builder: &mut BodyBuilder,
        targets: &[Vec<u8>],
        required: impl Fn(&[u8]) -> bool,
        dnssec: bool,
    ) {
        for wanted in [rtype::A, rtype::AAAA] {
            for target in targets {
                if let Some(rrset) = self.rrset(target, wanted) {
                    self.add_signed_rrset(builder, Owner::Name(target), target, rrset, dnssec);
                    builder.cut_additional(required(target));
                }
            }
        }
    }

    // ----- Denial of existence (RFC 4035 §3.1.3, RFC 5155 §7.2) -----

    /// NODATA for `name`: the zone-wide SOA body, and under DO the records
    /// proving the type is absent.
    fn nodata_for(&mut self, name: &[u8]) -> AnswerId {
        let nodata = self.nodata;
        let origin = self.origin();
        self.with_dnssec_variant(nodata, origin, |compiler, builder| {
            compiler.add_negative_soa(builder, true);
            compiler.add_chain_records(builder, &compiler.nodata_records(name));
            None
        })
    }

    /// NXDOMAIN for names whose closest encloser is `encloser`: under DO
    /// the proofs that need only the encloser (no wildcard below it; for
    /// NSEC3 the encloser's own record), the rest chosen per query.
    fn nxdomain_below(&mut self, encloser: &[u8]) -> AnswerId {
        if !self.signed {
            return self.nxdomain;
        }
        let Some(signing) = &self.signing else {
            let nxdomain = self.nxdomain;
            let origin = self.origin();
            return self.with_dnssec_variant(nxdomain, origin, |compiler, builder| {
                compiler.add_negative_soa(builder, true);
                None
            });
        };
        let wildcard = [&[1, b'*'][..], encloser].concat();
        let mut records = Vec::new();
        // NSEC3 bodies are compiled for the encloser: the fast path hashes
        // the name one label below it (the next closer name).
        let compiled_for = match signing.mode {
            Mode::Nsec => self.origin(),
            Mode::Nsec3(_) => {
                records.extend(signing.matching(encloser));
                encloser
            }
        };
        records.extend(signing.covering(&wildcard));
        records.dedup();
        let key = (records.clone(), compiled_for.len());
        if let Some(&id) = self.nxdomain_variants.get(&key) {
            return id;
        }
        let nxdomain = self.nxdomain;
        let id = self.with_dnssec_variant(nxdomain, compiled_for, |compiler, builder| {
            compiler.add_negative_soa(builder, true);
            compiler.add_chain_records(builder, &records);
            compiler.denial(&records)
        });
        self.nxdomain_variants.insert(key, id);
        id
    }

    /// NODATA for a name synthesised from `wildcard` below `encloser`:
    /// under DO the wildcard's own record (and for NSEC3 the encloser's),
    /// plus the one covering the question, chosen per query.
    fn wildcard_nodata(&mut self, encloser: &[u8], wildcard: &[u8]) -> AnswerId {
        let Some(signing) = &self.signing else {
            return self.nodata_for(wildcard);
        };
        let mut records = Vec::new();
        if matches!(signing.mode, Mode::Nsec3(_)) {
            records.extend(signing.matching(encloser));
        }
        records.extend(signing.matching(wildcard));
        let nodata = self.nodata;
        self.with_dnssec_variant(nodata, encloser, |compiler, builder| {
            compiler.add_negative_soa(builder, true);
            compiler.add_chain_records(builder, &records);
            compiler.denial(&records)
        })
    }

    /// The per-query proof of a DO answer synthesised from a wildcard (the
    /// record covering the question, or its next closer name): none for
    /// other answers.
    fn synthesis_proof(&self, owner: &OwnerName, dnssec: bool) -> Option<Denial> {
        match owner {
            OwnerName::Question if dnssec => self.denial(&[]),
            _ => None,
        }
    }

    /// A per-query proof from this zone's chain, skipping `records`
    /// already in the body.
    fn denial(&self, records: &[usize]) -> Option<Denial> {
        let signing = self.signing.as_ref()?;
        let mut skip = [NO_PIECE; 2];
        for (slot, &record) in skip.iter_mut().zip(records) {
            *slot = signing.record(record).1;
        }
        Some(Denial {
            chain: signing.chain,
            skip,
        })
    }

    /// The chain records proving `name` exists without the queried type:
    /// its NSEC (an empty non-terminal: the NSEC covering it), or its NSEC3
    /// (a name without one, under opt-out: the closest provable encloser
    /// proof, RFC 5155 §7.2.3, §7.2.4).
    fn nodata_records(&self, name: &[u8]) -> Vec<usize> {
        let Some(signing) = &self.signing else {
            return Vec::new();
        };
        if let Some(record) = signing.matching(name) {
            return vec![record];
        }
        match signing.mode {
            Mode::Nsec => signing.covering(name).into_iter().collect(),
            Mode::Nsec3(_) => match signing.closest_provable_encloser(name) {
                Some((encloser, next)) => {
                    let mut records = vec![encloser];
                    records.extend(signing.covering(next));
                    records.dedup();
                    records
                }
                None => Vec::new(),
            },
        }
    }

    /// The chain records proving a name synthesised from `source` has no
    /// data of the queried type: `source`'s own NODATA proof, and for an
    /// NSEC3 wildcard also the record matching its closest encloser
    /// (RFC 5155 §7.2.5).
    fn wildcard_nodata_records(&self, source: &[u8]) -> Vec<usize> {
        let mut records = self.nodata_records(source);
        if source.starts_with(&[1, b'*'])
            && let Some(signing) = &self.signing
            && matches!(signing.mode, Mode::Nsec3(_))
            && let Some(encloser) = name::parent(source)
            && let Some(record) = signing.matching(encloser)
            && !records.contains(&record)
        {
            records.insert(0, record);
        }
        records
    }

    /// The chain records proving `name` does not exist (for a CNAME target,
    /// decided at compile time): NSEC covering it and the wildcard at its
    /// closest encloser; NSEC3 matching the encloser, covering the next
    /// closer name and the wildcard.
    fn nxdomain_records(&self, name: &[u8]) -> Vec<usize> {
        let Some(signing) = &self.signing else {
            return Vec::new();
        };
        let mut encloser = name;
        while !self.exists(encloser) {
            match name::parent(encloser) {
                Some(up) => encloser = up,
                None => return Vec::new(),
            }
        }
        let wildcard = [&[1, b'*'][..], encloser].concat();
        let mut records = Vec::new();
        match signing.mode {
            Mode::Nsec => records.extend(signing.covering(name)),
            Mode::Nsec3(_) => {
                records.extend(signing.matching(encloser));
                if let Some(next) = next_closer(name, encloser.len()) {
                    records.extend(signing.covering(next));
                }
            }
        }
        records.extend(signing.covering(&wildcard));
        let mut unique = Vec::new();
        for record in records {
            if !unique.contains(&record) {
                unique.push(record);
            }
        }
        unique
    }

    /// The chain record proving no name closer than `wildcard` matches
    /// `target` (RFC 4035 §3.1.3.3, RFC 5155 §7.2.6).
    fn synthesis_records(&self, target: &[u8], wildcard: &[u8]) -> Vec<usize> {
        let Some(signing) = &self.signing else {
            return Vec::new();
        };
        match signing.mode {
            Mode::Nsec => signing.covering(target).into_iter().collect(),
            Mode::Nsec3(_) => {
                let encloser_len = name::parent(wildcard).map_or(0, <[u8]>::len);
                next_closer(target, encloser_len)
                    .and_then(|next| signing.covering(next))
                    .into_iter()
                    .collect()
            }
        }
    }

    /// Writes chain records (NSEC or NSEC3 with their RRSIGs) into the
    /// authority section.
    fn add_chain_records(&self, builder: &mut BodyBuilder, records: &[usize]) {
        let Some(signing) = &self.signing else {
            return;
        };
        builder.section(Section::Authority);
        let denial_type = signing.denial_type();
        for &record in records {
            let (owner, _) = signing.record(record);
            let rrsets = self.rrsets(owner);
            if let Some(rrset) = rrsets.iter().find(|rrset| rrset.rtype == denial_type) {
                self.add_signed_rrset(builder, Owner::Name(owner), owner, rrset, true);
            }
        }
    }
}
