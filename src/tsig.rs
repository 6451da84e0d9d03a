//! TSIG (RFC 8945): transaction signatures on raw DNS wire messages, for
//! both ends of a transfer. As a server: check a signed request, sign the
//! answer (one message, or every message of an AXFR/IXFR stream), and build
//! the NOTAUTH error answers. As a client (NOTIFY out; SOA, AXFR and IXFR
//! queries of a secondary): sign the request and verify the response.
//!
//! This module owns the TSIG framing: where the record sits, what bytes the
//! MAC covers and the error rules. HMAC itself comes from the RustCrypto
//! crates (`hmac`, `sha1`, `sha2`). It builds no messages of its own, does no
//! I/O and reads no clock: time comes in as `now_unix`, so every function is
//! a pure function of its inputs and unit tests pin any moment they like.
//!
//! Received bytes never reach a panic: every read is bounds-checked, and a
//! message we cannot read is `Malformed` (FORMERR) or an `Err`.
//!
//! Supported algorithms are the HMAC-SHA family of RFC 8945 §6; HMAC-MD5 is
//! left out on purpose (deprecated, and no modern peer needs it). Not done:
//! the per-key cache of the last Time Signed that RFC 8945 §5.2.3 suggests
//! against replays inside the fudge window (it would make checking stateful).

use hmac::{Hmac, KeyInit, Mac};

use crate::wire::name::{NAME_LEN_MAX, from_text, read_compressed};
use crate::wire::query::HEADER_LEN;

/// Record type of TSIG (RFC 8945 §4.2).
pub const TYPE_TSIG: u16 = 250;
/// The class every TSIG record has (RFC 8945 §4.2).
const CLASS_ANY: u16 = 255;

/// Header RCODE of every TSIG error answer (RFC 8945 §5.2).
pub const NOTAUTH: u8 = 9;
/// TSIG error: the MAC does not verify (RFC 8945 §5.2.2).
pub const BADSIG: u16 = 16;
/// TSIG error: unknown key name, or the key has another algorithm (§5.2.1).
pub const BADKEY: u16 = 17;
/// TSIG error: Time Signed outside the fudge window (§5.2.3).
pub const BADTIME: u16 = 18;
/// TSIG error: MAC truncated below local policy (§5.2.2.1). We never send it:
/// every truncation the RFC permits is accepted, shorter ones are FORMERR.
pub const BADTRUNC: u16 = 22;

/// Seconds of clock difference we allow and ask peers to allow (the value
/// RFC 8945 §10 recommends, and what Knot and BIND send).
pub const FUDGE: u16 = 300;

/// Most unsigned messages a stream may carry between two signed ones
/// (RFC 8945 §5.3.1).
pub const UNSIGNED_MESSAGES_MAX: usize = 99;

/// A TSIG MAC algorithm (RFC 8945 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha1,
    HmacSha224,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Algorithm {
    const ALL: [Algorithm; 5] = [
        Algorithm::HmacSha1,
        Algorithm::HmacSha224,
        Algorithm::HmacSha256,
        Algorithm::HmacSha384,
        Algorithm::HmacSha512,
    ];

    /// The name as configuration files and `kdig -y` write it ("hmac-sha256").
    pub fn text_name(self) -> &'static str {
        match self {
            Algorithm::HmacSha1 => "hmac-sha1",
            Algorithm::HmacSha224 => "hmac-sha224",
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha384 => "hmac-sha384",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    /// The algorithm name in canonical wire format ("hmac-sha256."), as it
    /// goes into the TSIG record and the MAC input.
    pub fn wire_name(self) -> &'static [u8] {
        match self {
            Algorithm::HmacSha1 => b"\x09hmac-sha1\x00",
            Algorithm::HmacSha224 => b"\x0bhmac-sha224\x00",
            Algorithm::HmacSha256 => b"\x0bhmac-sha256\x00",
            Algorithm::HmacSha384 => b"\x0bhmac-sha384\x00",
            Algorithm::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    /// The algorithm a received wire name stands for (any case), `None` for
    /// one we do not support.
    pub fn from_name(wire: &[u8]) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| wire.eq_ignore_ascii_case(algorithm.wire_name()))
    }

    /// Parses a configured name: "hmac-sha256", any case, trailing dot optional.
    pub fn from_text(text: &str) -> Option<Algorithm> {
        let text = text.strip_suffix('.').unwrap_or(text);
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| text.eq_ignore_ascii_case(algorithm.text_name()))
    }

    /// Length of the full MAC (the hash output) in bytes.
    pub fn mac_len(self) -> usize {
        match self {
            Algorithm::HmacSha1 => 20,
            Algorithm::HmacSha224 => 28,
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha384 => 48,
            Algorithm::HmacSha512 => 64,
        }
    }

    /// Whether a received MAC of `length` bytes may be checked at all: the
    /// full MAC, or one truncated to no less than the larger of 10 bytes and
    /// half the hash (RFC 8945 §5.2.2.1). Anything else is FORMERR.
    fn accepts_mac_len(self, length: usize) -> bool {
        let shortest = (self.mac_len() / 2).max(10);
        (shortest..=self.mac_len()).contains(&length)
    }
}

/// A shared TSIG secret with its name and algorithm.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// Key name in lowercased wire format: TSIG compares and MACs it in
    /// canonical form (RFC 8945 §4.3.3).
    pub name: Vec<u8>,
    pub algorithm: Algorithm,
    pub secret: Vec<u8>,
}

/// Written by hand so that logging a `Key` never prints its secret.
impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &crate::wire::name::to_text(&self.name))
            .field("algorithm", &self.algorithm)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .finish()
    }
}

impl Key {
    /// Builds a key from configuration text: name ("transfer-key" or
    /// "transfer-key."), algorithm ("hmac-sha256") and the secret in base64,
    /// the form `keymgr`, `tsig-keygen` and `kdig -y` use.
    pub fn new(name_text: &str, algorithm_text: &str, base64_secret: &str) -> Result<Key, String> {
        use base64::Engine;
        let name = from_text(name_text.trim())
            .ok_or_else(|| format!("TSIG key name {name_text:?} is not a valid domain name"))?;
        let algorithm = Algorithm::from_text(algorithm_text.trim()).ok_or_else(|| {
            let known: Vec<&str> = Algorithm::ALL.iter().map(|a| a.text_name()).collect();
            format!(
                "TSIG key {name_text:?}: unknown algorithm {algorithm_text:?} (expected one of {})",
                known.join(", ")
            )
        })?;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(base64_secret.trim())
            .map_err(|e| format!("TSIG key {name_text:?}: secret is not valid base64: {e}"))?;
        if secret.is_empty() {
            return Err(format!("TSIG key {name_text:?}: secret is empty"));
        }
        Ok(Key {
            name,
            algorithm,
            secret,
        })
    }

