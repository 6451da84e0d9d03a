//! Zone transfers out, over TCP: AXFR (RFC 5936) and IXFR (RFC 1995) to
//! the secondaries a zone's `transfer { to … }` lists, optionally signed
//! with TSIG (RFC 8945). The zone and journal are copied out of the store
//! first, so a slow secondary never holds up a reload.

use std::io;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::TransferPeer;
use crate::respond::rcode;
use crate::slowpath::zones::{self, TransferView, ZoneStore};
use crate::tsig::{self, RequestCheck, ResponseSigner};
use crate::wire::message::{self, Header, MessageWriter};
use crate::wire::name;
use crate::wire::query::{OPTION_EXPIRE, Query};
use crate::wire::rtype::{self, CLASS_IN};
use crate::zone::{self, Record, Zone, ZoneDiff};

/// Room left in every message for the TSIG record (owner and algorithm
/// names up to 255 bytes each, a 64-byte MAC, fixed fields).
const TSIG_RESERVE: usize = 700;
/// Messages of a transfer are filled up to this many bytes.
const MESSAGE_LEN_MAX: usize = 65535 - TSIG_RESERVE;

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// True when `message` is a transfer request (QUERY for AXFR or IXFR):
/// the TCP path hands those here instead of to `respond`.
pub fn is_transfer_request(message: &[u8]) -> bool {
    let Some(header) = Header::read(message) else {
        return false;
    };
    if header.is_response() || header.opcode() != 0 || header.qdcount != 1 {
        return false;
    }
    let mut qname = Vec::new();
    let Some(end) = name::read_compressed(message, message::HEADER_LEN, &mut qname) else {
        return false;
    };
    matches!(
        message.get(end..end + 2),
        Some(&[high, low]) if matches!(u16::from_be_bytes([high, low]), rtype::AXFR | rtype::IXFR)
    )
}

/// The request as it was before it was signed: cut at its TSIG record,
/// ARCOUNT one less. The unsigned request as it is.
pub fn without_tsig(request: &[u8], unsigned_len: usize) -> Option<Vec<u8>> {
    let mut unsigned = request.get(..unsigned_len)?.to_vec();
    if unsigned_len < request.len() {
        let arcount = u16::from_be_bytes([*unsigned.get(10)?, *unsigned.get(11)?]);
        unsigned[10..12].copy_from_slice(&arcount.checked_sub(1)?.to_be_bytes());
    }
    Some(unsigned)
}

/// "TSIG BADSIG (key NAME)" for the log.
pub fn describe_tsig_failure(invalid: &tsig::InvalidRequest) -> String {
    let error = match invalid.error {
        tsig::BADKEY => "BADKEY (unknown key or algorithm)",
        tsig::BADSIG => "BADSIG (wrong signature)",
        tsig::BADTIME => "BADTIME (clock difference beyond the fudge)",
        _ => "error",
    };
    format!("TSIG {error}, key {}", name::to_text(&invalid.key_name))
}

/// What was decided about one request, for the log and the counters.
enum Outcome {
    Sent {
        kind: &'static str,
        records: usize,
        messages: usize,
    },
    Refused(String),
}

