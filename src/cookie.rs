//! DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018):
//! the server cookie's construction and check, and the server secrets the
//! workers read while one slow-path thread rotates them.
//!
//! This module owns the cookie math and the secrets. It never parses a
//! packet (`wire::query` finds the COOKIE option, `respond` writes ours)
//! and never decides what a valid cookie is worth (the engine skips rate
//! limiting for it). Checking and making a cookie allocate nothing, take
//! no lock and make no system call; the time comes in as an argument.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::Duration;

use siphasher::sip::SipHasher24;
use siphasher::sip128::{Hasher128, SipHasher24 as SipHasher24Wide};

/// EDNS option code of COOKIE (RFC 7873 §4).
pub const OPTION_COOKIE: u16 = 10;
pub const CLIENT_COOKIE_LEN: usize = 8;
/// The server cookies we make (RFC 9018 §4): version, reserved,
/// timestamp, hash.
pub const SERVER_COOKIE_LEN: usize = 16;
/// A received server cookie may be 8 to 32 bytes (RFC 7873 §4.2).
pub const SERVER_COOKIE_LEN_MIN: usize = 8;
pub const SERVER_COOKIE_LEN_MAX: usize = 32;
pub const SECRET_LEN: usize = 16;
/// The COOKIE option we write: the client's cookie and our server cookie.
pub const REPLY_OPTION_LEN: usize = 4 + CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN;

const VERSION: u8 = 1;
/// A server cookie is accepted for an hour after its timestamp (RFC 9018
/// §4.3)...
const LIFETIME_S: i64 = 3600;
/// ...and up to five minutes before it, for clocks of servers sharing a
/// secret that run a little ahead of ours.
const CLOCK_SKEW_S: i64 = 300;
/// After half an hour we hand out a fresh one (RFC 9018 §4.3), so a client
/// that keeps asking never holds an expired one.
const RENEW_AGE_S: i64 = 1800;

pub type Secret = [u8; SECRET_LEN];

/// What a query's server cookie proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCookieCheck {
    /// A client cookie alone: the client's first query to us.
    Absent,
    /// Made by us (current or previous secret) for this client cookie and
    /// address, within its lifetime: the source address is proven.
    Valid,
    /// Not ours, not this client's, expired, or of another version.
    Invalid,
}

/// Our answer to a query's cookie: how its server cookie checked out, and
/// the server cookie the reply carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieAnswer {
    pub check: ServerCookieCheck,
    /// The query's, echoed.
    pub client_cookie: [u8; CLIENT_COOKIE_LEN],
    pub server_cookie: [u8; SERVER_COOKIE_LEN],
}

/// The secrets one moment saw: cookies are made with `current`, and
/// accepted when made with either.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretPair {
    pub current: Secret,
    /// The secret `current` replaced, valid for one more rotation period
    /// (RFC 9018 §5); `current` again before the first rotation.
    pub previous: Secret,
}

impl std::fmt::Debug for SecretPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretPair { .. }")
    }
}

/// The RFC 9018 §4.4 hash: SipHash-2-4 keyed with `secret` over Client
/// Cookie | Version | Reserved | Timestamp | Client-IP, in the byte order
/// of the reference implementation (little-endian output).
fn cookie_hash(
    secret: &Secret,
    client_cookie: &[u8; CLIENT_COOKIE_LEN],
    head: &[u8; 8],
    client: IpAddr,
) -> [u8; 8] {
    let mut input = [0u8; CLIENT_COOKIE_LEN + 8 + 16];
    input[..8].copy_from_slice(client_cookie);
    input[8..16].copy_from_slice(head);
    let input_len = match client {
        IpAddr::V4(address) => {
            input[16..20].copy_from_slice(&address.octets());
            20
        }
        IpAddr::V6(address) => {
            input[16..32].copy_from_slice(&address.octets());
            32
        }
    };
    let mut hasher = SipHasher24::new_with_key(secret);
    std::hash::Hasher::write(&mut hasher, &input[..input_len]);
    std::hash::Hasher::finish(&hasher).to_le_bytes()
}

