//! Scanners for the value words of a Corefile: zone names, server keys,
//! durations, sizes, counts, CPU lists and addresses.
//!
//! Each returns a message that says what was expected and what was given;
//! the caller adds the file, line and directive.

use std::net::IpAddr;
use std::time::Duration;

use super::ServerKey;

/// The port a server key gets when it names none.
pub(super) const DNS_PORT: u16 = 53;

/// Longest zone name in text form without the final dot (255 octets on the
/// wire, RFC 1035 section 2.3.4).
const ZONE_NAME_CHARS_MAX: usize = 253;
const LABEL_CHARS_MAX: usize = 63;

/// `[dns://]zone[:port]`; an empty zone (`:53`, `dns://:53`) is the root,
/// as in CoreDNS.
pub(super) fn server_key(text: &str) -> Result<ServerKey, String> {
    let lower = text.to_ascii_lowercase();
    let rest = match lower.find("://") {
        Some(i) if &lower[..i] == "dns" => &lower[i + 3..],
        Some(i) => {
            return Err(format!(
                "scheme '{}://' is not supported by ringdns; expected 'dns://' or no scheme",
                &lower[..i]
            ));
        }
        None => lower.as_str(),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, port_number(port)?),
        None => (rest, DNS_PORT),
    };
    let zone = if host.is_empty() {
        ".".to_string()
    } else {
        zone_name(host)?
    };
    Ok(ServerKey { zone, port })
}

fn port_number(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!(
            "expected a port number 1-65535 after ':', got '{text}'"
        )),
    }
}

/// A zone name normalised to lowercase with a trailing dot (`.` is the
/// root). Labels are letters, digits, `-` and `_`: the names a server block
/// or `file` directive can sensibly serve.
pub(super) fn zone_name(text: &str) -> Result<String, String> {
    if text == "." {
        return Ok(".".to_string());
    }
    let expected =
        |why: &str| format!("expected a zone name like 'example.org', got '{text}' ({why})");
    if text.contains('/') {
        return Err(expected(
            "CIDR reverse zones are not supported; write the in-addr.arpa or ip6.arpa name",
        ));
    }
    let lower = text.to_ascii_lowercase();
    let relative = lower.strip_suffix('.').unwrap_or(&lower);
    if relative.len() > ZONE_NAME_CHARS_MAX {
        return Err(expected("longer than 253 characters"));
    }
    for label in relative.split('.') {
        if label.is_empty() {
            return Err(expected("empty label"));
        }
        if label.len() > LABEL_CHARS_MAX {
            return Err(expected("label longer than 63 characters"));
        }
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if !label.chars().all(valid) {
            return Err(expected("only letters, digits, '-' and '_' are allowed"));
        }
    }
    Ok(format!("{relative}."))
}

/// True when `name` is `zone` or below it (both normalised).
pub(super) fn is_within(name: &str, zone: &str) -> bool {
    zone == "." || name == zone || name.ends_with(&format!(".{zone}"))
}

/// A Go duration (`30s`, `1m`, `1h30m`, `1.5h`, `500ms`, or `0`).
pub(super) fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration like 30s, 1m, 1h30m or 500ms, got '{text}'");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(bad());
    }
    if text.starts_with('-') {
        return Err(format!(
            "expected a duration that is not negative, got '{text}'"
        ));
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let whole = &rest[..whole_len];
        rest = &rest[whole_len..];
        let mut fraction = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            fraction = &after_dot[..len];
            rest = &after_dot[len..];
        }
        if whole.is_empty() && fraction.is_empty() {
            return Err(bad());
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => {
                return Err(format!(
                    "expected a unit (ns, us, ms, s, m, h) after the number in '{text}'"
                ));
            }
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        // Extra fraction digits below a nanosecond change nothing.
        let fraction = &fraction[..fraction.len().min(18)];
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let fraction_ns = if fraction.is_empty() {
            0
        } else {
            let digits: u128 = fraction.parse().map_err(|_| bad())?;
            digits * unit_ns / 10u128.pow(fraction.len() as u32)
        };
        total_ns = whole
            .checked_mul(unit_ns)
            .and_then(|ns| ns.checked_add(fraction_ns))
            .and_then(|ns| ns.checked_add(total_ns))
            .ok_or_else(bad)?;
    }
    let total_ns = u64::try_from(total_ns)
        .map_err(|_| format!("expected a duration under 584 years, got '{text}'"))?;
    Ok(Duration::from_nanos(total_ns))
}

/// A whole number in `min..=max`; `what` names it in the message.
pub(super) fn count(text: &str, min: usize, max: usize, what: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected {what} from {min} to {max}, got '{text}'")),
    }
}