    /// The most bytes a TSIG record signed with this key adds to a message
    /// (BADTIME answers carry 6 bytes of other data), so a responder can
    /// keep a signed answer within the UDP payload size.
    pub fn record_len_max(&self) -> usize {
        // Owner, type/class/TTL/RDLENGTH, algorithm, time/fudge/MAC size,
        // MAC, original ID/error/other length, other data.
        self.name.len()
            + 10
            + self.algorithm.wire_name().len()
            + 10
            + self.algorithm.mac_len()
            + 6
            + 6
    }
}

/// Outcome of checking a request's TSIG (RFC 8945 §5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestCheck {
    /// No TSIG record: answer as usual (or refuse, if the zone wants a key).
    Unsigned,
    /// The MAC verifies and the time is within the fudge: answer, and sign
    /// the answer with `keys[key]` and `mac`.
    Valid {
        /// Index into the `keys` given to [`check_request`].
        key: usize,
        /// The request's MAC as received; the answer's MAC covers it.
        mac: Vec<u8>,
        /// The message ID the client signed (it may differ from the header's
        /// if a forwarder rewrote it).
        original_id: u16,
        /// The request's length without its TSIG record, so the caller can
        /// parse the rest (ARCOUNT still counts the record).
        message_len: usize,
    },
    /// Answer NOTAUTH with [`append_error`].
    Invalid(InvalidRequest),
    /// The TSIG record is not the last additional record, there are two, or
    /// it cannot be read: answer FORMERR, unsigned.
    Malformed,
}

/// Why a signed request is refused, with what the error answer's TSIG
/// record needs (RFC 8945 §5.3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidRequest {
    /// [`BADKEY`], [`BADSIG`] or [`BADTIME`].
    pub error: u16,
    /// The request's key name, lowercased wire format.
    pub key_name: Vec<u8>,
    /// The request's algorithm name, lowercased wire format.
    pub algorithm_name: Vec<u8>,
    /// The matching key (index into `keys`), `None` for [`BADKEY`].
    pub key: Option<usize>,
    /// The request MAC when it verified ([`BADTIME`]), else empty: only then
    /// is the error answer signed.
    pub mac: Vec<u8>,
    /// The request's Time Signed, echoed in the error answer.
    pub time_signed: u64,
}

/// For logs: "BADSIG (key transfer-key., hmac-sha256.)".
impl std::fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (key {}, {})",
            tsig_error_name(self.error),
            crate::wire::name::to_text(&self.key_name),
            crate::wire::name::to_text(&self.algorithm_name)
        )
    }
}

/// Checks the TSIG of a received request against the configured `keys`, in
/// RFC 8945 §5.2's order: key, MAC length, MAC, time.
pub fn check_request(message: &[u8], keys: &[Key], now_unix: u64) -> RequestCheck {
    let (start, record) = match find_tsig(message) {
        Found::Unsigned => return RequestCheck::Unsigned,
        Found::Malformed => return RequestCheck::Malformed,
        Found::Signed { start, record } => (start, record),
    };
    let invalid = |error: u16, key: Option<usize>, mac: Vec<u8>| {
        RequestCheck::Invalid(InvalidRequest {
            error,
            key_name: record.key_name.clone(),
            algorithm_name: record.algorithm_name.clone(),
            key,
            mac,
            time_signed: record.time_signed,
        })
    };
    let algorithm = Algorithm::from_name(&record.algorithm_name);
    let Some((index, key)) = keys
        .iter()
        .enumerate()
        .find(|(_, key)| key.name == record.key_name && Some(key.algorithm) == algorithm)
    else {
        return invalid(BADKEY, None, Vec::new());
    };
    if !key.algorithm.accepts_mac_len(record.mac.len()) {
        return RequestCheck::Malformed;
    }
    let mut state = MacState::new(key);
    state.update_signed_message(message, start, record.original_id);
    record.fields().update_variables(&mut state);
    if !state.verify(&record.mac) {
        return invalid(BADSIG, Some(index), Vec::new());
    }
    if !within_fudge(record.time_signed, record.fudge, now_unix) {
        return invalid(BADTIME, Some(index), record.mac);
    }
    RequestCheck::Valid {
        key: index,
        mac: record.mac,
        original_id: record.original_id,
        message_len: start,
    }
}

/// The length of a signed message without its TSIG record (where the record
/// starts), so callers can parse and answer the rest; `None` when the
/// message is unsigned or malformed. ARCOUNT in the header still counts the
/// TSIG record.
pub fn unsigned_len(message: &[u8]) -> Option<usize> {
    match find_tsig(message) {
        Found::Signed { start, .. } => Some(start),
        Found::Unsigned | Found::Malformed => None,
    }
}

/// Signs a request: appends a TSIG record to `message` (a complete DNS
/// message without one) and increments ARCOUNT. Returns the MAC, which the
/// response's MAC covers (give it to [`ResponseVerifier::new`]).
pub fn sign_request(message: &mut Vec<u8>, key: &Key, now_unix: u64) -> Vec<u8> {
    sign_response(message, key, &[], now_unix)
}

/// Signs a single response: appends a TSIG record to `message` (a complete
/// DNS message without one) and increments ARCOUNT. `request_mac` is
/// [`RequestCheck::Valid`]'s `mac`. Returns this message's MAC, the start of
/// the chain if more messages follow (see [`ResponseSigner`]).
pub fn sign_response(
    message: &mut Vec<u8>,
    key: &Key,
    request_mac: &[u8],
    now_unix: u64,
) -> Vec<u8> {
    let fields = Fields::new(key, now_unix, message_id(message));
    let mut state = MacState::new(key);
    state.update_prior_mac(request_mac);
    state.update(message);
    fields.update_variables(&mut state);
    let mac = state.finalize();
    fields.append_record(message, &mac);
    mac
}

