//! Presentation-format RDATA for the record types the `domain` scanner does
//! not read (LOC, URI, SPF, SMIMEA, EUI48, EUI64). Each is turned into the
//! generic RFC 3597 form `TYPEnnn \# len hex`, which it does read, so all
//! other scanning stays in one place.

use super::text::{Entry, type_token_index};

/// Returns the entry rewritten in RFC 3597 form when its type needs it,
/// `Ok(None)` when the `domain` scanner handles the type itself.
pub fn rewrite(entry: &Entry) -> Result<Option<String>, String> {
    let Some(type_index) = type_token_index(entry) else {
        return Ok(None);
    };
    let rtype = entry.tokens[type_index].to_ascii_uppercase();
    let rdata = &entry.tokens[type_index + 1..];
    let (number, wire) = match rtype.as_str() {
        "LOC" => (29, loc(rdata)?),
        "URI" => (256, uri(rdata)?),
        "SPF" => (99, character_strings(rdata)?),
        "SMIMEA" => (53, cert_association(rdata)?),
        "EUI48" => (108, eui(rdata, 6)?),
        "EUI64" => (109, eui(rdata, 8)?),
        _ => return Ok(None),
    };
    let mut line = String::new();
    if entry.starts_with_blank {
        line.push(' ');
    }
    for token in &entry.tokens[..type_index] {
        line.push_str(token);
        line.push(' ');
    }
    line.push_str(&format!("TYPE{number} \\# {}", wire.len()));
    if !wire.is_empty() {
        line.push(' ');
        for byte in &wire {
            line.push_str(&format!("{byte:02x}"));
        }
    }
    Ok(Some(line))
}

/// LOC (RFC 1876 §3): `d1 [m1 [s1]] {N|S} d2 [m2 [s2]] {E|W} alt[m]
/// [siz[m] [hp[m] [vp[m]]]]`.
fn loc(tokens: &[&str]) -> Result<Vec<u8>, String> {
    let usage = "expected LOC d1 [m1 [s1]] N|S d2 [m2 [s2]] E|W alt[m] [size[m] [hp[m] [vp[m]]]]";
    let mut rest = tokens.iter().copied();
    let latitude = angle(&mut rest, ('N', 'S'), 90).ok_or(usage)?;
    let longitude = angle(&mut rest, ('E', 'W'), 180).ok_or(usage)?;
    let altitude_cm = metres_to_cm(rest.next().ok_or(usage)?).ok_or(usage)?;
    let altitude =
        u32::try_from(altitude_cm + 10_000_000).map_err(|_| "LOC altitude out of range")?;
    let mut precision = [100u64, 1_000_000, 1000]; // size 1m, horizontal 10km, vertical 10m
    for slot in precision.iter_mut() {
        if let Some(token) = rest.next() {
            let value = metres_to_cm(token).filter(|v| *v >= 0).ok_or(usage)?;
            *slot = value as u64;
        }
    }
    if rest.next().is_some() {
        return Err(usage.to_string());
    }
    let mut wire = vec![0u8];
    for value in precision {
        wire.push(loc_precision(value).ok_or("LOC precision out of range")?);
    }
    wire.extend_from_slice(&latitude.to_be_bytes());
    wire.extend_from_slice(&longitude.to_be_bytes());
    wire.extend_from_slice(&altitude.to_be_bytes());
    Ok(wire)
}

/// Degrees, optional minutes and seconds, then a hemisphere letter, as
/// thousandths of a second of arc offset by 2^31.
fn angle<'a>(
    tokens: &mut impl Iterator<Item = &'a str>,
    hemispheres: (char, char),
    degrees_max: u64,
) -> Option<u32> {
    let mut parts: Vec<&str> = Vec::new();
    loop {
        let token = tokens.next()?;
        let upper = token.to_ascii_uppercase();
        if upper.len() == 1
            && (upper.starts_with(hemispheres.0) || upper.starts_with(hemispheres.1))
        {
            let degrees: u64 = parts.first()?.parse().ok()?;
            let minutes: u64 = parts.get(1).map_or(Some(0), |m| m.parse().ok())?;
            let milliseconds = match parts.get(2) {
                Some(seconds) => decimal_thousandths(seconds)?,
                None => 0,
            };
            if degrees > degrees_max || minutes >= 60 || milliseconds >= 60_000 || parts.len() > 3 {
                return None;
            }
            let total = ((degrees * 60 + minutes) * 60_000 + milliseconds) as i64;
            let signed = if upper.starts_with(hemispheres.0) {
                total
            } else {
                -total
            };
            return u32::try_from((1i64 << 31) + signed).ok();
        }
        parts.push(token);
    }
}

/// "12.345" → 12345 (three decimals at most).
fn decimal_thousandths(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let fraction: u64 = format!("{fraction:0<3}").parse().ok()?;
    Some(whole * 1000 + fraction)
}

/// "-2.5m" → -250 centimetres.
fn metres_to_cm(text: &str) -> Option<i64> {
    let text = text.strip_suffix(['m', 'M']).unwrap_or(text);
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if fraction.len() > 2 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let centimetres =
        whole.parse::<i64>().ok()? * 100 + format!("{fraction:0<2}").parse::<i64>().ok()?;
    Some(if negative { -centimetres } else { centimetres })
}

