//! Splits zone file text into entries (RFC 1035 §5.1: one entry per line,
//! except that parentheses continue it) and remembers the line each starts
//! on. The `domain` scanner reports no line for the records it returns, so
//! this split is what lets every later check name `file:line`.

/// One logical entry of a zone file: a control entry (`$TTL …`), a record,
/// or nothing but blanks and comments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// 1-based line the entry starts on.
    pub first_line: usize,
    /// The raw text, including its final newline (if any).
    pub text: &'a str,
    /// True when the entry starts with a blank: the owner is omitted.
    pub starts_with_blank: bool,
    /// Tokens as written (quoted ones keep their quotes, escapes stay
    /// escaped), comments removed.
    pub tokens: Vec<&'a str>,
    /// The text ended inside this entry's parentheses.
    pub unclosed_parenthesis: bool,
}

impl Entry<'_> {
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn is_control(&self) -> bool {
        !self.starts_with_blank
            && self
                .tokens
                .first()
                .is_some_and(|token| token.starts_with('$'))
    }

    pub fn line_count(&self) -> usize {
        self.text.matches('\n').count()
    }
}

/// Splits `text` into entries. Concatenating the entries' `text` gives back
/// the input exactly. For tests; the loader streams with `for_each_entry`.
#[cfg(test)]
pub fn split_entries(text: &str) -> Vec<Entry<'_>> {
    let mut entries = Vec::new();
    let _ = for_each_entry(text, |entry| {
        entries.push(entry.clone());
        Ok::<(), ()>(())
    });
    entries
}

/// Calls `visit` with each entry of `text`, in order. Tokens are slices of
/// `text` and one token vector is reused, so a million-record zone costs no
/// allocation per entry. Stops at the first error `visit` returns.
pub fn for_each_entry<'a, E>(
    text: &'a str,
    mut visit: impl FnMut(&Entry<'a>) -> Result<(), E>,
) -> Result<(), E> {
    let bytes = text.as_bytes();
    let mut visit_entry = |start: usize,
                           end: usize,
                           first_line: usize,
                           tokens: &mut Vec<&'a str>,
                           unclosed_parenthesis: bool| {
        let raw = &text[start..end];
        let entry = Entry {
            first_line,
            text: raw,
            starts_with_blank: raw.starts_with([' ', '\t']),
            tokens: std::mem::take(tokens),
            unclosed_parenthesis,
        };
        let result = visit(&entry);
        *tokens = entry.tokens;
        tokens.clear();
        result
    };
    let mut line = 1;
    let mut entry_start = 0;
    let mut entry_line = 1;
    let mut depth = 0usize;
    let mut tokens: Vec<&str> = Vec::new();
    // Start of the token being read, if any.
    let mut token_start: Option<usize> = None;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        match byte {
            b'\\' => {
                token_start.get_or_insert(index);
                // The escaped character is part of the token, whatever it is.
                if bytes.get(index + 1) == Some(&b'\n') {
                    line += 1;
                }
                index += 1 + char_len_at(text, index + 1);
                continue;
            }
            b'"' => {
                let start = token_start.take().unwrap_or(index);
                let mut end = index + 1;
                while end < bytes.len() && bytes[end] != b'"' && bytes[end] != b'\n' {
                    end += if bytes[end] == b'\\' {
                        1 + char_len_at(text, end + 1)
                    } else {
                        1
                    };
                }
                let close = (end < bytes.len() && bytes[end] == b'"') as usize;
                let end = (end + close).min(bytes.len());
                tokens.push(&text[start..end]);
                index = end;
                continue;
            }
            b';' => {
                finish(text, &mut token_start, index, &mut tokens);
                while index < bytes.len() && bytes[index] != b'\n' {
                    index += 1;
                }
                continue;
            }
            b'(' | b')' => {
                finish(text, &mut token_start, index, &mut tokens);
                depth = if byte == b'(' {
                    depth + 1
                } else {
                    depth.saturating_sub(1)
                };
            }
            b'\n' => {
                finish(text, &mut token_start, index, &mut tokens);
                line += 1;
                if depth == 0 {
                    visit_entry(entry_start, index + 1, entry_line, &mut tokens, false)?;
                    entry_start = index + 1;
                    entry_line = line;
                }
            }
            b' ' | b'\t' | b'\r' => finish(text, &mut token_start, index, &mut tokens),
            _ => {
                token_start.get_or_insert(index);
            }
        }
        index += 1;
    }
    finish(text, &mut token_start, bytes.len().min(index), &mut tokens);
    if entry_start < text.len() {
        visit_entry(entry_start, text.len(), entry_line, &mut tokens, depth > 0)?;
    }
    Ok(())
}

/// Length in bytes of the character at `at` (0 at the end of the text), so
/// an escape never splits a multi-byte character.
fn char_len_at(text: &str, at: usize) -> usize {
    text.get(at..)
        .and_then(|rest| rest.chars().next())
        .map_or(0, char::len_utf8)
}

fn finish<'a>(
    text: &'a str,
    token_start: &mut Option<usize>,
    end: usize,
    tokens: &mut Vec<&'a str>,
) {
    if let Some(start) = token_start.take() {
        tokens.push(&text[start..end.min(text.len())]);
    }
}

/// Index of the type token of a record entry: after the owner (unless
/// omitted) and any TTL and class tokens, which RFC 1035 allows in either
/// order.
pub fn type_token_index(entry: &Entry) -> Option<usize> {
    let mut index = if entry.starts_with_blank { 0 } else { 1 };
    while let Some(token) = entry.tokens.get(index) {
        let is_ttl = token.starts_with(|c: char| c.is_ascii_digit());
        let upper = token.to_ascii_uppercase();
        let is_class = matches!(upper.as_str(), "IN" | "CH" | "HS" | "CS")
            || (upper.starts_with("CLASS") && upper[5..].parse::<u16>().is_ok());
        if !(is_ttl || is_class) {
            return Some(index);
        }
        index += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_lines_and_reassemble() {
        let text = "$TTL 60\n@ SOA ns hm (\n 1 2 3 ; serial etc\n 4 5 )\n\n; just a comment\nwww A 1.2.3.4\n  TXT \"a ; (b\" c\nlast A 1.1.1.1";
        let entries = split_entries(text);
        let joined: String = entries.iter().map(|entry| entry.text).collect();
        assert_eq!(joined, text);
        let records: Vec<(usize, &str)> = entries
            .iter()
            .filter(|entry| !entry.is_empty() && !entry.is_control())
            .map(|entry| (entry.first_line, entry.tokens[0]))
            .collect();
        assert_eq!(records, vec![(2, "@"), (7, "www"), (8, "TXT"), (9, "last")]);
        let txt = entries.iter().find(|entry| entry.first_line == 8).unwrap();
        assert_eq!(txt.tokens, vec!["TXT", "\"a ; (b\"", "c"]);
        assert!(txt.starts_with_blank);
        assert_eq!(entries[1].line_count(), 3);
    }

    #[test]
    fn escaped_multibyte_characters_stay_whole() {
        let entries = split_entries("a TXT \\é \"x\\é\" \\");
        assert_eq!(entries[0].tokens, vec!["a", "TXT", "\\é", "\"x\\é\"", "\\"]);
    }

    #[test]
    fn finds_the_type_after_ttl_and_class() {
        let entry = &split_entries("www 300 IN LOC 1 N 2 E 3m\n")[0];
        assert_eq!(type_token_index(entry), Some(3));
        let entry = &split_entries(" IN 1h URI 1 2 \"x\"\n")[0];
        assert_eq!(type_token_index(entry), Some(2));
    }
}