/// Turns `message` (a complete answer to the refused request, without TSIG)
/// into the error answer of RFC 8945 §5.3.2: sets RCODE to NOTAUTH and
/// appends a TSIG record carrying `invalid.error`. BADKEY and BADSIG answers
/// are unsigned (empty MAC: we cannot, or must not, prove the key); BADTIME
/// answers are signed with the request's key and carry our time in Other
/// Data so the client can see the clock difference.
pub fn append_error(message: &mut Vec<u8>, invalid: &InvalidRequest, keys: &[Key], now_unix: u64) {
    if let Some(flags) = message.get_mut(3) {
        *flags = (*flags & 0xF0) | NOTAUTH;
    }
    let original_id = message_id(message);
    let server_time = time_48(now_unix);
    let signing_key = match invalid.key {
        Some(index) if invalid.error == BADTIME => keys.get(index),
        _ => None,
    };
    let Some(key) = signing_key else {
        let fields = Fields {
            key_name: &invalid.key_name,
            algorithm_name: &invalid.algorithm_name,
            time_signed: invalid.time_signed,
            fudge: FUDGE,
            original_id,
            error: invalid.error,
            other_data: &[],
        };
        fields.append_record(message, &[]);
        return;
    };
    // BADTIME: Time Signed echoes the request's, Other Data is our clock
    // (RFC 8945 §5.2.3; Knot and BIND do the same).
    let fields = Fields {
        key_name: &key.name,
        algorithm_name: key.algorithm.wire_name(),
        time_signed: invalid.time_signed,
        fudge: FUDGE,
        original_id,
        error: BADTIME,
        other_data: &server_time,
    };
    let mut state = MacState::new(key);
    state.update_prior_mac(&invalid.mac);
    state.update(message);
    fields.update_variables(&mut state);
    let mac = state.finalize();
    fields.append_record(message, &mac);
}

/// Signs the messages of a multi-message response (AXFR/IXFR over TCP, RFC
/// 8945 §5.3.1): the first like [`sign_response`], each later one with a MAC
/// over the prior MAC, the message and the timers only. We sign every
/// message (the RFC allows gaps of up to 99; signing all costs little and
/// lets the client check each message as it arrives).
pub struct ResponseSigner {
    key: Key,
    /// The request MAC until the first message is signed, then the MAC of
    /// the last message signed.
    prior_mac: Vec<u8>,
    first: bool,
}

impl ResponseSigner {
    /// A signer for the answer to a request whose check gave `request_mac`.
    pub fn new(key: Key, request_mac: Vec<u8>) -> ResponseSigner {
        ResponseSigner {
            key,
            prior_mac: request_mac,
            first: true,
        }
    }

    /// Appends a TSIG record to the next message of the stream (complete,
    /// without TSIG) and increments its ARCOUNT.
    pub fn sign(&mut self, message: &mut Vec<u8>, now_unix: u64) {
        if self.first {
            self.prior_mac = sign_response(message, &self.key, &self.prior_mac, now_unix);
            self.first = false;
            return;
        }
        let fields = Fields::new(&self.key, now_unix, message_id(message));
        let mut state = MacState::new(&self.key);
        state.update_prior_mac(&self.prior_mac);
        state.update(message);
        fields.update_timers(&mut state);
        let mac = state.finalize();
        fields.append_record(message, &mac);
        self.prior_mac = mac;
    }
}

/// Verifies a response to a request we signed with [`sign_request`]: a
/// single reply, or every message of an AXFR/IXFR stream in order.
pub struct ResponseVerifier {
    key: Key,
    /// The request MAC until the first message verifies, then the MAC of
    /// the last signed message.
    prior_mac: Vec<u8>,
    /// MAC input gathered from the unsigned messages since the last signed
    /// one: the next signed message's MAC covers them (RFC 8945 §5.3.1).
    pending: Option<MacState>,
    unsigned_in_a_row: usize,
    signed_seen: bool,
    last_signed: bool,
    /// An earlier message failed: the chain is broken, nothing more verifies.
    failed: bool,
}

impl ResponseVerifier {
    /// A verifier for the response to a request signed with `key` whose MAC
    /// was `request_mac`.
    pub fn new(key: Key, request_mac: Vec<u8>) -> ResponseVerifier {
        ResponseVerifier {
            key,
            prior_mac: request_mac,
            pending: None,
            unsigned_in_a_row: 0,
            signed_seen: false,
            last_signed: false,
            failed: false,
        }
    }

    /// Verifies the next message of the response. Returns its length without
    /// the TSIG record (the whole length for an unsigned message inside a
    /// stream; ARCOUNT still counts the record). The first message must be
    /// signed; up to [`UNSIGNED_MESSAGES_MAX`] unsigned ones may follow a
    /// signed one. After an error the stream is broken and every later call
    /// fails too.
    pub fn verify(&mut self, message: &[u8], now_unix: u64) -> Result<usize, String> {
        if self.failed {
            return Err("an earlier message of this response failed TSIG verification".into());
        }
        let result = self.verify_next(message, now_unix);
        self.failed = result.is_err();
        result
    }

    /// Succeeds when the response so far ends with a verified signed
    /// message: call it after the last message, since an unsigned tail
    /// could have been added by anybody.
    pub fn finish(&self) -> Result<(), String> {
        if self.failed {
            Err("response failed TSIG verification".into())
        } else if !self.signed_seen {
            Err("response not signed".into())
        } else if !self.last_signed {
            Err("last message of the response not signed".into())
        } else {
            Ok(())
        }
    }

    fn verify_next(&mut self, message: &[u8], now_unix: u64) -> Result<usize, String> {
        let (start, record) = match find_tsig(message) {
            Found::Malformed => return Err("malformed response (cannot locate TSIG)".into()),
            Found::Unsigned => return self.take_unsigned(message),
            Found::Signed { start, record } => (start, record),
        };
        if record.key_name != self.key.name
            || Algorithm::from_name(&record.algorithm_name) != Some(self.key.algorithm)
        {
            return Err(format!(
                "response signed with key {} ({}), expected {} ({})",
                crate::wire::name::to_text(&record.key_name),
                crate::wire::name::to_text(&record.algorithm_name),
                crate::wire::name::to_text(&self.key.name),
                self.key.algorithm.text_name()
            ));
        }
        // BADKEY and BADSIG answers carry no MAC: nothing to verify, and
        // nothing more to learn than the error (RFC 8945 §5.3.2).
        if record.error != 0 && record.mac.is_empty() {
            return Err(format!(
                "TSIG {} from server (rcode {})",
                tsig_error_name(record.error),
                message_rcode_name(message)
            ));
        }
        if !self.key.algorithm.accepts_mac_len(record.mac.len()) {
            return Err(format!(
                "response TSIG MAC of {} bytes is not allowed for {}",
                record.mac.len(),
                self.key.algorithm.text_name()
            ));
        }
        let mut state = match self.pending.take() {
            Some(state) => state,
            None => {
                let mut state = MacState::new(&self.key);
                state.update_prior_mac(&self.prior_mac);
                state
            }
        };
        state.update_signed_message(message, start, record.original_id);
        if self.signed_seen {
            record.fields().update_timers(&mut state);
        } else {
            record.fields().update_variables(&mut state);
        }
        if !state.verify(&record.mac) {
            return Err("response TSIG MAC does not verify (wrong secret?)".into());
        }
        if record.error != 0 {
            // A signed error: BADTIME (our clock is off) or BADTRUNC.
            let server_time = record
                .other_data
                .get(..6)
                .map(|t| format!(", server time {}", read_u48(t)))
                .unwrap_or_default();
            return Err(format!(
                "TSIG {} from server (our time {now_unix}{server_time})",
                tsig_error_name(record.error)
            ));
        }
        if !within_fudge(record.time_signed, record.fudge, now_unix) {
            return Err(format!(
                "response TSIG time {} is more than {} s from our time {now_unix}",
                record.time_signed, record.fudge
            ));
        }
        self.prior_mac = record.mac;
        self.signed_seen = true;
        self.last_signed = true;
        self.unsigned_in_a_row = 0;
        Ok(start)
    }