/// Answers one AXFR or IXFR request from `peer`, writing each message
/// (length-prefixed) with `send`.
pub fn serve(
    request: &[u8],
    peer: SocketAddr,
    store: &ZoneStore,
    send: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let now = now_unix();
    let Some(header) = Header::read(request) else {
        return Ok(());
    };
    let _running = zones::TransferRunning::new(store);
    if store.stopping.load(std::sync::atomic::Ordering::Relaxed) {
        // Shutting down: finish what runs, start nothing new.
        return send(&error_reply(request, &header, rcode::REFUSED));
    }
    let keys = store.keys();
    let signature = tsig::check_request(request, &keys, now);
    let (unsigned_len, signer) = match &signature {
        RequestCheck::Unsigned => (request.len(), None),
        RequestCheck::Valid { key, mac, .. } => {
            let Some(key) = keys.get(*key) else {
                return Ok(());
            };
            let unsigned = tsig::unsigned_len(request).unwrap_or(request.len());
            (unsigned, Some((key.clone(), mac.clone())))
        }
        RequestCheck::Invalid(failure) => {
            zones::count(&store.counters.transfers_out_refused);
            eprintln!(
                "ringdns: transfer request from {peer} refused: {}",
                describe_tsig_failure(failure)
            );
            let mut reply = error_reply(request, &header, tsig::NOTAUTH);
            tsig::append_error(&mut reply, failure, &keys, now);
            return send(&reply);
        }
        RequestCheck::Malformed => {
            return send(&error_reply(request, &header, rcode::FORMERR));
        }
    };
    let Some(unsigned) = without_tsig(request, unsigned_len) else {
        return send(&error_reply(request, &header, rcode::FORMERR));
    };
    let Some(parsed) = message::read_message(&unsigned) else {
        return send(&error_reply(request, &header, rcode::FORMERR));
    };
    let Some((qname, qtype, qclass)) = parsed.question.clone() else {
        return send(&error_reply(request, &header, rcode::FORMERR));
    };
    let client_serial = if qtype == rtype::IXFR {
        let soa = parsed
            .authority
            .iter()
            .find(|record| record.rtype == rtype::SOA && record.owner == qname);
        match soa.and_then(|record| zone::soa_fields(&record.rdata)) {
            Some(fields) => Some(fields.serial),
            // RFC 1995 §3: an IXFR query carries the client's SOA.
            None => return send(&error_reply(request, &header, rcode::FORMERR)),
        }
    } else {
        None
    };
    let key_name = signer.as_ref().map(|(key, _)| key.name.clone());
    let mut signer = signer.map(|(key, mac)| ResponseSigner::new(key, mac));
    let mut send_signed = |mut bytes: Vec<u8>| {
        if let Some(signer) = &mut signer {
            signer.sign(&mut bytes, now);
        }
        send(&bytes)
    };
    let view = store
        .transfer_view(&qname, client_serial)
        .filter(|_| qclass == CLASS_IN);
    let outcome = match view {
        None => {
            // Not a zone of ours (or not class IN): NOTAUTH, as Knot says.
            send_signed(error_reply(request, &header, tsig::NOTAUTH))?;
            Outcome::Refused("not a zone served here".into())
        }
        Some(view) => match permission(
            &view.transfer_to,
            &view.tsig_required,
            peer,
            key_name.as_deref(),
            qtype,
        ) {
            Err((code, reason)) => {
                send_signed(error_reply(request, &header, code))?;
                Outcome::Refused(reason)
            }
            Ok(()) => match &view.zone {
                None => {
                    send_signed(error_reply(request, &header, rcode::SERVFAIL))?;
                    Outcome::Refused("the zone is not loaded".into())
                }
                Some(zone) => {
                    let plan = plan(&view, zone, client_serial);
                    // The query parser reads the OPT record's options.
                    let mut query = Query::default();
                    let _ = query.parse(&unsigned);
                    let wants_expire = query.edns.is_some_and(|edns| edns.expire_requested);
                    let stream = Stream {
                        id: header.id,
                        flags: reply_flags(&header, rcode::NOERROR),
                        question: (request, parsed_question_end(request)),
                        expire: view.expire.filter(|_| wants_expire),
                    };
                    match stream.write(&plan, &mut send_signed) {
                        Ok(messages) => Outcome::Sent {
                            kind: plan.kind,
                            records: plan.records.len(),
                            messages,
                        },
                        Err(error) => {
                            zones::count(&store.counters.transfers_out_failed);
                            eprintln!(
                                "ringdns: {} of {} to {peer} failed: {error}",
                                rtype::to_text(qtype),
                                view.origin_text
                            );
                            return Err(error);
                        }
                    }
                }
            },
        },
    };
    let zone_text = name::to_text(&qname);
    match outcome {
        Outcome::Sent {
            kind,
            records,
            messages,
        } => {
            let index = usize::from(qtype == rtype::IXFR);
            zones::count(&store.counters.transfers_out[index]);
            eprintln!(
                "ringdns: {} of {zone_text} to {peer}: sent {kind}, {records} records in {messages} message(s)",
                rtype::to_text(qtype)
            );
        }
        Outcome::Refused(reason) => {
            zones::count(&store.counters.transfers_out_refused);
            eprintln!(
                "ringdns: {} of {zone_text} from {peer} refused: {reason}",
                rtype::to_text(qtype)
            );
        }
    }
    Ok(())
}