/// A byte count with an optional binary suffix: `212992`, `512K`, `4M`,
/// `1G` (case does not matter). Bounded by what `setsockopt` takes (an int).
pub(super) fn size_bytes(text: &str) -> Result<usize, String> {
    const SIZE_BYTES_MAX: u64 = i32::MAX as u64;
    let bad = || {
        format!(
            "expected a size in bytes like 212992, 512K or 4M (at most {SIZE_BYTES_MAX}), got '{text}'"
        )
    };
    let digits_len = text.bytes().take_while(u8::is_ascii_digit).count();
    let (digits, suffix) = text.split_at(digits_len);
    let multiplier: u64 = match suffix.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(bad()),
    };
    let number: u64 = digits.parse().map_err(|_| bad())?;
    match number.checked_mul(multiplier) {
        Some(bytes) if (1..=SIZE_BYTES_MAX).contains(&bytes) => {
            usize::try_from(bytes).map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

/// The highest CPU index `cpus` accepts: the size of the kernel CPU mask
/// glibc's `cpu_set_t` holds.
pub(super) const CPU_INDEX_MAX: usize = 1023;

/// A CPU list like `0-3,6`, in the order written, without repeats.
pub(super) fn cpu_list(text: &str) -> Result<Vec<usize>, String> {
    let bad = |why: String| format!("expected a CPU list like 0-3,6, got '{text}' ({why})");
    let mut cpus: Vec<usize> = Vec::new();
    for part in text.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (first, last),
            None => (part, part),
        };
        let index = |s: &str| match s.parse::<usize>() {
            Ok(n) if n <= CPU_INDEX_MAX => Ok(n),
            _ => Err(bad(format!("'{s}' is not a CPU number 0-{CPU_INDEX_MAX}"))),
        };
        let (first, last) = (index(first)?, index(last)?);
        if first > last {
            return Err(bad(format!("range '{part}' runs backwards")));
        }
        for cpu in first..=last {
            if cpus.contains(&cpu) {
                return Err(bad(format!("CPU {cpu} is listed twice")));
            }
            cpus.push(cpu);
        }
    }
    Ok(cpus)
}

/// A listen address as CoreDNS writes them: `:8080` (all IPv4
/// addresses), `localhost:9153`, `127.0.0.1:9153`, `[::1]:9153`.
pub(super) fn listen_address(text: &str) -> Result<std::net::SocketAddr, String> {
    let usage = || {
        format!("expected an address like ':8080', 'localhost:9153' or '[::1]:9153', got '{text}'")
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(usage)?;
    let port: u16 = port.parse().map_err(|_| usage())?;
    let ip: IpAddr = match host {
        "" => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        _ => ip_address(host).map_err(|_| usage())?,
    };
    Ok(std::net::SocketAddr::new(ip, port))
}

/// A peer's address `ADDR`, `ADDR:PORT` or `[V6ADDR]:PORT`; `port` when
/// none is written.
pub(super) fn peer_address(text: &str, port: u16) -> Result<std::net::SocketAddr, String> {
    let usage = || {
        format!(
            "expected an address like 192.0.2.1, 192.0.2.1:5300 or [2001:db8::1]:5300, got '{text}'"
        )
    };
    if let Ok(ip) = ip_address(text) {
        return Ok(std::net::SocketAddr::new(ip, port));
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(usage)?;
    let port: u16 = port.parse().map_err(|_| usage())?;
    let ip = ip_address(host).map_err(|_| usage())?;
    Ok(std::net::SocketAddr::new(ip, port))
}

/// A network `ADDR/PREFIX` (or one address, a full-length prefix).
pub(super) fn cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let usage = || format!("expected a network like 192.0.2.0/24 or 2001:db8::/32, got '{text}'");
    let (address, prefix) = text.split_once('/').unwrap_or((text, ""));
    let address = ip_address(address).map_err(|_| usage())?;
    let longest = if address.is_ipv4() { 32 } else { 128 };
    let prefix = if prefix.is_empty() {
        longest
    } else {
        prefix.parse::<u8>().map_err(|_| usage())?
    };
    if prefix > longest {
        return Err(usage());
    }
    Ok((address, prefix))
}

/// Exactly `N` bytes written as `2N` hex digits (either case).
pub(super) fn hex_bytes<const N: usize>(text: &str) -> Result<[u8; N], String> {
    let usage = || format!("expected {} hex digits ({N} bytes), got '{text}'", 2 * N);
    if text.len() != 2 * N || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(usage());
    }
    let mut bytes = [0u8; N];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16).map_err(|_| usage())?;
    }
    Ok(bytes)
}