    /// An unsigned message inside a stream: allowed after a signed one, and
    /// covered by the next signed message's MAC.
    fn take_unsigned(&mut self, message: &[u8]) -> Result<usize, String> {
        if !self.signed_seen {
            return Err(format!(
                "response not signed (rcode {})",
                message_rcode_name(message)
            ));
        }
        self.unsigned_in_a_row += 1;
        if self.unsigned_in_a_row > UNSIGNED_MESSAGES_MAX {
            return Err(format!(
                "more than {UNSIGNED_MESSAGES_MAX} unsigned messages in a row"
            ));
        }
        let state = self.pending.get_or_insert_with(|| {
            let mut state = MacState::new(&self.key);
            state.update_prior_mac(&self.prior_mac);
            state
        });
        state.update(message);
        self.last_signed = false;
        Ok(message.len())
    }
}

// ---------------------------------------------------------------------------
// Reading the TSIG record
// ---------------------------------------------------------------------------

/// The fields of a received TSIG record (RFC 8945 §4.2), names lowercased.
#[derive(Clone, Debug)]
struct TsigRecord {
    key_name: Vec<u8>,
    algorithm_name: Vec<u8>,
    time_signed: u64,
    fudge: u16,
    mac: Vec<u8>,
    original_id: u16,
    error: u16,
    other_data: Vec<u8>,
}

impl TsigRecord {
    fn fields(&self) -> Fields<'_> {
        Fields {
            key_name: &self.key_name,
            algorithm_name: &self.algorithm_name,
            time_signed: self.time_signed,
            fudge: self.fudge,
            original_id: self.original_id,
            error: self.error,
            other_data: &self.other_data,
        }
    }
}

/// What [`find_tsig`] saw.
enum Found {
    Unsigned,
    /// The record, and the offset where it starts: the MAC covers the bytes
    /// before it.
    Signed {
        start: usize,
        record: TsigRecord,
    },
    Malformed,
}

/// Bounds-checked big-endian reads from a received message.
struct Reader<'a> {
    message: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, count: usize) -> Option<&'a [u8]> {
        let bytes = self
            .message
            .get(self.position..self.position.checked_add(count)?)?;
        self.position += count;
        Some(bytes)
    }

    fn u16(&mut self) -> Option<u16> {
        let bytes = self.bytes(2)?;
        Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from(self.u16()?) << 16 | u32::from(self.u16()?))
    }

    fn u48(&mut self) -> Option<u64> {
        self.bytes(6).map(read_u48)
    }

    /// A name, compressed or not, lowercased into canonical form.
    fn name(&mut self) -> Option<Vec<u8>> {
        let mut name = Vec::with_capacity(NAME_LEN_MAX);
        self.position = read_compressed(self.message, self.position, &mut name)?;
        name.make_ascii_lowercase();
        Some(name)
    }
}

/// Walks the whole message to find its TSIG record. RFC 8945 §5.2: the
/// record must be the last one of the additional section, so a TSIG
/// anywhere else (or a second one) makes the message malformed; so do
/// bytes after it, which no MAC would cover.
fn find_tsig(message: &[u8]) -> Found {
    let mut reader = Reader {
        message,
        position: 0,
    };
    let Some(counts) = (|| {
        reader.bytes(4)?; // ID and flags
        Some([reader.u16()?, reader.u16()?, reader.u16()?, reader.u16()?])
    })() else {
        return Found::Malformed;
    };
    let [questions, answers, authorities, additionals] = counts.map(usize::from);
    for _ in 0..questions {
        if reader.name().is_none() || reader.bytes(4).is_none() {
            return Found::Malformed;
        }
    }
    let records = answers + authorities + additionals;
    for index in 0..records {
        let start = reader.position;
        let Some((owner, rtype, class, rdata_len)) = (|| {
            let owner = reader.name()?;
            let rtype = reader.u16()?;
            let class = reader.u16()?;
            reader.u32()?; // TTL: 0 in every TSIG, and the MAC input uses 0 anyway
            Some((owner, rtype, class, reader.u16()?))
        })() else {
            return Found::Malformed;
        };
        let rdata_end = reader.position + usize::from(rdata_len);
        if rtype != TYPE_TSIG {
            if reader.bytes(usize::from(rdata_len)).is_none() {
                return Found::Malformed;
            }
            continue;
        }
        let last_additional = index + 1 == records && additionals > 0;
        if !last_additional || class != CLASS_ANY || rdata_end != message.len() {
            return Found::Malformed;
        }
        return match read_tsig_rdata(&mut reader, owner) {
            Some(record) if reader.position == rdata_end => Found::Signed { start, record },
            _ => Found::Malformed,
        };
    }
    Found::Unsigned
}

/// Reads TSIG RDATA (RFC 8945 §4.2) at the reader's position.
fn read_tsig_rdata(reader: &mut Reader<'_>, key_name: Vec<u8>) -> Option<TsigRecord> {
    let algorithm_name = reader.name()?;
    let time_signed = reader.u48()?;
    let fudge = reader.u16()?;
    let mac_len = reader.u16()?;
    let mac = reader.bytes(usize::from(mac_len))?.to_vec();
    let original_id = reader.u16()?;
    let error = reader.u16()?;
    let other_len = reader.u16()?;
    let other_data = reader.bytes(usize::from(other_len))?.to_vec();
    Some(TsigRecord {
        key_name,
        algorithm_name,
        time_signed,
        fudge,
        mac,
        original_id,
        error,
        other_data,
    })
}

