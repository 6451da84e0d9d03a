//! Stage 1a: Corefile text -> tokens, each with its file and line.
//!
//! Environment references (`{$NAME}`, `{%NAME%}`) are replaced before
//! tokenizing, as CoreDNS does, so one variable may expand to several
//! tokens. A line map keeps every token on the line the user wrote, even
//! when a variable's value contains newlines.

use std::path::Path;
use std::rc::Rc;

use super::ConfigError;

/// One word of the Corefile as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub text: String,
    /// Line where the token starts (1-based, in `file`).
    pub line: usize,
    /// Line where it ends; differs from `line` only for a quoted string
    /// that spans lines, and is what "is the next token on the same line"
    /// must compare against.
    pub end_line: usize,
    /// Quoted tokens are plain words: never braces, keywords or comments.
    pub quoted: bool,
    /// The file this token was read from (an imported file keeps its own).
    pub file: Rc<Path>,
}

impl Token {
    pub fn is_open_brace(&self) -> bool {
        !self.quoted && self.text == "{"
    }

    pub fn is_close_brace(&self) -> bool {
        !self.quoted && self.text == "}"
    }

    /// True for the unquoted word `word`: quoting a keyword makes it data.
    pub fn is_keyword(&self, word: &str) -> bool {
        !self.quoted && self.text == word
    }

    /// An error located at this token.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: self.line,
            message: message.into(),
        }
    }
}

/// Looks up an environment variable; unset is `None`. Passed in so tests do
/// not have to change the process environment.
pub(super) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Splits `text` into tokens. Errors (an unterminated quote) are returned
/// beside the tokens so parsing can go on and report more.
pub(super) fn tokenize(
    text: &str,
    file: &Rc<Path>,
    env: EnvLookup<'_>,
) -> (Vec<Token>, Vec<ConfigError>) {
    let (text, line_of) = substitute_env(text, env);
    // `line_of[i]` is the source line of output line `i`; it has one entry
    // per output line, so indexing by a counted output line cannot miss.
    let source_line = |output_line: usize| line_of[output_line];

    let mut tokens = Vec::new();
    let mut errors = Vec::new();
    let mut chars = text.chars().peekable();
    let mut output_line = 0;
    let make = |text: String, start: usize, end: usize, quoted: bool| Token {
        text,
        line: source_line(start),
        end_line: source_line(end),
        quoted,
        file: Rc::clone(file),
    };

    while let Some(ch) = chars.next() {
        if ch == '\n' {
            output_line += 1;
            continue;
        }
        if ch.is_whitespace() {
            continue;
        }
        if ch == '#' {
            skip_to_end_of_line(&mut chars);
            continue;
        }
        let start = output_line;
        if ch == '"' {
            let mut value = String::new();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    // As in CoreDNS, only `\"` is an escape; any other
                    // backslash is kept as written.
                    '\\' => match chars.next() {
                        Some('"') => value.push('"'),
                        Some(next) => {
                            if next == '\n' {
                                output_line += 1;
                            }
                            value.push('\\');
                            value.push(next);
                        }
                        None => value.push('\\'),
                    },
                    '\n' => {
                        output_line += 1;
                        value.push('\n');
                    }
                    _ => value.push(c),
                }
            }
            let token = make(value, start, output_line, true);
            if !closed {
                errors.push(token.error("unterminated quoted string; expected a closing '\"'"));
            }
            tokens.push(token);
            continue;
        }
        let mut value = String::from(ch);
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '#' {
                // CoreDNS starts a comment at `#` even inside a word.
                skip_to_end_of_line(&mut chars);
                break;
            }
            value.push(c);
        }
        tokens.push(make(value, start, start, false));
    }
    (tokens, errors)
}

fn skip_to_end_of_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(&c) = chars.peek() {
        if c == '\n' {
            break;
        }
        chars.next();
    }
}