/// The server cookie for `client_cookie` from `client` at `timestamp`
/// (unix seconds, modulo 2^32) made with `secret` (RFC 9018 §4).
pub fn server_cookie(
    secret: &Secret,
    client_cookie: &[u8; CLIENT_COOKIE_LEN],
    client: IpAddr,
    timestamp: u32,
) -> [u8; SERVER_COOKIE_LEN] {
    // Version, three reserved bytes (zero), the timestamp.
    let mut head = [VERSION, 0, 0, 0, 0, 0, 0, 0];
    head[4..].copy_from_slice(&timestamp.to_be_bytes());
    let mut cookie = [0u8; SERVER_COOKIE_LEN];
    cookie[..8].copy_from_slice(&head);
    cookie[8..].copy_from_slice(&cookie_hash(secret, client_cookie, &head, client));
    cookie
}

/// Seconds from `timestamp` to `now`, both modulo 2^32 (RFC 1982 serial
/// arithmetic, so the wrap in 2106 costs nothing); negative when the
/// timestamp is ahead.
fn age_s(timestamp: u32, now: u32) -> i64 {
    i64::from(now.wrapping_sub(timestamp) as i32)
}

/// Checks the COOKIE option of a query from `client` at `now`, and makes
/// the server cookie for the reply: the received one echoed while it is
/// valid, made with the current secret and younger than half an hour
/// (RFC 9018 §4.3); a fresh one otherwise. `received_server_cookie` is
/// empty for a client cookie alone.
pub fn answer(
    secrets: &SecretPair,
    client_cookie: &[u8; CLIENT_COOKIE_LEN],
    received_server_cookie: &[u8],
    client: IpAddr,
    now: u32,
) -> CookieAnswer {
    let fresh = || server_cookie(&secrets.current, client_cookie, client, now);
    if received_server_cookie.is_empty() {
        return CookieAnswer {
            check: ServerCookieCheck::Absent,
            client_cookie: *client_cookie,
            server_cookie: fresh(),
        };
    }
    let invalid = || CookieAnswer {
        check: ServerCookieCheck::Invalid,
        client_cookie: *client_cookie,
        server_cookie: fresh(),
    };
    // Ours are 16 bytes of version 1; any other size or version was made
    // by another server (RFC 9018 §4.1 asks to treat it as missing).
    let Ok(received) = <&[u8; SERVER_COOKIE_LEN]>::try_from(received_server_cookie) else {
        return invalid();
    };
    let (head, hash) = received.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
    if head[0] != VERSION {
        return invalid();
    }
    let timestamp = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let age = age_s(timestamp, now);
    if !(-CLOCK_SKEW_S..=LIFETIME_S).contains(&age) {
        return invalid();
    }
    // The hash covers the received header bytes as they are: Reserved is
    // ignored but hashed (RFC 9018 §4.2, Appendix A.3).
    let made_with_current = cookie_hash(&secrets.current, client_cookie, head, client) == hash;
    let made_with_previous = !made_with_current
        && secrets.previous != secrets.current
        && cookie_hash(&secrets.previous, client_cookie, head, client) == hash;
    if !made_with_current && !made_with_previous {
        return invalid();
    }
    let server_cookie = if made_with_current && age <= RENEW_AGE_S {
        *received
    } else {
        fresh()
    };
    CookieAnswer {
        check: ServerCookieCheck::Valid,
        client_cookie: *client_cookie,
        server_cookie,
    }
}

/// The process's cookie secrets: written by one rotation thread, read by
/// every worker without a lock.
///
/// A sequence lock: `generation` is odd while the writer is between its
/// stores, and a reader retries when it saw an odd value or a change. The
/// writer runs once per rotation period, so a retry is all but unheard of;
/// readers give up after a few (a bound on every loop) and use what they
/// read, which at worst fails the validation of the few queries that raced
/// a rotation: those get a fresh cookie and are rate limited as clients
/// without one, nothing worse.
pub struct CookieSecrets {
    generation: AtomicU64,
    /// current (two words), then previous (two words), native-endian.
    words: [AtomicU64; 4],
}

impl std::fmt::Debug for CookieSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieSecrets { .. }")
    }
}

/// Reads that met a rotation in progress before a reader uses what it has.
const READ_RETRIES_MAX: usize = 8;

fn secret_words(secret: &Secret) -> [u64; 2] {
    let (low, high) = secret.split_at(8);
    [
        u64::from_ne_bytes(low.try_into().unwrap_or([0; 8])),
        u64::from_ne_bytes(high.try_into().unwrap_or([0; 8])),
    ]
}