/// May `peer` (signed with `key_name`) transfer this zone? The address
/// must be listed (else REFUSED); a key the peer's entry or `tsig
/// require` names must have signed the request (else NOTAUTH).
pub fn permission(
    transfer_to: &[TransferPeer],
    tsig_required: &[Option<u16>],
    peer: SocketAddr,
    key_name: Option<&[u8]>,
    qtype: u16,
) -> Result<(), (u8, String)> {
    let Some(entry) = zones::transfer_peer(transfer_to, peer.ip()) else {
        return Err((
            rcode::REFUSED,
            format!("{} is not in the zone's transfer list", peer.ip()),
        ));
    };
    if let Some(required) = &entry.key {
        let required_wire = name::from_text(required).unwrap_or_default();
        if key_name != Some(required_wire.as_slice()) {
            return Err((
                tsig::NOTAUTH,
                format!("the request is not signed with key {required}"),
            ));
        }
    }
    let must_sign = tsig_required
        .iter()
        .any(|required| required.is_none_or(|required| required == qtype));
    if must_sign && key_name.is_none() {
        return Err((
            tsig::NOTAUTH,
            "tsig require: the request is not signed".into(),
        ));
    }
    Ok(())
}

/// The records of a transfer, in order, and what kind it is.
struct Plan {
    kind: &'static str,
    records: Vec<Record>,
}

fn soa_record(zone: &Zone) -> Option<Record> {
    let soa = zone.rrset(&zone.origin, rtype::SOA)?;
    Some(Record {
        owner: zone.origin.clone(),
        rtype: rtype::SOA,
        ttl: soa.ttl,
        rdata: soa.rdatas.first()?.clone(),
    })
}

/// AXFR: SOA, every other record, SOA. IXFR: SOA alone when the client is
/// current; the journal's differences when it reaches back; else the whole
/// zone in AXFR form (RFC 1995 §4).
fn plan(view: &TransferView, zone: &Zone, client_serial: Option<u32>) -> Plan {
    let Some(soa) = soa_record(zone) else {
        return Plan {
            kind: "nothing (no SOA)",
            records: Vec::new(),
        };
    };
    if let Some(client) = client_serial {
        if !zone::serial_is_newer(zone.serial(), client) {
            return Plan {
                kind: "SOA only (client is current)",
                records: vec![soa],
            };
        }
        if let Some(changes) = view.changes.as_ref().filter(|diffs| !diffs.is_empty()) {
            let mut records = vec![soa.clone()];
            for diff in changes {
                push_diff(&mut records, diff);
            }
            records.push(soa);
            return Plan {
                kind: "incremental",
                records,
            };
        }
    }
    let mut records = vec![soa.clone()];
    records.extend(
        zone::records(zone)
            .into_iter()
            .filter(|record| record.rtype != rtype::SOA),
    );
    records.push(soa);
    Plan {
        kind: if client_serial.is_some() {
            "full zone (journal does not reach back)"
        } else {
            "full zone"
        },
        records,
    }
}

fn push_diff(records: &mut Vec<Record>, diff: &ZoneDiff) {
    records.push(diff.old_soa.clone());
    records.extend(diff.removed.iter().cloned());
    records.push(diff.new_soa.clone());
    records.extend(diff.added.iter().cloned());
}

/// The header and question every message of one transfer shares.
struct Stream<'a> {
    id: u16,
    flags: u16,
    /// The request, and where its question ends (copied into the first
    /// message, RFC 5936 §2.2.1).
    question: (&'a [u8], usize),
    /// EDNS EXPIRE (RFC 7314) for the first message, when asked.
    expire: Option<u32>,
}

