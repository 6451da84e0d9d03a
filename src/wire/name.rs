//! Domain names in wire format (RFC 1035 §3.1): a sequence of length-prefixed
//! labels ending in the zero-length root label, never compressed here.
//!
//! Names are kept as plain byte slices so the fast path can hash and compare
//! them without conversion. Keys of the answer table are lowercased (ASCII
//! only, RFC 4343); the bytes a client sent are echoed unchanged.

/// Longest name in wire format (RFC 1035 §2.3.4).
pub const NAME_LEN_MAX: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
pub const LABEL_LEN_MAX: usize = 63;

/// Returns the name one label up (`www.example.` → `example.`), or `None`
/// for the root. `name` must be a valid wire name.
pub fn parent(name: &[u8]) -> Option<&[u8]> {
    let first = *name.first()? as usize;
    if first == 0 {
        return None;
    }
    name.get(first + 1..)
}

/// True when `name` equals `ancestor` or lies below it (case-insensitive).
pub fn is_within(name: &[u8], ancestor: &[u8]) -> bool {
    let mut current = name;
    loop {
        if current.len() == ancestor.len() && current.eq_ignore_ascii_case(ancestor) {
            return true;
        }
        match parent(current) {
            Some(up) if up.len() >= ancestor.len() => current = up,
            _ => return false,
        }
    }
}

/// Number of labels, not counting the root label.
pub fn label_count(name: &[u8]) -> usize {
    let mut count = 0;
    let mut current = name;
    while let Some(up) = parent(current) {
        count += 1;
        current = up;
    }
    count
}

/// Lowercased copy of a wire name.
pub fn to_lowercase(name: &[u8]) -> Vec<u8> {
    name.to_ascii_lowercase()
}

/// Presentation format (`www.example.com.`), escaping as RFC 1035 §5.1
/// requires. For logs and error messages only.
pub fn to_text(name: &[u8]) -> String {
    let mut text = String::new();
    let mut current = name;
    while let Some(up) = parent(current) {
        let label = &current[1..1 + current[0] as usize];
        for &byte in label {
            match byte {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    text.push('\\');
                    text.push(byte as char);
                }
                0x21..=0x7e => text.push(byte as char),
                _ => text.push_str(&format!("\\{byte:03}")),
            }
        }
        text.push('.');
        current = up;
    }
    if text.is_empty() {
        text.push('.');
    }
    text
}

/// Parses presentation format (`www.example.com` or `www.example.com.`,
/// always taken as absolute) into a lowercased wire name. Handles `\.` and
/// `\DDD` escapes. For configuration and tests, not for zone files.
pub fn from_text(text: &str) -> Option<Vec<u8>> {
    let mut wire = Vec::with_capacity(text.len() + 2);
    if text == "." {
        return Some(vec![0]);
    }
    let bytes = text.as_bytes();
    let mut label: Vec<u8> = Vec::new();
    let mut index = 0;
    let flush = |label: &mut Vec<u8>, wire: &mut Vec<u8>| -> Option<()> {
        if label.is_empty() || label.len() > LABEL_LEN_MAX {
            return None;
        }
        wire.push(label.len() as u8);
        wire.extend(label.iter().map(u8::to_ascii_lowercase));
        label.clear();
        Some(())
    };
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => {
                let rest = &bytes[index + 1..];
                if rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit) {
                    let value: u32 = std::str::from_utf8(&rest[..3]).ok()?.parse().ok()?;
                    label.push(u8::try_from(value).ok()?);
                    index += 4;
                } else {
                    label.push(*rest.first()?);
                    index += 2;
                }
            }
            b'.' => {
                flush(&mut label, &mut wire)?;
                index += 1;
            }
            other => {
                label.push(other);
                index += 1;
            }
        }
    }
    if !label.is_empty() {
        flush(&mut label, &mut wire)?;
    }
    wire.push(0);
    (wire.len() <= NAME_LEN_MAX).then_some(wire)
}

/// Reads an uncompressed or compressed name at `start` in `message` and
/// appends its labels (uncompressed) to `out`. Returns the offset just past
/// the name's bytes at `start`. Used for names inside received messages on
/// the slow path and in tests; the fast path parses the question itself.
pub fn read_compressed(message: &[u8], start: usize, out: &mut Vec<u8>) -> Option<usize> {
    let mut position = start;
    let mut end_of_name: Option<usize> = None;
    // Each pointer must go strictly backwards, so loops cannot occur; the
    // jump bound is a second guard.
    let mut jumps = 0;
    let mut lowest_pointer_target = start;
    loop {
        let length = *message.get(position)? as usize;
        match length & 0xC0 {
            0x00 => {
                if length == 0 {
                    out.push(0);
                    if out.len() > NAME_LEN_MAX {
                        return None;
                    }
                    return Some(end_of_name.unwrap_or(position + 1));
                }
                let label = message.get(position + 1..position + 1 + length)?;
                out.push(length as u8);
                out.extend_from_slice(label);
                if out.len() > NAME_LEN_MAX {
                    return None;
                }
                position += 1 + length;
            }
            0xC0 => {
                let low = *message.get(position + 1)? as usize;
                let target = ((length & 0x3F) << 8) | low;
                if target >= lowest_pointer_target || jumps > 127 {
                    return None;
                }
                end_of_name.get_or_insert(position + 2);
                lowest_pointer_target = target;
                position = target;
                jumps += 1;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let name = from_text("WWW.Example.COM").unwrap();
        assert_eq!(name, b"\x03www\x07example\x03com\x00");
        assert_eq!(to_text(&name), "www.example.com.");
        assert_eq!(from_text(".").unwrap(), vec![0]);
        assert_eq!(to_text(&[0]), ".");
        assert_eq!(from_text("a\\.b.c").unwrap(), b"\x03a.b\x01c\x00");
        assert_eq!(to_text(b"\x03a.b\x01c\x00"), "a\\.b.c.");
        assert!(from_text("a..b").is_none());
        assert!(from_text(&"x".repeat(64)).is_none());
    }

    #[test]
    fn parent_and_within() {
        let name = from_text("a.b.c").unwrap();
        assert_eq!(parent(&name).unwrap(), b"\x01b\x01c\x00");
        assert_eq!(parent(&[0]), None);
        assert!(is_within(&name, &from_text("B.C").unwrap()));
        assert!(is_within(&name, &[0]));
        assert!(!is_within(&name, &from_text("x.c").unwrap()));
        assert!(!is_within(&from_text("c").unwrap(), &name));
        assert_eq!(label_count(&name), 3);
    }

    #[test]
    fn compressed_names_and_loops() {
        // "a.b." at 0, then "c" + pointer to 2 ("b.") at 5.
        let message = b"\x01a\x01b\x00\x01c\xC0\x02";
        let mut out = Vec::new();
        assert_eq!(read_compressed(message, 5, &mut out), Some(9));
        assert_eq!(out, b"\x01c\x01b\x00");
        // A pointer to itself, and a forward pointer, are rejected.
        let mut out = Vec::new();
        assert_eq!(read_compressed(b"\xC0\x00", 0, &mut out), None);
        let mut out = Vec::new();
        assert_eq!(read_compressed(b"\xC0\x02\x00", 0, &mut out), None);
    }
}