/// An IPv4 or IPv6 address; `[::1]` is accepted as `::1`.
pub(super) fn ip_address(text: &str) -> Result<IpAddr, String> {
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    inner.parse().map_err(|_| {
        format!(
            "expected an IP address like 127.0.0.1 or ::1, got '{text}' (interface names are not supported)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(zone: &str, port: u16) -> ServerKey {
        ServerKey {
            zone: zone.to_string(),
            port,
        }
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(listen_address(":8080").unwrap().to_string(), "0.0.0.0:8080");
        assert_eq!(
            listen_address("localhost:9153").unwrap().to_string(),
            "127.0.0.1:9153"
        );
        assert_eq!(
            listen_address("[::1]:9153").unwrap().to_string(),
            "[::1]:9153"
        );
        assert!(listen_address("8080").is_err());
        assert!(listen_address("example.org:80").is_err());
    }

    #[test]
    fn server_keys_are_normalised() {
        assert_eq!(server_key("Example.ORG").unwrap(), key("example.org.", 53));
        assert_eq!(
            server_key("example.org.:5353").unwrap(),
            key("example.org.", 5353)
        );
        assert_eq!(
            server_key("dns://example.org:1053").unwrap(),
            key("example.org.", 1053)
        );
        assert_eq!(server_key("DNS://a.b").unwrap(), key("a.b.", 53));
        assert_eq!(server_key(".").unwrap(), key(".", 53));
        assert_eq!(server_key(".:1053").unwrap(), key(".", 1053));
        assert_eq!(server_key(":53").unwrap(), key(".", 53));
        assert_eq!(server_key("dns://.").unwrap(), key(".", 53));
    }

    #[test]
    fn other_schemes_are_not_supported() {
        for scheme in ["tls", "https", "grpc", "quic"] {
            let err = server_key(&format!("{scheme}://example.org")).unwrap_err();
            assert!(
                err.contains(&format!("scheme '{scheme}://' is not supported")),
                "{err}"
            );
        }
    }

    #[test]
    fn bad_ports_are_rejected() {
        for text in ["a.org:", "a.org:0", "a.org:65536", "a.org:x"] {
            let err = server_key(text).unwrap_err();
            assert!(err.contains("expected a port number 1-65535"), "{err}");
        }
    }

    #[test]
    fn bad_zone_names_are_rejected() {
        for text in [
            "a..org",
            "a.org..",
            "a b",
            "10.0.0.0/8",
            "a@b",
            &"x".repeat(64),
        ] {
            let err = zone_name(text).unwrap_err();
            assert!(err.contains("expected a zone name"), "{err}");
        }
        assert!(
            zone_name("10.0.0.0/8")
                .unwrap_err()
                .contains("in-addr.arpa")
        );
        assert_eq!(
            zone_name("0.10.In-Addr.Arpa.").unwrap(),
            "0.10.in-addr.arpa."
        );
        assert_eq!(zone_name("_tcp.a-b.org").unwrap(), "_tcp.a-b.org.");
    }

    #[test]
    fn zone_containment() {
        assert!(is_within("a.org.", "a.org."));
        assert!(is_within("x.a.org.", "a.org."));
        assert!(!is_within("xa.org.", "a.org."));
        assert!(is_within("anything.", "."));
        assert!(!is_within("a.org.", "x.a.org."));
    }

    #[test]
    fn go_durations() {
        let ok = |text| duration(text).unwrap();
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("1m"), Duration::from_secs(60));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("2us"), Duration::from_micros(2));
        assert_eq!(ok("3µs"), Duration::from_micros(3));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("+1s"), Duration::from_secs(1));
    }

    #[test]
    fn bad_durations() {
        for text in ["", "5", "1x", "s", "1h30", "1..5s", "abc", "1s-2s"] {
            assert!(duration(text).unwrap_err().contains("expected"), "{text}");
        }
        assert!(duration("-1s").unwrap_err().contains("not negative"));
        assert!(duration("30").unwrap_err().contains("expected a unit"));
        assert!(duration("99999999999999999999h").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size_bytes("212992").unwrap(), 212992);
        assert_eq!(size_bytes("512K").unwrap(), 512 * 1024);
        assert_eq!(size_bytes("4m").unwrap(), 4 << 20);
        assert_eq!(size_bytes("1G").unwrap(), 1 << 30);
        for text in ["", "0", "K", "4MB", "-1", "3G", "1.5M"] {
            assert!(
                size_bytes(text).unwrap_err().contains("expected a size"),
                "{text}"
            );
        }
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list("0-3,6").unwrap(), vec![0, 1, 2, 3, 6]);
        assert_eq!(cpu_list("5,1").unwrap(), vec![5, 1]);
        assert!(cpu_list("3-1").unwrap_err().contains("backwards"));
        assert!(cpu_list("1,1").unwrap_err().contains("listed twice"));
        assert!(cpu_list("0-").unwrap_err().contains("expected a CPU list"));
        assert!(cpu_list("1024").unwrap_err().contains("0-1023"));
        assert!(cpu_list("").is_err());
    }

    #[test]
    fn ip_addresses() {
        assert_eq!(ip_address("127.0.0.1").unwrap().to_string(), "127.0.0.1");
        assert_eq!(ip_address("::1").unwrap().to_string(), "::1");
        assert_eq!(ip_address("[::1]").unwrap().to_string(), "::1");
        assert!(
            ip_address("eth0")
                .unwrap_err()
                .contains("expected an IP address")
        );
        assert!(ip_address("[::1").is_err());
    }

    #[test]
    fn counts() {
        assert_eq!(count("4", 1, 8, "a worker count").unwrap(), 4);
        let err = count("0", 1, 8, "a worker count").unwrap_err();
        assert_eq!(err, "expected a worker count from 1 to 8, got '0'");
    }
}