// ---------------------------------------------------------------------------
// Writing the record and computing the MAC
// ---------------------------------------------------------------------------

/// The TSIG fields that go into the MAC input and the record, borrowed.
struct Fields<'a> {
    key_name: &'a [u8],
    algorithm_name: &'a [u8],
    time_signed: u64,
    fudge: u16,
    original_id: u16,
    error: u16,
    other_data: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Fields for signing with `key` now, no error.
    fn new(key: &'a Key, now_unix: u64, original_id: u16) -> Fields<'a> {
        Fields {
            key_name: &key.name,
            algorithm_name: key.algorithm.wire_name(),
            time_signed: now_unix,
            fudge: FUDGE,
            original_id,
            error: 0,
            other_data: &[],
        }
    }

    /// The TSIG variables (RFC 8945 §4.3.3): names canonical and
    /// uncompressed, class ANY, TTL 0.
    fn update_variables(&self, state: &mut MacState) {
        state.update(self.key_name);
        state.update(&CLASS_ANY.to_be_bytes());
        state.update(&0u32.to_be_bytes());
        state.update(self.algorithm_name);
        self.update_timers(state);
        state.update(&self.error.to_be_bytes());
        state.update(&other_len(self.other_data).to_be_bytes());
        state.update(self.other_data);
    }

    /// Only Time Signed and Fudge: what later messages of a stream cover
    /// (RFC 8945 §4.3.1).
    fn update_timers(&self, state: &mut MacState) {
        state.update(&time_48(self.time_signed));
        state.update(&self.fudge.to_be_bytes());
    }

    /// Appends the TSIG record with `mac` (names uncompressed, RFC 8945
    /// §4.2) and increments ARCOUNT.
    fn append_record(&self, message: &mut Vec<u8>, mac: &[u8]) {
        let rdata_len = self.algorithm_name.len() + 10 + mac.len() + 6 + self.other_data.len();
        message.extend_from_slice(self.key_name);
        message.extend_from_slice(&TYPE_TSIG.to_be_bytes());
        message.extend_from_slice(&CLASS_ANY.to_be_bytes());
        message.extend_from_slice(&0u32.to_be_bytes());
        // Our own data: names ≤ 255 bytes, MACs ≤ 64, other data ≤ 6.
        message.extend_from_slice(&(rdata_len as u16).to_be_bytes());
        message.extend_from_slice(self.algorithm_name);
        message.extend_from_slice(&time_48(self.time_signed));
        message.extend_from_slice(&self.fudge.to_be_bytes());
        message.extend_from_slice(&(mac.len() as u16).to_be_bytes());
        message.extend_from_slice(mac);
        message.extend_from_slice(&self.original_id.to_be_bytes());
        message.extend_from_slice(&self.error.to_be_bytes());
        message.extend_from_slice(&other_len(self.other_data).to_be_bytes());
        message.extend_from_slice(self.other_data);
        if let Some(count) = message.get_mut(10..12) {
            let arcount = u16::from_be_bytes([count[0], count[1]]).wrapping_add(1);
            count.copy_from_slice(&arcount.to_be_bytes());
        }
    }
}

/// A running HMAC of one of the supported algorithms.
enum MacState {
    Sha1(Hmac<sha1::Sha1>),
    Sha224(Hmac<sha2::Sha224>),
    Sha256(Hmac<sha2::Sha256>),
    Sha384(Hmac<sha2::Sha384>),
    Sha512(Hmac<sha2::Sha512>),
}

impl MacState {
    fn new(key: &Key) -> MacState {
        // HMAC accepts keys of every length (RFC 2104 §2), and the secret
        // comes from the config, not the network.
        #[allow(clippy::expect_used)]
        fn keyed<M: KeyInit>(secret: &[u8]) -> M {
            M::new_from_slice(secret).expect("HMAC takes keys of any length")
        }
        let secret = &key.secret;
        match key.algorithm {
            Algorithm::HmacSha1 => MacState::Sha1(keyed(secret)),
            Algorithm::HmacSha224 => MacState::Sha224(keyed(secret)),
            Algorithm::HmacSha256 => MacState::Sha256(keyed(secret)),
            Algorithm::HmacSha384 => MacState::Sha384(keyed(secret)),
            Algorithm::HmacSha512 => MacState::Sha512(keyed(secret)),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            MacState::Sha1(mac) => mac.update(data),
            MacState::Sha224(mac) => mac.update(data),
            MacState::Sha256(mac) => mac.update(data),
            MacState::Sha384(mac) => mac.update(data),
            MacState::Sha512(mac) => mac.update(data),
        }
    }

    /// The request MAC (for a response) or the prior message's MAC (inside a
    /// stream), with its length; nothing when there is none (a request, or
    /// an answer to a request whose MAC did not verify).
    fn update_prior_mac(&mut self, mac: &[u8]) {
        if !mac.is_empty() {
            self.update(&(mac.len() as u16).to_be_bytes());
            self.update(mac);
        }
    }

    /// A received signed message as its signer saw it (RFC 8945 §4.3.2):
    /// without the TSIG record at `tsig_start`, ARCOUNT one less, and the
    /// original ID in place of the header's.
    fn update_signed_message(&mut self, message: &[u8], tsig_start: usize, original_id: u16) {
        let mut header = [0u8; HEADER_LEN];
        if let Some(received) = message.get(..HEADER_LEN) {
            header.copy_from_slice(received);
        }
        header[..2].copy_from_slice(&original_id.to_be_bytes());
        let arcount = u16::from_be_bytes([header[10], header[11]]).saturating_sub(1);
        header[10..].copy_from_slice(&arcount.to_be_bytes());
        self.update(&header);
        self.update(message.get(HEADER_LEN..tsig_start).unwrap_or_default());
    }

    fn finalize(self) -> Vec<u8> {
        match self {
            MacState::Sha1(mac) => mac.finalize().into_bytes().to_vec(),
            MacState::Sha224(mac) => mac.finalize().into_bytes().to_vec(),
            MacState::Sha256(mac) => mac.finalize().into_bytes().to_vec(),
            MacState::Sha384(mac) => mac.finalize().into_bytes().to_vec(),
            MacState::Sha512(mac) => mac.finalize().into_bytes().to_vec(),
        }
    }

