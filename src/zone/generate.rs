//! `$GENERATE` (BIND's extension, also read by Knot and NSD 4.x as
//! `$GENERATE start-stop[/step] lhs [ttl] [class] type rhs`): expanded into
//! ordinary record lines before scanning, since the `domain` scanner does
//! not know it.

/// Most records one `$GENERATE` may produce: a typo in a range must not
/// exhaust memory.
pub const GENERATED_RECORDS_MAX: u64 = 1 << 20;

/// Expands the tokens of one `$GENERATE` entry (the directive included)
/// into record lines, each ending in a newline.
pub fn expand(tokens: &[&str]) -> Result<Vec<String>, String> {
    let usage = "expected $GENERATE start-stop[/step] lhs [ttl] [class] type rhs";
    let range = tokens.get(1).ok_or(usage)?;
    let (bounds, step) = match range.split_once('/') {
        Some((bounds, step)) => (
            bounds,
            step.parse::<u64>()
                .map_err(|_| format!("bad step in '{range}'; {usage}"))?,
        ),
        None => (*range, 1),
    };
    let (start, stop) = bounds
        .split_once('-')
        .ok_or_else(|| format!("bad range '{range}'; {usage}"))?;
    let start: u64 = start
        .parse()
        .map_err(|_| format!("bad range start in '{range}'"))?;
    let stop: u64 = stop
        .parse()
        .map_err(|_| format!("bad range stop in '{range}'"))?;
    if step == 0 || start > stop {
        return Err(format!(
            "bad range '{range}': start must not exceed stop and step must be positive"
        ));
    }
    if (stop - start) / step + 1 > GENERATED_RECORDS_MAX {
        return Err(format!(
            "range '{range}' makes more than {GENERATED_RECORDS_MAX} records"
        ));
    }
    if tokens.len() < 5 {
        return Err(usage.to_string());
    }
    let lhs = &tokens[2];
    let middle = &tokens[3..tokens.len() - 1];
    let rhs = &tokens[tokens.len() - 1];
    let mut lines = Vec::new();
    let mut value = start;
    while value <= stop {
        let mut line = substitute(lhs, value)?;
        for token in middle {
            line.push(' ');
            line.push_str(token);
        }
        line.push(' ');
        line.push_str(&substitute(rhs, value)?);
        line.push('\n');
        lines.push(line);
        match value.checked_add(step) {
            Some(next) => value = next,
            None => break,
        }
    }
    Ok(lines)
}

/// Replaces `$` with the iterator value and `${offset,width,base}` with a
/// formatted one (base d, o, x, X; n and N for nibbles as BIND writes
/// them); `\$` is a literal dollar sign.
fn substitute(template: &str, value: u64) -> Result<String, String> {
    let mut out = String::new();
    let mut characters = template.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '\\' if characters.peek() == Some(&'$') => {
                out.push('$');
                characters.next();
            }
            '$' if characters.peek() == Some(&'{') => {
                characters.next();
                let mut spec = String::new();
                loop {
                    match characters.next() {
                        Some('}') => break,
                        Some(c) => spec.push(c),
                        None => return Err(format!("unclosed '${{' in '{template}'")),
                    }
                }
                out.push_str(&format_modifier(&spec, value)?);
            }
            '$' => out.push_str(&value.to_string()),
            other => out.push(other),
        }
    }
    Ok(out)
}

fn format_modifier(spec: &str, value: u64) -> Result<String, String> {
    let mut parts = spec.split(',');
    let offset: i64 = parts
        .next()
        .unwrap_or("0")
        .trim()
        .parse()
        .map_err(|_| format!("bad offset in '${{{spec}}}'"))?;
    let width: usize = match parts.next() {
        Some(width) => width
            .trim()
            .parse()
            .map_err(|_| format!("bad width in '${{{spec}}}'"))?,
        None => 0,
    };
    let base = parts.next().unwrap_or("d").trim();
    let shifted = (value as i64)
        .checked_add(offset)
        .filter(|v| *v >= 0)
        .ok_or_else(|| format!("offset in '${{{spec}}}' makes a negative value"))?
        as u64;
    Ok(match base {
        "d" => format!("{shifted:0width$}"),
        "o" => format!("{shifted:0width$o}"),
        "x" => format!("{shifted:0width$x}"),
        "X" => format!("{shifted:0width$X}"),
        "n" | "N" => {
            // Nibbles, least significant first, dot separated (for ip6.arpa).
            let hex = if base == "n" {
                format!("{shifted:0width$x}")
            } else {
                format!("{shifted:0width$X}")
            };
            let nibbles: Vec<String> = hex.chars().rev().map(String::from).collect();
            nibbles.join(".")
        }
        _ => {
            return Err(format!(
                "bad base '{base}' in '${{{spec}}}'; expected d, o, x, X, n or N"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<&str> {
        text.split_whitespace().collect()
    }

    #[test]
    fn expands_ranges_and_modifiers() {
        let lines = expand(&tokens("$GENERATE 1-3 host$ 300 IN A 10.0.0.$")).unwrap();
        assert_eq!(
            lines,
            vec![
                "host1 300 IN A 10.0.0.1\n",
                "host2 300 IN A 10.0.0.2\n",
                "host3 300 IN A 10.0.0.3\n"
            ]
        );
        let lines = expand(&tokens("$GENERATE 0-20/10 ${1,3,x}.rev PTR h${0,2,d}.x.")).unwrap();
        assert_eq!(
            lines,
            vec![
                "001.rev PTR h00.x.\n",
                "00b.rev PTR h10.x.\n",
                "015.rev PTR h20.x.\n"
            ]
        );
        let lines = expand(&tokens("$GENERATE 255-255 ${0,2,n} TXT \\$")).unwrap();
        assert_eq!(lines, vec!["f.f TXT $\n"]);
    }

    #[test]
    fn rejects_bad_directives() {
        assert!(expand(&tokens("$GENERATE 5-1 a A 1.2.3.4")).is_err());
        assert!(expand(&tokens("$GENERATE 1-x a A 1.2.3.4")).is_err());
        assert!(expand(&tokens("$GENERATE 1-2 a")).is_err());
        assert!(expand(&tokens("$GENERATE 0-99999999 a$ A 1.2.3.4")).is_err());
        assert!(expand(&tokens("$GENERATE 1-2 ${0,1,q} A 1.2.3.4")).is_err());
        // The last value of u64 ends the range instead of wrapping to 0.
        let top = u64::MAX;
        assert_eq!(
            expand(&tokens(&format!("$GENERATE {top}-{top} h$ A 1.2.3.4")))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            expand(&tokens(&format!("$GENERATE 5-{top}/{top} h$ A 1.2.3.4")))
                .unwrap()
                .len(),
            1
        );
    }
}