fn words_secret(words: [u64; 2]) -> Secret {
    let mut secret = [0u8; SECRET_LEN];
    secret[..8].copy_from_slice(&words[0].to_ne_bytes());
    secret[8..].copy_from_slice(&words[1].to_ne_bytes());
    secret
}

impl CookieSecrets {
    pub fn new(pair: SecretPair) -> Self {
        let [current_low, current_high] = secret_words(&pair.current);
        let [previous_low, previous_high] = secret_words(&pair.previous);
        CookieSecrets {
            generation: AtomicU64::new(0),
            words: [
                AtomicU64::new(current_low),
                AtomicU64::new(current_high),
                AtomicU64::new(previous_low),
                AtomicU64::new(previous_high),
            ],
        }
    }

    /// The secrets now: four relaxed loads between two loads of the
    /// generation.
    #[inline]
    pub fn load(&self) -> SecretPair {
        let mut words = [0u64; 4];
        for _ in 0..READ_RETRIES_MAX {
            let before = self.generation.load(Ordering::Acquire);
            for (word, atomic) in words.iter_mut().zip(&self.words) {
                *word = atomic.load(Ordering::Relaxed);
            }
            // Orders the word loads before the second generation load.
            fence(Ordering::Acquire);
            let after = self.generation.load(Ordering::Relaxed);
            if before == after && before.is_multiple_of(2) {
                break;
            }
            std::hint::spin_loop();
        }
        SecretPair {
            current: words_secret([words[0], words[1]]),
            previous: words_secret([words[2], words[3]]),
        }
    }

    /// Replaces both secrets. One writer only: the rotation thread (tests
    /// call it directly).
    pub fn store(&self, pair: SecretPair) {
        let generation = self.generation.load(Ordering::Relaxed);
        self.generation
            .store(generation.wrapping_add(1), Ordering::Relaxed);
        // Readers that see any new word see the odd generation.
        fence(Ordering::Release);
        let [current_low, current_high] = secret_words(&pair.current);
        let [previous_low, previous_high] = secret_words(&pair.previous);
        for (atomic, word) in
            self.words
                .iter()
                .zip([current_low, current_high, previous_low, previous_high])
        {
            atomic.store(word, Ordering::Relaxed);
        }
        self.generation
            .store(generation.wrapping_add(2), Ordering::Release);
    }

    /// Makes `secret` current and keeps the one it replaces as previous.
    pub fn rotate_to(&self, secret: Secret) {
        let now = self.load();
        self.store(SecretPair {
            current: secret,
            previous: now.current,
        });
    }
}

/// Where the secrets come from (the `cookies` directive, resolved).
#[derive(Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// `secret HEX32`: shared by the servers of one anycast address. `None`:
    /// a random one made at start.
    pub secret: Option<Secret>,
    /// A new secret every period; `None`: never.
    pub rotate: Option<Duration>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            secret: None,
            rotate: Some(ROTATE_DEFAULT),
        }
    }
}

impl std::fmt::Debug for CookieConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieConfig")
            .field("secret", &self.secret.map(|_| "<set>"))
            .field("rotate", &self.rotate)
            .finish()
    }
}

/// A random secret's lifetime: the cookie lifetime (RFC 9018 §4.3), so a
/// cookie stays valid its full hour through one rotation.
pub const ROTATE_DEFAULT: Duration = Duration::from_secs(3600);

/// The secret of rotation period `period` derived from a configured one:
/// SipHash-2-4-128 keyed with it over the period number, so servers
/// sharing the configured secret and the period derive the same secrets
/// at the same wall-clock times.
pub fn period_secret(configured: &Secret, period: u64) -> Secret {
    let mut hasher = SipHasher24Wide::new_with_key(configured);
    std::hash::Hasher::write(&mut hasher, b"ringdns cookie secret");
    std::hash::Hasher::write(&mut hasher, &period.to_be_bytes());
    hasher.finish128().as_bytes()
}

/// 16 bytes from the kernel's random pool.
pub fn random_secret() -> std::io::Result<Secret> {
    let mut secret = [0u8; SECRET_LEN];
    let mut filled = 0;
    // getrandom(2) returns short counts only for large requests or on a
    // signal; a few tries are plenty.
    for _ in 0..8 {
        let rest = &mut secret[filled..];
        // SAFETY: getrandom writes at most `rest.len()` bytes into `rest`,
        // a live, writable buffer of that length.
        let count = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if count < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        filled += count as usize;
        if filled == SECRET_LEN {
            return Ok(secret);
        }
    }
    Err(std::io::Error::other("getrandom returned too few bytes"))
}