/// RFC 1876 size/precision encoding: mantissa (high nibble) × 10^exponent cm.
fn loc_precision(mut centimetres: u64) -> Option<u8> {
    let mut exponent = 0u8;
    while centimetres > 9 {
        centimetres /= 10;
        exponent += 1;
    }
    (exponent <= 9).then_some(((centimetres as u8) << 4) | exponent)
}

/// URI (RFC 7553): priority, weight, and the target as one quoted string
/// stored without a length byte.
fn uri(tokens: &[&str]) -> Result<Vec<u8>, String> {
    let usage = "expected URI priority weight \"target\"";
    let [priority, weight, target] = tokens else {
        return Err(usage.to_string());
    };
    let mut wire = Vec::new();
    wire.extend_from_slice(&priority.parse::<u16>().map_err(|_| usage)?.to_be_bytes());
    wire.extend_from_slice(&weight.parse::<u16>().map_err(|_| usage)?.to_be_bytes());
    let target = unescape(target).ok_or(usage)?;
    if target.is_empty() {
        return Err("URI target must not be empty".to_string());
    }
    wire.extend_from_slice(&target);
    Ok(wire)
}

/// TXT-style RDATA: one or more character-strings of at most 255 bytes.
fn character_strings(tokens: &[&str]) -> Result<Vec<u8>, String> {
    if tokens.is_empty() {
        return Err("expected one or more character-strings".to_string());
    }
    let mut wire = Vec::new();
    for token in tokens {
        let bytes = unescape(token).ok_or_else(|| format!("bad escape in {token}"))?;
        let length = u8::try_from(bytes.len())
            .map_err(|_| format!("character-string longer than 255 bytes: {token}"))?;
        wire.push(length);
        wire.extend_from_slice(&bytes);
    }
    Ok(wire)
}

/// SMIMEA (RFC 8162), laid out like TLSA: usage, selector, matching type,
/// then hex that may be split over several tokens.
fn cert_association(tokens: &[&str]) -> Result<Vec<u8>, String> {
    let usage = "expected usage selector matching-type hex";
    if tokens.len() < 4 {
        return Err(usage.to_string());
    }
    let mut wire = Vec::new();
    for token in &tokens[..3] {
        wire.push(token.parse::<u8>().map_err(|_| usage)?);
    }
    wire.extend(hex(&tokens[3..].concat()).ok_or(usage)?);
    Ok(wire)
}

/// EUI48/EUI64 (RFC 7043): hex pairs separated by hyphens.
fn eui(tokens: &[&str], length: usize) -> Result<Vec<u8>, String> {
    let usage = format!("expected {length} hex pairs separated by '-'");
    let [text] = tokens else {
        return Err(usage);
    };
    let pairs: Vec<&str> = text.split('-').collect();
    if pairs.len() != length || pairs.iter().any(|pair| pair.len() != 2) {
        return Err(usage);
    }
    hex(&pairs.concat()).ok_or(usage)
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Removes surrounding quotes and resolves `\X` and `\DDD` escapes.
fn unescape(token: &str) -> Option<Vec<u8>> {
    let inner = token
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(token);
    let bytes = inner.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' {
            let rest = bytes.get(index + 1..)?;
            if rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit) {
                let value: u16 = std::str::from_utf8(&rest[..3]).ok()?.parse().ok()?;
                out.push(u8::try_from(value).ok()?);
                index += 4;
            } else {
                out.push(*rest.first()?);
                index += 2;
            }
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::text::split_entries;
    use super::*;

    fn rewritten(line: &str) -> String {
        rewrite(&split_entries(line)[0]).unwrap().unwrap()
    }

    #[test]
    fn loc_matches_rfc_1876_example() {
        // The RFC's example for cambridge-net.kei.com, as dig prints its wire form.
        let line = rewritten("a 300 IN LOC 42 21 54 N 71 06 18 W -24m 30m\n");
        assert_eq!(
            line,
            "a 300 IN TYPE29 \\# 16 0033161389172dd070be15f000988d20"
        );
        let line = rewritten(" LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m\n");
        assert_eq!(line, " TYPE29 \\# 16 000016138b3cf018810cbce0009895b8");
    }

    #[test]
    fn uri_spf_eui_smimea() {
        assert_eq!(
            rewritten("u URI 10 1 \"ftp://a/\"\n"),
            "u TYPE256 \\# 12 000a00016674703a2f2f612f"
        );
        assert_eq!(
            rewritten("s SPF \"v=spf1\" \"-all\"\n"),
            "s TYPE99 \\# 12 06763d73706631042d616c6c"
        );
        assert_eq!(
            rewritten("e EUI48 00-00-5e-00-53-2a\n"),
            "e TYPE108 \\# 6 00005e00532a"
        );
        assert_eq!(
            rewritten("m SMIMEA 3 1 1 01 02\n"),
            "m TYPE53 \\# 5 0301010102"
        );
        assert!(rewrite(&split_entries("e EUI48 00-00\n")[0]).is_err());
        assert!(rewrite(&split_entries("l LOC 91 N 1 E 0m\n")[0]).is_err());
        assert_eq!(rewrite(&split_entries("a A 1.2.3.4\n")[0]).unwrap(), None);
    }
}