/// Replaces `{$NAME}` and `{%NAME%}` with the variable's value (empty when
/// unset). Returns the new text and, for each of its lines, the source line
/// it came from.
pub(super) fn substitute_env(text: &str, env: EnvLookup<'_>) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len());
    let mut line_of = vec![1];
    let mut source_line = 1;
    let mut rest = text;
    while let Some(ch) = rest.chars().next() {
        if let Some((name, len)) = env_reference(rest) {
            for c in env(name).unwrap_or_default().chars() {
                if c == '\n' {
                    // Lines inside a value all belong to the line that
                    // names the variable.
                    line_of.push(source_line);
                }
                out.push(c);
            }
            rest = &rest[len..];
            continue;
        }
        if ch == '\n' {
            source_line += 1;
            line_of.push(source_line);
        }
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    (out, line_of)
}

/// If `s` starts with `{$NAME}` or `{%NAME%}`, the name and the reference's
/// length in bytes. Names are limited to letters, digits and `_` so that a
/// stray `{$` does not swallow text up to some distant `}`.
fn env_reference(s: &str) -> Option<(&str, usize)> {
    let close = if s.starts_with("{$") {
        "}"
    } else if s.starts_with("{%") {
        "%}"
    } else {
        return None;
    };
    let body = &s[2..];
    let end = body.find(close)?;
    let name = &body[..end];
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some((name, 2 + end + close.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "ZONE" => Some("example.org".to_string()),
            "TWO" => Some("a b".to_string()),
            "LINES" => Some("x\ny\nz".to_string()),
            _ => None,
        }
    }

    fn lex(text: &str) -> (Vec<Token>, Vec<ConfigError>) {
        tokenize(text, &Rc::from(Path::new("Corefile")), &env)
    }

    fn words(text: &str) -> Vec<(String, usize)> {
        let (tokens, errors) = lex(text);
        assert!(errors.is_empty(), "{errors:?}");
        tokens.into_iter().map(|t| (t.text, t.line)).collect()
    }

    fn w(text: &str, line: usize) -> (String, usize) {
        (text.to_string(), line)
    }

    #[test]
    fn splits_on_whitespace_with_line_numbers() {
        assert_eq!(
            words("a.org {\n\tfile  db\r\n}\n"),
            vec![
                w("a.org", 1),
                w("{", 1),
                w("file", 2),
                w("db", 2),
                w("}", 3)
            ]
        );
    }

    #[test]
    fn comments_run_to_end_of_line_even_inside_a_word() {
        assert_eq!(
            words("# top\nlog # trailing\nfile db#x y\nerrors"),
            vec![w("log", 2), w("file", 3), w("db", 3), w("errors", 4)]
        );
    }

    #[test]
    fn quoted_strings_keep_spaces_braces_and_hashes() {
        let (tokens, errors) = lex(r##"file "my db" "{" "# no" "say \"hi\"" "a\b" """##);
        assert!(errors.is_empty());
        let texts: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(
            texts,
            ["file", "my db", "{", "# no", "say \"hi\"", "a\\b", ""]
        );
        assert!(!tokens[2].is_open_brace(), "a quoted brace is a word");
        assert!(tokens[1].quoted && !tokens[0].quoted);
    }

    #[test]
    fn quoted_string_over_two_lines_records_its_end_line() {
        let (tokens, _) = lex("a \"x\ny\" b\nc");
        assert_eq!((tokens[1].line, tokens[1].end_line), (1, 2));
        assert_eq!(tokens[2].line, 2);
        assert_eq!(tokens[3].line, 3);
    }

    #[test]
    fn unterminated_quote_is_an_error_with_its_line() {
        let (tokens, errors) = lex("log\nfile \"db\n\n");
        assert_eq!(tokens.len(), 3);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
        assert!(errors[0].message.contains("expected a closing '\"'"));
    }

    #[test]
    fn env_references_are_substituted_before_tokenizing() {
        assert_eq!(
            words("{$ZONE}:{%ZONE%} {\n bind {$TWO}{$UNSET}\n}"),
            vec![
                w("example.org:example.org", 1),
                w("{", 1),
                w("bind", 2),
                w("a", 2),
                w("b", 2),
                w("}", 3)
            ]
        );
    }

    #[test]
    fn env_value_with_newlines_keeps_later_line_numbers() {
        assert_eq!(
            words("a {$LINES}\nb"),
            vec![w("a", 1), w("x", 1), w("y", 1), w("z", 1), w("b", 2)]
        );
    }

    #[test]
    fn text_that_only_looks_like_an_env_reference_is_kept() {
        assert_eq!(
            words("{$} {$a b} {%X} {} {"),
            vec![
                w("{$}", 1),
                w("{$a", 1),
                w("b}", 1),
                w("{%X}", 1),
                w("{}", 1),
                w("{", 1)
            ]
        );
    }
}