    /// Constant-time comparison with a received MAC, full or truncated to
    /// its leftmost bytes (RFC 8945 §5.2.2.1; the length was checked before).
    fn verify(self, received: &[u8]) -> bool {
        match self {
            MacState::Sha1(mac) => mac.verify_truncated_left(received).is_ok(),
            MacState::Sha224(mac) => mac.verify_truncated_left(received).is_ok(),
            MacState::Sha256(mac) => mac.verify_truncated_left(received).is_ok(),
            MacState::Sha384(mac) => mac.verify_truncated_left(received).is_ok(),
            MacState::Sha512(mac) => mac.verify_truncated_left(received).is_ok(),
        }
    }
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// True when `now` lies within `fudge` seconds of `time_signed`.
fn within_fudge(time_signed: u64, fudge: u16, now_unix: u64) -> bool {
    time_signed.abs_diff(now_unix) <= u64::from(fudge)
}

/// A time as TSIG's 48-bit unsigned seconds.
fn time_48(time: u64) -> [u8; 6] {
    let bytes = time.to_be_bytes();
    [bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]]
}

/// Reads a 48-bit time from the first 6 bytes (fewer read as zeros).
fn read_u48(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(6)
        .fold(0u64, |value, &byte| value << 8 | u64::from(byte))
}

fn other_len(other_data: &[u8]) -> u16 {
    // Our own data (≤ 6 bytes) or a received field, whose length came from
    // a u16 in the first place.
    other_data.len() as u16
}

fn message_id(message: &[u8]) -> u16 {
    match message.get(..2) {
        Some(&[high, low]) => u16::from_be_bytes([high, low]),
        _ => 0,
    }
}

fn message_rcode_name(message: &[u8]) -> &'static str {
    let rcode = message.get(3).map_or(0, |flags| flags & 0x0F);
    crate::metrics::rcode_name(u16::from(rcode))
}

