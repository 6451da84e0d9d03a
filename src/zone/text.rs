//! Splits zone file text into entries (RFC 1035 §5.1: one entry per line,
//! except that parentheses continue it) and remembers the line each starts
//! on. The `domain` scanner reports no line for the records it returns, so
//! this split is what lets every later check name `file:line`.

/// One logical entry of a zone file: a control entry (`$TTL …`), a record,
/// or nothing but blanks and comments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line the entry starts on.
    pub first_line: usize,
    /// The raw text, including its final newline (if any).
    pub text: String,
    /// True when the entry starts with a blank: the owner is omitted.
    pub starts_with_blank: bool,
    /// Tokens as written (quoted ones keep their quotes), comments removed.
    pub tokens: Vec<String>,
}

impl Entry {
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
/// the input exactly.
pub fn split_entries(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut line = 1;
    let mut start = 0;
    let mut depth = 0usize;
    let mut in_quote = false;
    let mut in_comment = false;
    let mut escaped = false;
    let mut tokens: Vec<String> = Vec::new();
    let mut token = String::new();
    let mut token_open = false;
    let mut entry_line = 1;

    let finish_token = |token: &mut String, token_open: &mut bool, tokens: &mut Vec<String>| {
        if *token_open {
            tokens.push(std::mem::take(token));
            *token_open = false;
        }
    };

    for (index, character) in text.char_indices() {
        if in_comment {
            if character != '\n' {
                continue;
            }
            in_comment = false;
        }
        if escaped {
            token.push(character);
            escaped = false;
            if character == '\n' {
                line += 1;
            }
            continue;
        }
        match character {
            '\\' => {
                token.push(character);
                token_open = true;
                escaped = true;
            }
            '"' => {
                token.push(character);
                token_open = true;
                in_quote = !in_quote;
                if !in_quote {
                    finish_token(&mut token, &mut token_open, &mut tokens);
                }
            }
            _ if in_quote && character != '\n' => token.push(character),
            ';' => {
                finish_token(&mut token, &mut token_open, &mut tokens);
                in_comment = true;
            }
            '(' => {
                finish_token(&mut token, &mut token_open, &mut tokens);
                depth += 1;
            }
            ')' => {
                finish_token(&mut token, &mut token_open, &mut tokens);
                depth = depth.saturating_sub(1);
            }
            '\n' => {
                finish_token(&mut token, &mut token_open, &mut tokens);
                line += 1;
                in_quote = false;
                if depth == 0 {
                    let raw = &text[start..=index];
                    entries.push(Entry {
                        first_line: entry_line,
                        text: raw.to_string(),
                        starts_with_blank: raw.starts_with([' ', '\t']),
                        tokens: std::mem::take(&mut tokens),
                    });
                    start = index + 1;
                    entry_line = line;
                }
            }
            ' ' | '\t' | '\r' => finish_token(&mut token, &mut token_open, &mut tokens),
            _ => {
                token.push(character);
                token_open = true;
            }
        }
    }
    finish_token(&mut token, &mut token_open, &mut tokens);
    if start < text.len() {
        let raw = &text[start..];
        entries.push(Entry {
            first_line: entry_line,
            text: raw.to_string(),
            starts_with_blank: raw.starts_with([' ', '\t']),
            tokens,
        });
    }
    entries
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
        let joined: String = entries.iter().map(|entry| entry.text.as_str()).collect();
        assert_eq!(joined, text);
        let records: Vec<(usize, &str)> = entries
            .iter()
            .filter(|entry| !entry.is_empty() && !entry.is_control())
            .map(|entry| (entry.first_line, entry.tokens[0].as_str()))
            .collect();
        assert_eq!(records, vec![(2, "@"), (7, "www"), (8, "TXT"), (9, "last")]);
        let txt = entries.iter().find(|entry| entry.first_line == 8).unwrap();
        assert_eq!(txt.tokens, vec!["TXT", "\"a ; (b\"", "c"]);
        assert!(txt.starts_with_blank);
        assert_eq!(entries[1].line_count(), 3);
    }

    #[test]
    fn finds_the_type_after_ttl_and_class() {
        let entry = &split_entries("www 300 IN LOC 1 N 2 E 3m\n")[0];
        assert_eq!(type_token_index(entry), Some(3));
        let entry = &split_entries(" IN 1h URI 1 2 \"x\"\n")[0];
        assert_eq!(type_token_index(entry), Some(2));
    }
}
