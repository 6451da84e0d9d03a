//! Stage 1b: tokens -> lines and blocks, as written.
//!
//! Every level of a Corefile has the same shape: a list of lines, each line
//! a list of words that may end in a `{ ... }` block of more lines. At the
//! top a line is a server block (`example.org {`) or a snippet
//! (`(name) {`); inside, a line is a directive (`file db {`); inside that, a
//! line is a property (`reload 30s`). This stage knows nothing of meaning;
//! it only groups words and checks that braces balance.

use super::ConfigError;
use super::lexer::Token;

/// Deeper nesting than this is a broken file, not a configuration; the
/// bound keeps a file of many `{` from overflowing the stack.
const BLOCK_DEPTH_MAX: usize = 32;

/// One logical line: a name, its arguments, and maybe a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    /// Never empty: `words[0]` is the directive name (or the first key).
    pub words: Vec<Token>,
    pub block: Option<Block>,
}

impl Line {
    pub fn name(&self) -> &Token {
        &self.words[0]
    }

    pub fn args(&self) -> &[Token] {
        &self.words[1..]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Block {
    pub lines: Vec<Line>,
}

/// Groups `tokens` (all from one file) into lines. Errors are collected and
/// parsing recovers, so one stray brace does not hide later mistakes.
pub(super) fn parse(tokens: Vec<Token>) -> (Vec<Line>, Vec<ConfigError>) {
    let mut parser = Parser {
        tokens,
        pos: 0,
        errors: Vec::new(),
    };
    let lines = parser.body(None, 0);
    (lines, parser.errors)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    errors: Vec<ConfigError>,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    /// Lines up to the `}` that closes `open` (consumed), or to the end of
    /// the file when `open` is `None`.
    fn body(&mut self, open: Option<&Token>, depth: usize) -> Vec<Line> {
        let mut lines = Vec::new();
        if depth > BLOCK_DEPTH_MAX {
            if let Some(open) = open {
                self.errors.push(open.error(format!(
                    "blocks nested more than {BLOCK_DEPTH_MAX} deep; expected '}}' sooner"
                )));
            }
            self.pos = self.tokens.len();
            return lines;
        }
        loop {
            let Some(token) = self.peek().cloned() else {
                if let Some(open) = open {
                    self.errors.push(open.error(
                        "block opened here is never closed; expected '}' before the end of the file",
                    ));
                }
                return lines;
            };
            if token.is_close_brace() {
                self.pos += 1;
                if open.is_some() {
                    return lines;
                }
                self.errors
                    .push(token.error("unexpected '}'; no block is open here"));
                continue;
            }
            if token.is_open_brace() {
                self.errors
                    .push(token.error(
                        "unexpected '{'; expected a server key or directive name before it",
                    ));
                // Parse and drop the block so its closing brace is not
                // reported a second time.
                self.pos += 1;
                self.body(Some(&token), depth + 1);
                continue;
            }
            lines.push(self.line(open.is_none(), depth));
        }
    }

    /// One line, starting at a word. `top` allows server keys to continue
    /// onto the next line after a trailing comma, as CoreDNS does.
    fn line(&mut self, top: bool, depth: usize) -> Line {
        let mut words: Vec<Token> = Vec::new();
        while let Some(token) = self.peek().cloned() {
            if token.is_close_brace() {
                break;
            }
            if token.is_open_brace() {
                // `{` opens this line's block even when it starts the next
                // source line (`example.org` then `{`).
                if words.is_empty() {
                    break;
                }
                self.pos += 1;
                let lines = self.body(Some(&token), depth + 1);
                return Line {
                    words,
                    block: Some(Block { lines }),
                };
            }
            if let Some(last) = words.last() {
                let same_line = token.line == last.end_line;
                let continued = top && !last.quoted && last.text.ends_with(',');
                if !same_line && !continued {
                    break;
                }
            }
            self.pos += 1;
            if let Some(word) = glued_open_brace(&token) {
                // `db{`: CoreDNS would take this as the word "db{" and then
                // misread every line after it; say what is wrong, and
                // carry on as if the space were there.
                self.errors.push(
                    token.error(format!("expected a space between '{}' and '{{'", word.text)),
                );
                words.push(word);
                let lines = self.body(Some(&token), depth + 1);
                return Line {
                    words,
                    block: Some(Block { lines }),
                };
            }
            words.push(token);
        }
        // Only reached with a word: `body` never calls `line` at a brace or
        // at the end.
        Line { words, block: None }
    }
}

/// For an unquoted word like `db{`, the word without its brace.
fn glued_open_brace(token: &Token) -> Option<Token> {
    if token.quoted || token.text.len() < 2 {
        return None;
    }
    let word = token.text.strip_suffix('{')?;
    let mut without_brace = token.clone();
    without_brace.text = word.to_string();
    Some(without_brace)
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;
    use std::path::Path;
    use std::rc::Rc;

    fn parse_text(text: &str) -> (Vec<Line>, Vec<ConfigError>) {
        let (tokens, errors) = tokenize(text, &Rc::from(Path::new("Corefile")), &|_| None);
        assert!(errors.is_empty());
        parse(tokens)
    }

    /// A compact picture of the tree: `name args [ child; child ]`.
    fn show(lines: &[Line]) -> String {
        let parts: Vec<String> = lines
            .iter()
            .map(|line| {
                let words: Vec<&str> = line.words.iter().map(|t| t.text.as_str()).collect();
                match &line.block {
                    Some(block) => format!("{} [{}]", words.join(" "), show(&block.lines)),
                    None => words.join(" "),
                }
            })
            .collect();
        parts.join("; ")
    }

    fn ok(text: &str) -> String {
        let (lines, errors) = parse_text(text);
        assert!(errors.is_empty(), "{errors:?}");
        show(&lines)
    }

    #[test]
    fn lines_and_nested_blocks() {
        let text = "a.org b.org {\n  file db a.org {\n    reload 1m\n  }\n  log\n}\nc.org {\n}\n";
        assert_eq!(
            ok(text),
            "a.org b.org [file db a.org [reload 1m]; log]; c.org []"
        );
    }

    #[test]
    fn open_brace_on_the_next_line_belongs_to_the_previous_line() {
        assert_eq!(ok("a.org\n{\n  log\n}"), "a.org [log]");
    }

    #[test]
    fn one_line_blocks_are_accepted() {
        assert_eq!(
            ok("a.org { file db { reload 0 } log }"),
            "a.org [file db [reload 0]; log]"
        );
    }

    #[test]
    fn keys_continue_after_a_trailing_comma_at_top_level_only() {
        assert_eq!(
            ok("a.org,\nb.org {\n bind 1.2.3.4,\n log\n}"),
            "a.org, b.org [bind 1.2.3.4,; log]"
        );
    }

    #[test]
    fn unexpected_close_brace_is_reported_and_skipped() {
        let (lines, errors) = parse_text("a.org {\n log\n}\n}\nb.org {\n}");
        assert_eq!(show(&lines), "a.org [log]; b.org []");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 4);
        assert!(errors[0].message.contains("unexpected '}'"));
    }

    #[test]
    fn unclosed_block_names_the_line_that_opened_it() {
        let (lines, errors) = parse_text("a.org {\n file db {\n  reload 1s\n}\n");
        assert_eq!(show(&lines), "a.org [file db [reload 1s]]");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 1);
        assert!(errors[0].message.contains("expected '}'"));
    }

    #[test]
    fn brace_without_a_name_is_an_error() {
        let (lines, errors) = parse_text("{\n log\n}\na.org {\n}");
        assert_eq!(show(&lines), "a.org []");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 1);
        assert!(
            errors[0]
                .message
                .contains("expected a server key or directive name")
        );
    }

    #[test]
    fn glued_open_brace_is_an_error_but_parsing_goes_on() {
        let (lines, errors) = parse_text("a.org {\n file db{\n  reload 1s\n }\n log\n}");
        assert_eq!(show(&lines), "a.org [file db [reload 1s]; log]");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
        assert!(
            errors[0]
                .message
                .contains("expected a space between 'db' and '{'")
        );
    }

    #[test]
    fn quoted_braces_are_words() {
        assert_eq!(ok("a.org {\n log \"{\" \"}\"\n}"), "a.org [log { }]");
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let text = "a { ".repeat(100);
        let (_, errors) = parse_text(&text);
        assert!(
            errors
                .iter()
                .any(|e| e.message.contains("nested more than 32 deep"))
        );
    }
}