/// Mnemonic of a TSIG error (RFC 8945 §3, the IANA RCODE registry).
fn tsig_error_name(error: u16) -> String {
    match error {
        BADSIG => "BADSIG".into(),
        BADKEY => "BADKEY".into(),
        BADTIME => "BADTIME".into(),
        BADTRUNC => "BADTRUNC".into(),
        other => format!("error {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;
    /// A 32-byte secret, as `keymgr -t testkey hmac-sha256` would print it.
    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=";

    fn key() -> Key {
        Key::new("testkey", "hmac-sha256", SECRET).unwrap()
    }

    /// A query for example.com SOA with ID 0x1234, optionally with an OPT
    /// record (so the TSIG is not the only additional record).
    fn query(with_opt: bool) -> Vec<u8> {
        let mut message = vec![0x12, 0x34, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        message.extend_from_slice(b"\x07example\x03com\x00\x00\x06\x00\x01");
        if with_opt {
            message[11] = 1;
            message.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
        }
        message
    }

    /// A response to `query` with `answers` A records for example.com.
    fn response(answers: u8) -> Vec<u8> {
        let mut message = vec![0x12, 0x34, 0x84, 0x00, 0, 1, 0, answers, 0, 0, 0, 0];
        message.extend_from_slice(b"\x07example\x03com\x00\x00\x06\x00\x01");
        for index in 0..answers {
            message.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 4]);
            message.extend_from_slice(&[192, 0, 2, index]);
        }
        message
    }

    fn valid_mac(check: RequestCheck) -> Vec<u8> {
        match check {
            RequestCheck::Valid { key: 0, mac, .. } => mac,
            other => panic!("expected Valid with key 0, got {other:?}"),
        }
    }

    fn invalid(check: RequestCheck) -> InvalidRequest {
        match check {
            RequestCheck::Invalid(invalid) => invalid,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn key_from_configuration_text() {
        let key = key();
        assert_eq!(key.name, b"\x07testkey\x00");
        assert_eq!(key.algorithm, Algorithm::HmacSha256);
        assert_eq!(key.secret.len(), 32);
        let upper = Key::new("TestKey.", "HMAC-SHA256.", SECRET).unwrap();
        assert_eq!(upper, key);
        assert!(format!("{key:?}").contains("secret: <32 bytes>"));
        let error = Key::new("k", "hmac-md5", SECRET).unwrap_err();
        assert!(
            error.contains("unknown algorithm") && error.contains("hmac-sha256"),
            "{error}"
        );
        let error = Key::new("k", "hmac-sha1", "not base64!").unwrap_err();
        assert!(error.contains("base64"), "{error}");
        assert!(
            Key::new("k", "hmac-sha1", "")
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            Key::new("a..b", "hmac-sha1", SECRET)
                .unwrap_err()
                .contains("name")
        );
    }

    #[test]
    fn algorithm_names() {
        for algorithm in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(algorithm.wire_name()), Some(algorithm));
            assert_eq!(Algorithm::from_text(algorithm.text_name()), Some(algorithm));
            let wire = from_text(algorithm.text_name()).unwrap();
            assert_eq!(wire, algorithm.wire_name());
        }
        assert_eq!(
            Algorithm::from_name(b"\x0bHMAC-SHA256\x00"),
            Some(Algorithm::HmacSha256)
        );
        assert_eq!(
            Algorithm::from_name(b"\x08hmac-md5\x07sig-alg\x03reg\x03int\x00"),
            None
        );
    }

    #[test]
    fn signed_request_round_trip() {
        for with_opt in [false, true] {
            for algorithm in Algorithm::ALL {
                let key = Key { algorithm, ..key() };
                let unsigned = query(with_opt);
                let mut message = unsigned.clone();
                let mac = sign_request(&mut message, &key, NOW);
                assert_eq!(mac.len(), algorithm.mac_len());
                assert_eq!(message.len(), unsigned.len() + key.record_len_max() - 6);
                assert_eq!(message[11], unsigned[11] + 1);
                let other = Key::new("other", "hmac-sha1", SECRET).unwrap();
                let check = check_request(&message, &[other, key.clone()], NOW + 10);
                assert_eq!(
                    check,
                    RequestCheck::Valid {
                        key: 1,
                        mac,
                        original_id: 0x1234,
                        message_len: unsigned.len(),
                    }
                );
                assert_eq!(unsigned_len(&message), Some(unsigned.len()));
                assert_eq!(
                    check_request(&unsigned, &[key], NOW),
                    RequestCheck::Unsigned
                );
                assert_eq!(unsigned_len(&unsigned), None);
            }
        }
    }

    #[test]
    fn rewritten_id_still_verifies_through_original_id() {
        let mut message = query(true);
        sign_request(&mut message, &key(), NOW);
        message[0] = 0xAB;
        let check = check_request(&message, &[key()], NOW);
        assert!(matches!(
            check,
            RequestCheck::Valid {
                original_id: 0x1234,
                ..
            }
        ));
    }

    #[test]
    fn tampered_request_is_badsig() {
        let mut message = query(true);
        sign_request(&mut message, &key(), NOW);
        message[14] ^= 0x20; // case of a qname letter
        let invalid = invalid(check_request(&message, &[key()], NOW));
        assert_eq!(invalid.error, BADSIG);
        assert_eq!(invalid.key, Some(0));
        assert!(invalid.mac.is_empty());
        let wrong_secret = Key {
            secret: b"another secret".to_vec(),
            ..key()
        };
        let mut message = query(false);
        sign_request(&mut message, &wrong_secret, NOW);
        assert_eq!(
            invalid_error(check_request(&message, &[key()], NOW)),
            BADSIG
        );
    }

    fn invalid_error(check: RequestCheck) -> u16 {
        invalid(check).error
    }

    #[test]
    fn unknown_key_or_algorithm_is_badkey() {
        let mut message = query(false);
        sign_request(&mut message, &key(), NOW);
        let other = Key::new("otherkey", "hmac-sha256", SECRET).unwrap();
        let invalid = invalid(check_request(&message, &[other], NOW));
        assert_eq!(invalid.error, BADKEY);
        assert_eq!(invalid.key, None);
        assert_eq!(invalid.key_name, key().name);
        assert_eq!(invalid.algorithm_name, Algorithm::HmacSha256.wire_name());
        let same_name_other_algorithm = Key::new("testkey", "hmac-sha512", SECRET).unwrap();
        let check = check_request(&message, &[same_name_other_algorithm], NOW);
        assert_eq!(invalid_error(check), BADKEY);
        assert_eq!(invalid_error(check_request(&message, &[], NOW)), BADKEY);
    }

    #[test]
    fn old_request_is_badtime_and_the_answer_is_signed() {
        let mut message = query(false);
        let request_mac = sign_request(&mut message, &key(), NOW - 301);
        assert!(matches!(
            check_request(&message, &[key()], NOW - 1),
            RequestCheck::Valid { .. }
        ));
        let invalid = invalid(check_request(&message, &[key()], NOW));
        assert_eq!(invalid.error, BADTIME);
        assert_eq!(invalid.key, Some(0));
        assert_eq!(invalid.mac, request_mac);
        assert_eq!(invalid.time_signed, NOW - 301);
        assert_eq!(invalid.to_string(), "BADTIME (key testkey., hmac-sha256.)");
        // The client, whose clock says NOW - 301, sees a verified BADTIME
        // carrying the server's time.
        let mut answer = response(0);
        append_error(&mut answer, &invalid, &[key()], NOW);
        assert_eq!(answer[3] & 0x0F, NOTAUTH);
        let mut verifier = ResponseVerifier::new(key(), request_mac);
        let error = verifier.verify(&answer, NOW - 301).unwrap_err();
        assert!(
            error.contains("BADTIME") && error.contains(&NOW.to_string()),
            "{error}"
        );
        assert!(verifier.finish().is_err());
    }

    #[test]
    fn unsigned_error_answers_reach_the_client() {
        for (error, name) in [(BADSIG, "BADSIG"), (BADKEY, "BADKEY")] {
            let mut request = query(false);
            let request_mac = sign_request(&mut request, &key(), NOW);
            let invalid = InvalidRequest {
                error,
                key_name: key().name,
                algorithm_name: key().algorithm.wire_name().to_vec(),
                key: (error == BADSIG).then_some(0),
                mac: Vec::new(),
                time_signed: NOW,
            };
            let mut answer = response(0);
            append_error(&mut answer, &invalid, &[key()], NOW);
            assert_eq!(unsigned_len(&answer), Some(response(0).len()));
            let mut verifier = ResponseVerifier::new(key(), request_mac);
            let message = verifier.verify(&answer, NOW).unwrap_err();
            assert_eq!(message, format!("TSIG {name} from server (rcode NOTAUTH)"));
        }
    }

    #[test]
    fn single_signed_response_verifies() {
        let mut request = query(true);
        let request_mac = sign_request(&mut request, &key(), NOW);
        let RequestCheck::Valid { mac, .. } = check_request(&request, &[key()], NOW) else {
            panic!("request not valid");
        };
        let mut answer = response(2);
        let unsigned = answer.len();
        sign_response(&mut answer, &key(), &mac, NOW + 1);
        let mut verifier = ResponseVerifier::new(key(), request_mac.clone());
        assert_eq!(verifier.verify(&answer, NOW + 2), Ok(unsigned));
        assert_eq!(verifier.finish(), Ok(()));
        // Signed over another request's MAC: does not verify.
        let mut verifier = ResponseVerifier::new(key(), vec![0; 32]);
        assert!(
            verifier
                .verify(&answer, NOW)
                .unwrap_err()
                .contains("does not verify")
        );
        // Our clock far off: rejected even though the MAC verifies.
        let mut verifier = ResponseVerifier::new(key(), request_mac);
        assert!(
            verifier
                .verify(&answer, NOW + 1000)
                .unwrap_err()
                .contains("300 s")
        );
    }

    #[test]
    fn stream_of_signed_messages_verifies() {
        let mut request = query(false);
        let request_mac = sign_request(&mut request, &key(), NOW);
        let mac = valid_mac(check_request(&request, &[key()], NOW));
        let mut signer = ResponseSigner::new(key(), mac);
        let mut verifier = ResponseVerifier::new(key(), request_mac);
        let mut stream = Vec::new();
        for answers in [3, 5, 1] {
            let mut message = response(answers);
            signer.sign(&mut message, NOW);
            stream.push(message);
        }
        for message in &stream {
            let length = verifier.verify(message, NOW).unwrap();
            assert_eq!(Some(length), unsigned_len(message));
        }
        assert_eq!(verifier.finish(), Ok(()));
        // Out of order: the chain breaks.
        let mut verifier =
            ResponseVerifier::new(key(), valid_mac(check_request(&request, &[key()], NOW)));
        verifier.verify(&stream[0], NOW).unwrap();
        assert!(verifier.verify(&stream[2], NOW).is_err());
        assert!(
            verifier.verify(&stream[1], NOW).is_err(),
            "broken chain stays broken"
        );
        assert!(verifier.finish().is_err());
    }

    /// Signs `message` as a later message of a stream whose MAC also covers
    /// the unsigned messages sent since the prior signed one.
    fn sign_after_unsigned(message: &mut Vec<u8>, prior_mac: &[u8], unsigned: &[&[u8]]) -> Vec<u8> {
        let key = key();
        let fields = Fields::new(&key, NOW, message_id(message));
        let mut state = MacState::new(&key);
        state.update_prior_mac(prior_mac);
        for skipped in unsigned {
            state.update(skipped);
        }
        state.update(message);
        fields.update_timers(&mut state);
        let mac = state.finalize();
        fields.append_record(message, &mac);
        mac
    }

    #[test]
    fn unsigned_messages_inside_a_stream() {
        let mut request = query(false);
        let request_mac = sign_request(&mut request, &key(), NOW);
        let mut first = response(1);
        let first_mac = sign_response(&mut first, &key(), &request_mac, NOW);
        let middle = response(2);
        let mut last = response(3);
        sign_after_unsigned(&mut last, &first_mac, &[&middle]);

        let mut verifier = ResponseVerifier::new(key(), request_mac.clone());
        verifier.verify(&first, NOW).unwrap();
        assert_eq!(verifier.verify(&middle, NOW), Ok(middle.len()));
        assert!(verifier.finish().unwrap_err().contains("last message"));
        verifier.verify(&last, NOW).unwrap();
        assert_eq!(verifier.finish(), Ok(()));

        // A forged unsigned middle message breaks the next MAC.
        let mut verifier = ResponseVerifier::new(key(), request_mac.clone());
        verifier.verify(&first, NOW).unwrap();
        verifier.verify(&response(4), NOW).unwrap();
        assert!(verifier.verify(&last, NOW).is_err());

        // An unsigned first message is refused outright.
        let mut verifier = ResponseVerifier::new(key(), request_mac);
        let error = verifier.verify(&middle, NOW).unwrap_err();
        assert_eq!(error, "response not signed (rcode NOERROR)");
        assert_eq!(
            verifier.finish().unwrap_err(),
            "response failed TSIG verification"
        );
    }

    #[test]
    fn too_many_unsigned_messages() {
        let mut request = query(false);
        let request_mac = sign_request(&mut request, &key(), NOW);
        let mut first = response(1);
        sign_response(&mut first, &key(), &request_mac, NOW);
        let mut verifier = ResponseVerifier::new(key(), request_mac);
        verifier.verify(&first, NOW).unwrap();
        let unsigned = response(1);
        for _ in 0..UNSIGNED_MESSAGES_MAX {
            verifier.verify(&unsigned, NOW).unwrap();
        }
        assert!(verifier.verify(&unsigned, NOW).unwrap_err().contains("99"));
    }

    /// A request signed with its MAC truncated to `mac_len` bytes.
    fn request_with_truncated_mac(mac_len: usize) -> Vec<u8> {
        let key = key();
        let mut message = query(false);
        let fields = Fields::new(&key, NOW, 0x1234);
        let mut state = MacState::new(&key);
        state.update(&message);
        fields.update_variables(&mut state);
        let mac = state.finalize();
        fields.append_record(&mut message, &mac[..mac_len]);
        message
    }

    #[test]
    fn truncated_macs() {
        // hmac-sha256: 16 bytes (half) is the shortest allowed.
        let message = request_with_truncated_mac(16);
        assert_eq!(valid_mac(check_request(&message, &[key()], NOW)).len(), 16);
        let message = request_with_truncated_mac(15);
        assert_eq!(
            check_request(&message, &[key()], NOW),
            RequestCheck::Malformed
        );
        let message = request_with_truncated_mac(0);
        assert_eq!(
            check_request(&message, &[key()], NOW),
            RequestCheck::Malformed
        );
        assert!(Algorithm::HmacSha1.accepts_mac_len(10));
        assert!(!Algorithm::HmacSha1.accepts_mac_len(9));
        assert!(!Algorithm::HmacSha1.accepts_mac_len(21));
    }

    #[test]
    fn compressed_and_uppercase_names_are_accepted() {
        // The TSIG owner as a pointer to a question name equal to the key
        // name, and an uppercase algorithm name: the MAC input uses the
        // canonical forms, so the signature still verifies.
        let key = key();
        let mut message = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        message.extend_from_slice(b"\x07testkey\x00\x00\x06\x00\x01");
        let unsigned = message.len();
        sign_request(&mut message, &key, NOW);
        let record = message.split_off(unsigned);
        let rest = &record[key.name.len()..];
        message.extend_from_slice(&[0xC0, 12]);
        message.extend_from_slice(rest);
        let algorithm_at = unsigned + 2 + 10;
        message[algorithm_at + 1..algorithm_at + 12].make_ascii_uppercase();
        assert!(matches!(
            check_request(&message, &[key], NOW),
            RequestCheck::Valid { .. }
        ));
    }

    #[test]
    fn tsig_in_the_wrong_place_is_malformed() {
        // TSIG followed by OPT.
        let mut message = query(false);
        sign_request(&mut message, &key(), NOW);
        message[11] += 1;
        message.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            check_request(&message, &[key()], NOW),
            RequestCheck::Malformed
        );
        // Two TSIG records.
        let mut message = query(false);
        sign_request(&mut message, &key(), NOW);
        sign_request(&mut message, &key(), NOW);
        assert_eq!(
            check_request(&message, &[key()], NOW),
            RequestCheck::Malformed
        );
        // TSIG counted as an answer record.
        let mut message = query(false);
        sign_request(&mut message, &key(), NOW);
        message[7] = 1;
        message[11] = 0;
        assert_eq!(
            check_request(&message, &[key()], NOW),
            RequestCheck::Malformed
        );
        // Bytes after the TSIG record.
        let mut message = query(false);
        sign_request(&mut message, &key(), NOW);
        message.push(0);
        assert_eq!(
            check_request(&message, &[key()], NOW),
            RequestCheck::Malformed
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut request = query(true);
        let request_mac = sign_request(&mut request, &key(), NOW);
        let mut answer = response(2);
        sign_response(&mut answer, &key(), &request_mac, NOW);
        for message in [&request, &answer] {
            for length in 0..message.len() {
                let truncated = &message[..length];
                let check = check_request(truncated, &[key()], NOW);
                assert!(
                    !matches!(check, RequestCheck::Valid { .. }),
                    "length {length}"
                );
                unsigned_len(truncated);
                let mut verifier = ResponseVerifier::new(key(), request_mac.clone());
                assert!(verifier.verify(truncated, NOW).is_err(), "length {length}");
            }
            for position in 0..message.len() {
                for flip in [0x01, 0x80, 0xFF] {
                    let mut damaged = message.clone();
                    damaged[position] ^= flip;
                    check_request(&damaged, &[key()], NOW);
                    unsigned_len(&damaged);
                    let mut verifier = ResponseVerifier::new(key(), request_mac.clone());
                    let _ = verifier.verify(&damaged, NOW);
                }
            }
        }
    }
}
