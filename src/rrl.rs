//! Response rate limiting (RRL, as Knot's mod-rrl and BIND's rate-limit):
//! per client network and kind of response, a token bucket; answers over
//! the rate are dropped, and every `slip`-th of those is sent truncated
//! instead so a real client behind a spoofed network retries over TCP.
//!
//! Each worker owns its own `RateLimiter`: no locks, no shared cache lines.
//! A busy prefix hashes to one bucket per worker, so the configured rate
//! applies per worker (SO_REUSEPORT keeps one client address on one
//! worker); the table is fixed-size and a colliding key takes the bucket.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// What kind of response a bucket counts (each has its own rate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseKind {
    Positive = 0,
    NoData = 1,
    NxDomain = 2,
    Referral = 3,
    Error = 4,
}

impl ResponseKind {
    /// Classifies a reply by its header.
    pub fn of(reply: &[u8]) -> ResponseKind {
        let Some(header) = reply.get(..12) else {
            return ResponseKind::Error;
        };
        let authoritative = header[2] & 0x04 != 0;
        let answers = u16::from_be_bytes([header[6], header[7]]);
        match header[3] & 0x0F {
            0 if answers > 0 => ResponseKind::Positive,
            0 if authoritative => ResponseKind::NoData,
            0 => ResponseKind::Referral,
            3 => ResponseKind::NxDomain,
            _ => ResponseKind::Error,
        }
    }
}

/// The limits (CoreDNS rrl plugin names; 0 means unlimited).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrlConfig {
    /// Per second, by `ResponseKind` order.
    pub rates: [u32; 5],
    /// Every N-th limited response is sent truncated (0: never).
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// Buckets per worker (rounded up to a power of two).
    pub table_size: usize,
    /// Networks never limited.
    pub exempt: Vec<(IpAddr, u8)>,
    /// Count what would be limited, but answer everything.
    pub report_only: bool,
}

impl Default for RrlConfig {
    fn default() -> Self {
        RrlConfig {
            rates: [0; 5],
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            table_size: 65536,
            exempt: Vec::new(),
            report_only: false,
        }
    }
}

/// What to do with a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send a truncated reply (TC, no records) instead.
    Slip,
    Drop,
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    key: u64,
    tokens: u32,
    second: u32,
    limited: u32,
}

pub struct RateLimiter {
    config: RrlConfig,
    buckets: Box<[Bucket]>,
    started: Instant,
    /// Responses limited (dropped or slipped), for metrics.
    pub limited_total: u64,
}

/// The client's network: the address with only the prefix's bits kept.
fn network(address: IpAddr, ipv4_prefix: u8, ipv6_prefix: u8) -> u128 {
    match address {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX
                .checked_shl(32 - u32::from(ipv4_prefix.min(32)))
                .unwrap_or(0);
            u128::from(bits & mask) | (1 << 127)
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX
                .checked_shl(128 - u32::from(ipv6_prefix.min(128)))
                .unwrap_or(0);
            bits & mask
        }
    }
}

pub fn within(address: IpAddr, (network_address, prefix): (IpAddr, u8)) -> bool {
    match (address, network_address) {
        (IpAddr::V4(_), IpAddr::V4(_)) => {
            network(address, prefix, 0) == network(network_address, prefix, 0)
        }
        (IpAddr::V6(_), IpAddr::V6(_)) => {
            network(address, 0, prefix) == network(network_address, 0, prefix)
        }
        _ => false,
    }
}

impl RateLimiter {
    pub fn new(config: RrlConfig) -> Self {
        let size = config.table_size.clamp(1024, 1 << 24).next_power_of_two();
        RateLimiter {
            config,
            buckets: vec![Bucket::default(); size].into_boxed_slice(),
            started: Instant::now(),
            limited_total: 0,
        }
    }