impl Stream<'_> {
    /// Packs the records into as few messages as fit; returns how many
    /// were sent.
    fn write(
        &self,
        plan: &Plan,
        send: &mut dyn FnMut(Vec<u8>) -> io::Result<()>,
    ) -> io::Result<usize> {
        let mut messages = 0;
        let mut writer = self.first_message();
        let mut first = true;
        for record in &plan.records {
            let fits = writer.push_record(
                0,
                &record.owner,
                record.rtype,
                CLASS_IN,
                record.ttl,
                &record.rdata,
            );
            if fits {
                continue;
            }
            let mut full = std::mem::replace(
                &mut writer,
                MessageWriter::new(self.id, self.flags, MESSAGE_LEN_MAX),
            );
            if std::mem::replace(&mut first, false) {
                self.push_expire(&mut full);
            }
            send(full.finish())?;
            messages += 1;
            if !writer.push_record(
                0,
                &record.owner,
                record.rtype,
                CLASS_IN,
                record.ttl,
                &record.rdata,
            ) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a record does not fit in a message",
                ));
            }
        }
        if first {
            self.push_expire(&mut writer);
        }
        send(writer.finish())?;
        Ok(messages + 1)
    }

    /// Our OPT record with the EXPIRE option, when the request asked; the
    /// first message was filled leaving room for it.
    fn push_expire(&self, writer: &mut MessageWriter) {
        if let Some(seconds) = self.expire {
            let mut rdata = Vec::with_capacity(8);
            rdata.extend_from_slice(&OPTION_EXPIRE.to_be_bytes());
            rdata.extend_from_slice(&4u16.to_be_bytes());
            rdata.extend_from_slice(&seconds.to_be_bytes());
            let payload = crate::respond::UDP_PAYLOAD_SIZE_MAX;
            writer.push_record(2, &[0], rtype::OPT, payload, 0, &rdata);
        }
    }

    fn first_message(&self) -> MessageWriter {
        let (request, question_end) = self.question;
        // Room for the OPT record with EXPIRE: 11 + 8 bytes.
        let limit = MESSAGE_LEN_MAX - if self.expire.is_some() { 19 } else { 0 };
        let mut writer = MessageWriter::new(self.id, self.flags, limit);
        let mut qname = Vec::new();
        if let Some(end) = name::read_compressed(request, message::HEADER_LEN, &mut qname)
            && let Some(fixed) = request.get(end..end + 4)
            && end + 4 == question_end
        {
            writer.push_question(
                &qname,
                u16::from_be_bytes([fixed[0], fixed[1]]),
                u16::from_be_bytes([fixed[2], fixed[3]]),
            );
        }
        writer
    }
}

/// Where the request's question ends (0 when it has none that reads).
fn parsed_question_end(request: &[u8]) -> usize {
    let mut qname = Vec::new();
    name::read_compressed(request, message::HEADER_LEN, &mut qname).map_or(0, |end| end + 4)
}

/// Response flags: QR, the request's opcode and RD, AA, and `code`.
fn reply_flags(header: &Header, code: u8) -> u16 {
    let kept = header.flags & 0x7900; // opcode and RD
    let authoritative = if code == rcode::NOERROR { 0x0400 } else { 0 };
    0x8000 | kept | authoritative | u16::from(code & 0xF)
}

/// A reply with `code` that echoes the request's question.
pub fn error_reply(request: &[u8], header: &Header, code: u8) -> Vec<u8> {
    let mut reply = Vec::with_capacity(512);
    reply.extend_from_slice(&header.id.to_be_bytes());
    reply.extend_from_slice(&reply_flags(header, code).to_be_bytes());
    let question_end = parsed_question_end(request);
    match request.get(message::HEADER_LEN..question_end) {
        Some(question) if header.qdcount == 1 => {
            reply.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
            reply.extend_from_slice(question);
        }
        _ => reply.extend_from_slice(&[0; 8]),
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(qname: &str, qtype: u16) -> Vec<u8> {
        let mut writer = MessageWriter::new(0x1234, 0, 512);
        writer.push_question(&name::from_text(qname).unwrap(), qtype, CLASS_IN);
        writer.finish()
    }

    #[test]
    fn transfer_requests_are_recognised() {
        assert!(is_transfer_request(&query("example.com", rtype::AXFR)));
        assert!(is_transfer_request(&query("example.com", rtype::IXFR)));
        assert!(!is_transfer_request(&query("example.com", rtype::SOA)));
        let mut response = query("example.com", rtype::AXFR);
        response[2] |= 0x80;
        assert!(!is_transfer_request(&response));
        assert!(!is_transfer_request(&[0; 5]));
    }

    #[test]
    fn error_replies_echo_the_question() {
        let request = query("example.com", rtype::AXFR);
        let header = Header::read(&request).unwrap();
        let reply = error_reply(&request, &header, rcode::REFUSED);
        let read = Header::read(&reply).unwrap();
        assert_eq!(read.id, 0x1234);
        assert!(read.is_response());
        assert_eq!(read.rcode(), rcode::REFUSED);
        assert_eq!(&reply[12..], &request[12..]);
    }
}