/// Unix time in seconds, modulo 2^32 (RFC 9018's timestamp). One
/// `clock_gettime(CLOCK_REALTIME_COARSE)`: served from the vDSO, no system
/// call; its resolution (a few ms) is far below the second needed.
#[inline]
pub fn now_s() -> u32 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a live local.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut time) };
    time.tv_sec as u32
}

fn unix_time_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The secrets `config` calls for now, and a thread that rotates them
/// when it asks for rotation. Fails only when the kernel gives no random
/// bytes.
pub fn start(config: &CookieConfig) -> std::io::Result<Arc<CookieSecrets>> {
    let period_s = config.rotate.map(|period| period.as_secs().max(1));
    let secrets = match (config.secret, period_s) {
        // A configured secret used as it is: other RFC 9018 servers (Knot,
        // BIND) configured with the same one accept our cookies.
        (Some(secret), None) => SecretPair {
            current: secret,
            previous: secret,
        },
        // Periods aligned to the epoch, so the servers sharing the secret
        // rotate together, and a restart keeps the previous secret.
        (Some(secret), Some(period_s)) => {
            let period = unix_time_s() / period_s;
            SecretPair {
                current: period_secret(&secret, period),
                previous: period_secret(&secret, period.saturating_sub(1)),
            }
        }
        (None, _) => {
            let secret = random_secret()?;
            SecretPair {
                current: secret,
                previous: secret,
            }
        }
    };
    let secrets = Arc::new(CookieSecrets::new(secrets));
    if let Some(period_s) = period_s {
        let rotating = Arc::clone(&secrets);
        let configured = config.secret;
        std::thread::Builder::new()
            .name("cookie-rotate".into())
            .spawn(move || rotate_forever(&rotating, configured, period_s))?;
    }
    Ok(secrets)
}

