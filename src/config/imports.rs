//! Stage 1c: snippets and `import`, pasted in as parsed lines.
//!
//! `(name) { ... }` at the top level defines a snippet; `import name` pastes
//! its lines, and `import FILE_OR_GLOB` pastes the lines of other files
//! (relative to the importing file). Pasted lines keep the file and line
//! they were written on, so later errors point at the real text. A snippet
//! must be defined above its first use, as in CoreDNS.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::lexer::{EnvLookup, Token, tokenize};
use super::syntax::{self, Line};
use super::{ConfigError, read_config_file, relative_to_file};

/// Imports nested deeper than this are a mistake; cycles are caught
/// separately, this bounds the rest.
const IMPORT_DEPTH_MAX: usize = 16;

/// Expands imports and collects snippets while walking the parsed lines.
pub(super) struct Expander<'a> {
    env: EnvLookup<'a>,
    /// Snippet name -> its lines and the token that defined it.
    snippets: HashMap<String, (Vec<Line>, Token)>,
    /// What is being expanded now, outermost first, with the label shown in
    /// a cycle error.
    chain: Vec<(Source, String)>,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
}

/// The identity of something being imported, for cycle detection.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    Snippet(String),
    File(PathBuf),
}

impl<'a> Expander<'a> {
    pub fn new(env: EnvLookup<'a>) -> Self {
        Expander {
            env,
            snippets: HashMap::new(),
            chain: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Tokenizes, parses and expands the main config file.
    pub fn main_file(&mut self, text: &str, path: &Path) -> Vec<Line> {
        self.chain.push((
            Source::File(file_identity(path)),
            path.display().to_string(),
        ));
        let lines = self.file(text, path, true);
        self.chain.pop();
        lines
    }

    fn file(&mut self, text: &str, path: &Path, top: bool) -> Vec<Line> {
        let (tokens, errors) = tokenize(text, &Rc::from(path), self.env);
        self.errors.extend(errors);
        let (lines, errors) = syntax::parse(tokens);
        self.errors.extend(errors);
        self.expand(lines, top)
    }

    /// Replaces `import` lines by what they import and removes snippet
    /// definitions (`top` is true only at the top level, where both server
    /// blocks and snippets live).
    fn expand(&mut self, lines: Vec<Line>, top: bool) -> Vec<Line> {
        let mut out = Vec::with_capacity(lines.len());
        for mut line in lines {
            if line.name().is_keyword("import") {
                self.import(&line, top, &mut out);
            } else if top && snippet_name(line.name()).is_some() {
                self.define_snippet(line);
            } else {
                if let Some(block) = &mut line.block {
                    block.lines = self.expand(std::mem::take(&mut block.lines), false);
                }
                out.push(line);
            }
        }
        out
    }

    fn define_snippet(&mut self, line: Line) {
        let token = line.name().clone();
        let name = snippet_name(&token).unwrap_or_default().to_string();
        if !line.args().is_empty() {
            self.errors.push(token.error(format!(
                "a snippet definition must stand alone; expected '({name}) {{' with no other keys"
            )));
            return;
        }
        let Some(block) = line.block else {
            self.errors
                .push(token.error(format!("expected '{{' after snippet name '({name})'")));
            return;
        };
        if let Some((_, first)) = self.snippets.get(&name) {
            self.errors.push(token.error(format!(
                "snippet '{name}' is already defined at {}:{}",
                first.file.display(),
                first.line
            )));
            return;
        }
        self.snippets.insert(name, (block.lines, token));
    }

    fn import(&mut self, line: &Line, top: bool, out: &mut Vec<Line>) {
        let keyword = line.name();
        let [target] = line.args() else {
            self.errors.push(
                keyword.error("expected exactly one snippet name or file pattern after 'import'"),
            );
            return;
        };
        if line.block.is_some() {
            self.errors
                .push(keyword.error("'import' takes no block; expected 'import NAME' alone"));
            return;
        }
        if self.chain.len() > IMPORT_DEPTH_MAX {
            self.errors.push(target.error(format!(
                "imports nested more than {IMPORT_DEPTH_MAX} deep; expected a shallower import chain"
            )));
            return;
        }

        if let Some((lines, _)) = self.snippets.get(&target.text) {
            let lines = lines.clone();
            let label = format!("snippet '{}'", target.text);
            if self.enter(Source::Snippet(target.text.clone()), label, target) {
                let expanded = self.expand(lines, top);
                self.chain.pop();
                out.extend(expanded);
            }
            return;
        }

        let pattern = relative_to_file(&target.file, &target.text);
        let paths = match expand_glob(&pattern) {
            Ok(paths) => paths,
            Err(message) => {
                self.errors.push(target.error(message));
                return;
            }
        };
        if paths.is_empty() {
            // CoreDNS only warns here: an empty `conf.d/*` is a normal state.
            self.warnings.push(target.error(format!(
                "import pattern '{}' matches no files",
                pattern.display()
            )));
            return;
        }
        for path in paths {
            let text = match read_config_file(&path) {
                Ok(text) => text,
                Err(message) => {
                    let message = if has_wildcard(&target.text) {
                        message
                    } else {
                        format!(
                            "'import {}': no snippet of that name is defined above, and {message}",
                            target.text
                        )
                    };
                    self.errors.push(target.error(message));
                    continue;
                }
            };
            let label = path.display().to_string();
            if self.enter(Source::File(file_identity(&path)), label, target) {
                let lines = self.file(&text, &path, top);
                self.chain.pop();
                out.extend(lines);
            }
        }
    }

    /// Pushes `source` on the chain; if it is already there, reports the
    /// cycle at `at` and returns false.
    fn enter(&mut self, source: Source, label: String, at: &Token) -> bool {
        if let Some(start) = self.chain.iter().position(|(s, _)| *s == source) {
            let mut labels: Vec<&str> = self.chain[start..]
                .iter()
                .map(|(_, l)| l.as_str())
                .collect();
            labels.push(&label);
            let message = format!("import cycle: {}", labels.join(" -> "));
            self.errors.push(at.error(message));
            return false;
        }
        self.chain.push((source, label));
        true
    }
}

/// `name` for a snippet definition `(name)`.
fn snippet_name(token: &Token) -> Option<&str> {
    if token.quoted {
        return None;
    }
    let name = token.text.strip_prefix('(')?.strip_suffix(')')?;
    (!name.is_empty()).then_some(name)
}

/// The same file reached by two spellings must be one identity, or a cycle
/// through `./a` and `a` would go unnoticed.
fn file_identity(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?'])
}

/// The files an import pattern names, sorted. Only the file name may hold
/// wildcards (`*`, `?`); a pattern without any names exactly one file, which
/// need not exist yet (reading it reports that).
fn expand_glob(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let parent = pattern.parent().unwrap_or(Path::new(""));
    if has_wildcard(&parent.to_string_lossy()) {
        return Err(format!(
            "wildcards are only supported in the file name of an import pattern, got '{}'",
            pattern.display()
        ));
    }
    let Some(file_name) = pattern.file_name().and_then(|n| n.to_str()) else {
        return Ok(vec![pattern.to_path_buf()]);
    };
    if !has_wildcard(file_name) {
        return Ok(vec![pattern.to_path_buf()]);
    }
    let dir = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        // As with Go's filepath.Glob, a missing directory matches nothing.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(format!(
                "cannot list directory '{}' for import pattern '{}': {e}",
                dir.display(),
                pattern.display()
            ));
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| !t.is_dir()))
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| wildcard_match(file_name, name))
        })
        .map(|entry| parent.join(entry.file_name()))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Shell-style match of one file name: `*` is any run of characters, `?`
/// is one character, everything else matches itself.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was and how much of the name it has taken, so a
    // failed match can let the star take one more character.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matching() {
        assert!(wildcard_match("*.conf", "a.conf"));
        assert!(wildcard_match("*.conf", ".conf"));
        assert!(!wildcard_match("*.conf", "a.conf.bak"));
        assert!(wildcard_match("db.?", "db.1"));
        assert!(!wildcard_match("db.?", "db.12"));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
        assert!(!wildcard_match("a*b*c", "axxbyy"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("exact", "exact"));
    }

    #[test]
    fn wildcards_in_directories_are_rejected() {
        let err = expand_glob(Path::new("conf.d/*/x.conf")).unwrap_err();
        assert!(err.contains("only supported in the file name"));
    }

    #[test]
    fn plain_pattern_names_itself() {
        assert_eq!(
            expand_glob(Path::new("dir/x.conf")).unwrap(),
            vec![PathBuf::from("dir/x.conf")]
        );
    }
}