    /// Decides for one response of `kind` about `name` (lowercased wire
    /// form; NXDOMAIN, referral and error responses are keyed by the last
    /// two labels so random names do not spread over many buckets) to `peer`.
    pub fn check(&mut self, peer: SocketAddr, kind: ResponseKind, name: &[u8]) -> Verdict {
        let rate = self.config.rates[kind as usize];
        if rate == 0
            || self
                .config
                .exempt
                .iter()
                .any(|&exempt| within(peer.ip(), exempt))
        {
            return Verdict::Send;
        }
        let keyed_name = match kind {
            ResponseKind::Positive | ResponseKind::NoData => name,
            _ => last_labels(name, 2),
        };
        let key = bucket_key(
            network(peer.ip(), self.config.ipv4_prefix, self.config.ipv6_prefix),
            kind,
            keyed_name,
        );
        let now = self.started.elapsed().as_secs() as u32;
        let mask = self.buckets.len() - 1;
        let bucket = &mut self.buckets[(key as usize) & mask];
        if bucket.key != key {
            *bucket = Bucket {
                key,
                tokens: rate,
                second: now,
                limited: 0,
            };
        } else if now != bucket.second {
            // A whole second's allowance at most: no burst beyond the rate.
            let refill = u64::from(now.wrapping_sub(bucket.second)) * u64::from(rate);
            bucket.tokens = (u64::from(bucket.tokens) + refill).min(u64::from(rate)) as u32;
            bucket.second = now;
        }
        if bucket.tokens > 0 {
            bucket.tokens -= 1;
            return Verdict::Send;
        }
        self.limited_total += 1;
        if self.config.report_only {
            return Verdict::Send;
        }
        bucket.limited = bucket.limited.wrapping_add(1);
        if self.config.slip > 0 && bucket.limited.is_multiple_of(self.config.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

/// The last `count` labels of a wire name.
fn last_labels(name: &[u8], count: usize) -> &[u8] {
    let total = crate::wire::name::label_count(name);
    let mut current = name;
    for _ in 0..total.saturating_sub(count) {
        match crate::wire::name::parent(current) {
            Some(up) => current = up,
            None => break,
        }
    }
    current
}

fn bucket_key(network: u128, kind: ResponseKind, name: &[u8]) -> u64 {
    // FNV-1a: small, fast, no allocation; an attacker colliding buckets
    // only limits himself harder.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |byte: u8| {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    };
    network.to_le_bytes().into_iter().for_each(&mut feed);
    feed(kind as u8);
    name.iter().copied().for_each(&mut feed);
    hash | 1 // never 0, the empty bucket's key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, slip: u32) -> RateLimiter {
        RateLimiter::new(RrlConfig {
            rates: [rate; 5],
            slip,
            ..RrlConfig::default()
        })
    }

    #[test]
    fn limits_a_network_not_its_neighbours() {
        let mut rrl = limiter(5, 0);
        let name = b"\x03www\x07example\x00";
        let sent = (0..50)
            .filter(|i| {
                rrl.check(
                    format!("192.0.2.{}:53", i % 200).parse().unwrap(),
                    ResponseKind::Positive,
                    name,
                ) == Verdict::Send
            })
            .count();
        assert_eq!(sent, 5, "one /24 shares one bucket");
        assert_eq!(
            rrl.check(
                "198.51.100.1:53".parse().unwrap(),
                ResponseKind::Positive,
                name
            ),
            Verdict::Send
        );
        assert_eq!(rrl.limited_total, 45);
    }

    #[test]
    fn slips_every_nth_and_exempts() {
        let mut rrl = limiter(1, 2);
        let peer: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..5)
            .map(|_| rrl.check(peer, ResponseKind::NxDomain, b"\x01a\x07example\x03com\x00"))
            .collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Send,
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip
            ]
        );
        // NXDOMAIN for another random name in the zone shares the bucket.
        assert_ne!(
            rrl.check(
                peer,
                ResponseKind::NxDomain,
                b"\x05zzzzz\x07example\x03com\x00"
            ),
            Verdict::Send
        );
        let mut exempt = RateLimiter::new(RrlConfig {
            rates: [1; 5],
            exempt: vec![("192.0.2.0".parse().unwrap(), 24)],
            ..RrlConfig::default()
        });
        assert!(
            (0..10).all(|_| exempt.check(peer, ResponseKind::Positive, b"\x00") == Verdict::Send)
        );
    }

    #[test]
    fn classifies_replies() {
        let header = |flags: u8, rcode: u8, answers: u8| {
            let mut header = [0u8; 12];
            header[2] = flags;
            header[3] = rcode;
            header[7] = answers;
            header
        };
        assert_eq!(
            ResponseKind::of(&header(0x84, 0, 1)),
            ResponseKind::Positive
        );
        assert_eq!(ResponseKind::of(&header(0x84, 0, 0)), ResponseKind::NoData);
        assert_eq!(
            ResponseKind::of(&header(0x80, 0, 0)),
            ResponseKind::Referral
        );
        assert_eq!(
            ResponseKind::of(&header(0x84, 3, 0)),
            ResponseKind::NxDomain
        );
        assert_eq!(ResponseKind::of(&header(0x80, 5, 0)), ResponseKind::Error);
    }
}