/// Sleeps to each period's start and rotates; never returns.
fn rotate_forever(secrets: &CookieSecrets, configured: Option<Secret>, period_s: u64) {
    let mut period = unix_time_s() / period_s;
    loop {
        let next_start_s = (period + 1) * period_s;
        let wait_s = next_start_s.saturating_sub(unix_time_s());
        std::thread::sleep(Duration::from_secs(wait_s.max(1)));
        let now_period = unix_time_s() / period_s;
        if now_period == period {
            continue; // woke early (the clock was set back)
        }
        period = now_period;
        let secret = match configured {
            Some(configured) => period_secret(&configured, period),
            None => match random_secret() {
                Ok(secret) => secret,
                Err(error) => {
                    eprintln!("ringdns: warning: cookie secret not rotated: {error}");
                    continue;
                }
            },
        };
        secrets.rotate_to(secret);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex<const N: usize>(text: &str) -> [u8; N] {
        let mut bytes = [0u8; N];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16).unwrap();
        }
        bytes
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const SECRET_A: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

    fn only(secret: Secret) -> SecretPair {
        SecretPair {
            current: secret,
            previous: secret,
        }
    }

    /// RFC 9018 Appendix A, every vector.
    #[test]
    fn makes_the_rfc_9018_vectors() {
        let vectors = [
            (
                SECRET_A,
                "2464c4abcf10c957",
                "198.51.100.100",
                1559731985,
                "010000005cf79f111f8130c3eee29480",
            ),
            (
                SECRET_A,
                "2464c4abcf10c957",
                "198.51.100.100",
                1559734385,
                "010000005cf7a871d4a564a1442aca77",
            ),
            (
                SECRET_A,
                "fc93fc62807ddb86",
                "203.0.113.203",
                1559734700,
                "010000005cf7a9acf73a7810aca2381e",
            ),
            (
                "dd3bdf9344b678b185a6f5cb60fca715",
                "22681ab97d52c298",
                "2001:db8:220:1:59de:d0f4:8769:82b8",
                1559741817,
                "010000005cf7c57926556bd0934c72f8",
            ),
            (
                "445536bcd2513298075a5d379663c962",
                "22681ab97d52c298",
                "2001:db8:220:1:59de:d0f4:8769:82b8",
                1559741961,
                "010000005cf7c609a6bb79d16625507a",
            ),
        ];
        for (secret, client_cookie, client, timestamp, expected) in vectors {
            assert_eq!(
                server_cookie(&hex(secret), &hex(client_cookie), ip(client), timestamp),
                hex::<16>(expected),
                "{client} at {timestamp}"
            );
        }
    }

    #[test]
    fn a_cookie_made_here_validates_and_is_echoed_while_young() {
        let secrets = only(hex(SECRET_A));
        let client_cookie = hex("2464c4abcf10c957");
        let client = ip("198.51.100.100");
        let made = server_cookie(&secrets.current, &client_cookie, client, 1559731985);
        let answer = answer(&secrets, &client_cookie, &made, client, 1559731985 + 60);
        assert_eq!(answer.check, ServerCookieCheck::Valid);
        assert_eq!(answer.server_cookie, made);
    }

    /// A.2: the client comes back after 40 minutes; its cookie still holds
    /// and it gets a fresh one, the vector's.
    #[test]
    fn an_old_cookie_is_valid_and_renewed() {
        let secrets = only(hex(SECRET_A));
        let received: [u8; 16] = hex("010000005cf79f111f8130c3eee29480");
        let answer = answer(
            &secrets,
            &hex("2464c4abcf10c957"),
            &received,
            ip("198.51.100.100"),
            1559734385,
        );
        assert_eq!(answer.check, ServerCookieCheck::Valid);
        assert_eq!(
            answer.server_cookie,
            hex("010000005cf7a871d4a564a1442aca77")
        );
    }

    /// A.3: reserved bytes the client (or another server) set are hashed
    /// as received.
    #[test]
    fn reserved_bytes_are_part_of_the_hash() {
        let secrets = only(hex(SECRET_A));
        let received: [u8; 16] = hex("01abcdef5cf78f71a314227b6679ebf5");
        let client_cookie = hex("fc93fc62807ddb86");
        let check = |client: &str, now: u32| {
            answer(&secrets, &client_cookie, &received, ip(client), now).check
        };
        assert_eq!(
            check("203.0.113.203", 0x5cf7_8f71),
            ServerCookieCheck::Valid
        );
        assert_eq!(
            check("203.0.113.204", 0x5cf7_8f71),
            ServerCookieCheck::Invalid
        );
    }

    #[test]
    fn wrong_address_secret_client_cookie_or_version_is_invalid() {
        let secrets = only(hex(SECRET_A));
        let client_cookie = hex("2464c4abcf10c957");
        let client = ip("198.51.100.100");
        let now = 1559731985;
        let made = server_cookie(&secrets.current, &client_cookie, client, now);
        let check = |secrets: &SecretPair, client_cookie: &[u8; 8], received: &[u8], from| {
            answer(secrets, client_cookie, received, from, now).check
        };
        assert_eq!(
            check(&secrets, &client_cookie, &made, ip("198.51.100.101")),
            ServerCookieCheck::Invalid
        );
        assert_eq!(
            check(&secrets, &client_cookie, &made, ip("::ffff:198.51.100.100")),
            ServerCookieCheck::Invalid
        );
        assert_eq!(
            check(&only([7; 16]), &client_cookie, &made, client),
            ServerCookieCheck::Invalid
        );
        assert_eq!(
            check(&secrets, &hex("2464c4abcf10c958"), &made, client),
            ServerCookieCheck::Invalid
        );
        let mut version_2 = made;
        version_2[0] = 2;
        assert_eq!(
            check(&secrets, &client_cookie, &version_2, client),
            ServerCookieCheck::Invalid
        );
        let mut flipped = made;
        flipped[15] ^= 1;
        assert_eq!(
            check(&secrets, &client_cookie, &flipped, client),
            ServerCookieCheck::Invalid
        );
        // Sizes a server may send but we never make, and the empty one.
        for length in [8, 15, 17, 24, 32] {
            let mut other = [0u8; 32];
            other[..length.min(16)].copy_from_slice(&made[..length.min(16)]);
            assert_eq!(
                check(&secrets, &client_cookie, &other[..length], client),
                ServerCookieCheck::Invalid,
                "{length} bytes"
            );
        }
        let fresh = answer(&secrets, &client_cookie, &[], client, now);
        assert_eq!(fresh.check, ServerCookieCheck::Absent);
        assert_eq!(fresh.server_cookie, made);
    }

    #[test]
    fn the_lifetime_is_an_hour_back_and_five_minutes_ahead_across_the_wrap() {
        let secrets = only(hex(SECRET_A));
        let client_cookie = hex("2464c4abcf10c957");
        let client = ip("192.0.2.1");
        for (made_at, now, valid) in [
            (1000u32, 1000u32, true),
            (1000, 1000 + 3600, true),
            (1000, 1000 + 3601, false),
            (1000 + 300, 1000, true),
            (1000 + 301, 1000, false),
            (u32::MAX - 100, 1000, true),
            (u32::MAX - 100, 4000, false),
        ] {
            let made = server_cookie(&secrets.current, &client_cookie, client, made_at);
            let answer = answer(&secrets, &client_cookie, &made, client, now);
            assert_eq!(
                answer.check == ServerCookieCheck::Valid,
                valid,
                "made at {made_at}, checked at {now}"
            );
            // Past half an hour (or invalid) the reply carries a new one.
            let echoed = answer.server_cookie == made;
            assert_eq!(echoed, valid && age_s(made_at, now) <= 1800);
        }
    }

    /// A.4: after a rotation the cookie made with the old secret still
    /// validates, and the reply carries one made with the new secret.
    #[test]
    fn the_previous_secret_validates_after_a_rotation() {
        let shared = CookieSecrets::new(only(hex("dd3bdf9344b678b185a6f5cb60fca715")));
        shared.rotate_to(hex("445536bcd2513298075a5d379663c962"));
        let client_cookie = hex("22681ab97d52c298");
        let client = ip("2001:db8:220:1:59de:d0f4:8769:82b8");
        let received: [u8; 16] = hex("010000005cf7c57926556bd0934c72f8");
        let answer = answer(
            &shared.load(),
            &client_cookie,
            &received,
            client,
            1559741961,
        );
        assert_eq!(answer.check, ServerCookieCheck::Valid);
        assert_eq!(
            answer.server_cookie,
            hex("010000005cf7c609a6bb79d16625507a")
        );
        // One more rotation and the oldest secret is gone.
        shared.rotate_to([9; 16]);
        let again = super::answer(
            &shared.load(),
            &client_cookie,
            &received,
            client,
            1559741961,
        );
        assert_eq!(again.check, ServerCookieCheck::Invalid);
    }

    #[test]
    fn readers_see_whole_pairs_while_the_writer_rotates() {
        let shared = Arc::new(CookieSecrets::new(only([0; 16])));
        let writer = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                for round in 1..=20_000u32 {
                    let byte = (round % 251) as u8;
                    shared.store(SecretPair {
                        current: [byte; 16],
                        previous: [byte; 16],
                    });
                    // Rotations are rare; back to back they would starve
                    // readers past their retries, which is not the case here.
                    std::thread::yield_now();
                }
            })
        };
        let mut torn = 0;
        let mut reads = 0;
        while !writer.is_finished() || reads < 1000 {
            let pair = shared.load();
            reads += 1;
            let first = pair.current[0];
            // With the bounded retries a torn read is possible in theory;
            // count it, and require it to be rare rather than impossible.
            torn += usize::from(
                pair.current
                    .iter()
                    .chain(&pair.previous)
                    .any(|&byte| byte != first),
            );
        }
        writer.join().unwrap();
        assert!(torn * 100 <= reads, "{torn} torn reads of {reads}");
        assert_eq!(shared.load().current, [(20_000u32 % 251) as u8; 16]);
    }

    #[test]
    fn period_secrets_are_stable_and_differ_per_period() {
        let configured = hex(SECRET_A);
        assert_eq!(period_secret(&configured, 7), period_secret(&configured, 7));
        assert_ne!(period_secret(&configured, 7), period_secret(&configured, 8));
        assert_ne!(period_secret(&configured, 7), period_secret(&[0; 16], 7));
    }

    #[test]
    fn start_uses_a_configured_secret_as_it_is_without_rotation() {
        let secret = hex(SECRET_A);
        let secrets = start(&CookieConfig {
            secret: Some(secret),
            rotate: None,
        })
        .unwrap();
        assert_eq!(secrets.load(), only(secret));
        let random = start(&CookieConfig {
            secret: None,
            rotate: None,
        })
        .unwrap();
        assert_ne!(random.load().current, [0; 16]);
        assert_ne!(random.load().current, secret);
    }

    #[test]
    fn the_clock_reads_unix_time() {
        let system = unix_time_s() as u32;
        assert!(now_s().abs_diff(system) <= 1);
    }
}
