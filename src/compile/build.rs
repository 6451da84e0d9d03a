//! Zone → nodes and answers. Each outcome has one small function, as NSD's
//! query.c does: `positive`, `nodata`, `referral`, `cname_chain`.

use ahash::{AHashMap as HashMap, AHashSet as HashSet};

use super::body::{Body, BodyBuilder, Owner, Section};
use super::{AnswerId, AnswerTable, Below, TypedAnswers};
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
        additional_at: body.additional_at.min(bytes.len()) as u32,
        fixup_start: table.fixups.len() as u32,
        fixup_len: fixups.len() as u16,
        question_pointer_len: question_pointers.len() as u16,
        encloser_len: encloser_len as u8,
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
    /// Synthesised from this wildcard owner's RRsets.
    Wildcard(&'z [Rrset]),
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
    /// At a name with data: its RRsets, under this owner.
    Data(OwnerName, &'z [Rrset]),
    NoData,
    NxDomain,
    Referral(&'z [u8]),
    /// Out of the zone, below a DNAME, a loop, or too long: no more records.
    Stop,
}

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
        };
        for owner in zone.nodes.keys() {
            if compiler.is_occluded(owner) {
                compiler.occluded.insert(owner.as_slice());
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
        compiler.add_negative_soa(&mut negative);
        let negative = negative.finish();
        compiler.nodata = push_answer(compiler.table, &negative, NOERROR, true, origin.len());
        compiler.nxdomain = push_answer(compiler.table, &negative, NXDOMAIN, true, origin.len());
        compiler
    }

    fn compile(mut self) {
        let zone = self.zone;
        for owner in zone.nodes.keys() {
            if self.occluded.contains(owner.as_slice()) {
                // Glue names get their own copy of the referral, compiled for
                // exactly that question: its names compress against all of
                // the question's labels, as Knot and NSD compress them, which
                // decides how much glue fits in 512 bytes.
                if let Some(cut) = self.enclosing_cut(owner) {
                    let mut builder = BodyBuilder::new(owner);
                    self.add_delegation(&mut builder, cut);
                    let here =
                        push_answer(self.table, &builder.finish(), NOERROR, false, owner.len());
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

    /// True for the names this zone answers: authoritative owners and
    /// empty non-terminals.
    fn exists(&self, owner: &[u8]) -> bool {
        (self.owners.contains_key(owner) && !self.occluded.contains(owner))
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
                Some(ds) => self.positive(&OwnerName::Name(owner.to_vec()), owner, ds),
                None => self.nodata,
            };
            let exact = push_typed(self.table, vec![(rtype::DS, ds)], referral);
            return (exact, Below::Fixed(referral));
        }
        let exact = self.answers_for(owner, OwnerName::Name(owner.to_vec()), self.rrsets(owner));
        let wildcard = [&[1, b'*'][..], owner].concat();
        let below = if let Some(dname) = self.rrset(owner, rtype::DNAME) {
            let mut builder = BodyBuilder::new(owner);
            builder.add_rrset(Owner::Name(owner), rtype::DNAME, dname.ttl, &dname.rdatas);
            let answer = push_answer(self.table, &builder.finish(), NOERROR, true, owner.len());
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
            Below::Wildcard(self.answers_for(owner, OwnerName::Question, self.rrsets(&wildcard)))
        } else {
            Below::Fixed(self.nxdomain)
        };
        (exact, below)
    }

    /// Answers by type for a name holding `rrsets`, written with `owner`,
    /// for questions ending in `encloser`.
    fn answers_for(
        &mut self,
        encloser: &[u8],
        owner: OwnerName,
        rrsets: &'z [Rrset],
    ) -> TypedAnswers {
        if let Some(cname) = rrsets.iter().find(|rrset| rrset.rtype == rtype::CNAME) {
            return self.cname_chain(encloser, owner, cname);
        }
        let mut listed = Vec::new();
        for rrset in rrsets {
            listed.push((rrset.rtype, self.positive(&owner, encloser, rrset)));
        }
        // ANY gets one RRset (RFC 8482 §4.2), the lowest type as Knot does:
        // the same answer as a query for that type.
        if let Some(&(_, lowest)) = listed.iter().min_by_key(|(rtype, _)| *rtype) {
            listed.push((rtype::ANY, lowest));
        }
        push_typed(self.table, listed, self.nodata)
    }

    fn positive(&mut self, owner: &OwnerName, encloser: &[u8], rrset: &Rrset) -> AnswerId {
        let mut builder = BodyBuilder::new(encloser);
        builder.add_rrset(owner.as_owner(), rrset.rtype, rrset.ttl, &rrset.rdatas);
        self.add_additional(&mut builder, std::iter::once(rrset));
        push_answer(self.table, &builder.finish(), NOERROR, true, encloser.len())
    }

    fn cname_chain(&mut self, encloser: &[u8], owner: OwnerName, cname: &'z Rrset) -> TypedAnswers {
        let mut steps: Vec<(OwnerName, &'z Rrset)> = vec![(owner.clone(), cname)];
        let mut visited: Vec<Vec<u8>> = match &owner {
            OwnerName::Name(start) => vec![start.clone()],
            OwnerName::Question => Vec::new(),
        };
        let mut target = name::to_lowercase(&cname.rdatas[0]);
        let end = loop {
            if visited.contains(&target) || steps.len() > CNAME_CHAIN_MAX {
                break ChainEnd::Stop;
            }
            visited.push(target.clone());
            let rrsets = match self.find(&target) {
                Target::Exists([]) => break ChainEnd::NoData,
                Target::Exists(rrsets) | Target::Wildcard(rrsets) => rrsets,
                Target::NxDomain => break ChainEnd::NxDomain,
                Target::Delegated(cut) => break ChainEnd::Referral(cut),
                Target::OutOfZone | Target::BelowDname => break ChainEnd::Stop,
            };
            match rrsets.iter().find(|rrset| rrset.rtype == rtype::CNAME) {
                Some(next) => {
                    steps.push((OwnerName::Name(target.clone()), next));
                    target = name::to_lowercase(&next.rdatas[0]);
                }
                None => break ChainEnd::Data(OwnerName::Name(target), rrsets),
            }
        };

        let chain_builder = || {
            let mut builder = BodyBuilder::new(encloser);
            for (step_owner, rrset) in &steps {
                builder.add_rrset(step_owner.as_owner(), rrset.rtype, rrset.ttl, &rrset.rdatas);
            }
            builder
        };

        let mut listed = Vec::new();
        let only_cname = self.positive(&owner, encloser, cname);
        listed.push((rtype::CNAME, only_cname));
        listed.push((rtype::ANY, only_cname));
        if let ChainEnd::Data(data_owner, rrsets) = &end {
            for rrset in rrsets.iter() {
                let mut builder = chain_builder();
                builder.add_rrset(data_owner.as_owner(), rrset.rtype, rrset.ttl, &rrset.rdatas);
                self.add_additional(&mut builder, std::iter::once(rrset));
                let answer =
                    push_answer(self.table, &builder.finish(), NOERROR, true, encloser.len());
                listed.push((rrset.rtype, answer));
            }
        }
        let mut builder = chain_builder();
        let rcode = match end {
            ChainEnd::Data(..) | ChainEnd::NoData => {
                self.add_negative_soa(&mut builder);
                NOERROR
            }
            ChainEnd::NxDomain => {
                self.add_negative_soa(&mut builder);
                NXDOMAIN
            }
            ChainEnd::Referral(cut) => {
                self.add_delegation(&mut builder, cut);
                NOERROR
            }
            ChainEnd::Stop => NOERROR,
        };
        let other = push_answer(self.table, &builder.finish(), rcode, true, encloser.len());
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
                    return Target::Wildcard(self.rrsets(&wildcard));
                }
                return Target::NxDomain;
            }
            current = up;
        }
        Target::NxDomain
    }

    fn add_negative_soa(&self, builder: &mut BodyBuilder) {
        builder.section(Section::Authority);
        let (ttl, rdata) = &self.negative_soa;
        builder.add_record(Owner::Name(self.origin()), rtype::SOA, *ttl, rdata);
    }

    /// The cut's NS RRset in authority and its glue in additional, glue
    /// for name servers inside the delegated zone marked required.
    fn add_delegation(&self, builder: &mut BodyBuilder, cut: &[u8]) {
        let Some(ns) = self.rrset(cut, rtype::NS) else {
            return;
        };
        builder.section(Section::Authority);
        builder.add_rrset(Owner::Name(cut), rtype::NS, ns.ttl, &ns.rdatas);
        builder.section(Section::Additional);
        let mut targets: Vec<Vec<u8>> = Vec::new();
        for target in &ns.rdatas {
            let target = name::to_lowercase(target);
            if !targets.contains(&target) && name::is_within(&target, self.origin()) {
                targets.push(target);
            }
        }
        self.add_addresses(builder, &targets, |target| name::is_within(target, cut));
    }

    fn referral(&mut self, cut: &[u8]) -> AnswerId {
        if let Some(&id) = self.referrals.get(cut) {
            return id;
        }
        let mut builder = BodyBuilder::new(cut);
        self.add_delegation(&mut builder, cut);
        let id = push_answer(self.table, &builder.finish(), NOERROR, false, cut.len());
        self.referrals.insert(cut.to_vec(), id);
        id
    }

    /// Additional-section addresses for NS, MX and SRV targets in the zone
    /// (RFC 1035 §3.3, RFC 2782). Glue below cuts only for NS.
    fn add_additional<'r>(
        &self,
        builder: &mut BodyBuilder,
        rrsets: impl Iterator<Item = &'r Rrset>,
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
        self.add_addresses(builder, &targets, |_| false);
    }

    /// The A records of every target, then their AAAA records, as NSD and
    /// Knot order them: when the section must be cut to fit, IPv4
    /// addresses for all name servers survive first.
    fn add_addresses(
        &self,
        builder: &mut BodyBuilder,
        targets: &[Vec<u8>],
        required: impl Fn(&[u8]) -> bool,
    ) {
        for wanted in [rtype::A, rtype::AAAA] {
            for target in targets {
                if let Some(rrset) = self.rrset(target, wanted) {
                    builder.add_additional_rrset(
                        Owner::Name(target),
                        wanted,
                        rrset.ttl,
                        &rrset.rdatas,
                        required(target),
                    );
                }
            }
        }
    }
}
