//! Zone file → `Zone`: reads the file and its `$INCLUDE`s, expands what the
//! `domain` scanner lacks, scans the records with it, then validates.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use domain::base::ToName;
use domain::base::iana::Class;
use domain::base::name::Name;
use domain::base::rdata::ComposeRecordData;
use domain::zonefile::inplace::{Entry as ScannedEntry, Zonefile};

use super::text::for_each_entry;
use super::validate::{Scanned, SourcedRecord, build_zone};
use super::{Zone, ZoneProblem, generate, rdata_text};
use crate::wire::name;

/// Deepest chain of `$INCLUDE`s followed (a guard against include loops).
pub const INCLUDE_DEPTH_MAX: usize = 8;

/// A zone that loaded, with the warnings its checks produced.
#[derive(Debug)]
pub struct Loaded {
    pub zone: Zone,
    pub warnings: Vec<ZoneProblem>,
    /// Every file read: the zone file and its `$INCLUDE`s.
    pub files: Vec<std::path::PathBuf>,
    /// Where each record came from (signed zones only), for
    /// `check-zone --dnssec`.
    pub lines: super::RecordLines,
}

/// Loads and validates the zone `origin` (wire format) from `path`.
/// On failure returns every error found (at least one), each with file:line.
pub fn load_file(origin: &[u8], path: &Path) -> Result<Loaded, Vec<ZoneProblem>> {
    let mut scanned = Scanned::default();
    scan_file(path, origin, 0, &mut scanned).map_err(|problem| vec![problem])?;
    build_zone(origin, scanned, path)
}

/// Like `load_file`, for zone text already in memory; `path` names it in
/// messages and anchors relative `$INCLUDE`s.
pub fn load_text(origin: &[u8], text: &str, path: &Path) -> Result<Loaded, Vec<ZoneProblem>> {
    let mut scanned = Scanned::default();
    scan_text(text, path, origin, 0, &mut scanned).map_err(|problem| vec![problem])?;
    build_zone(origin, scanned, path)
}

/// Zone text after expansion, ready for the `domain` scanner.
struct Prepared {
    text: String,
    /// Source line of each line of `text` (index 0 is line 1).
    source_lines: Vec<usize>,
    /// Source line of each record and `$INCLUDE`, in the order the scanner
    /// returns them as entries.
    entry_lines: Vec<usize>,
    /// Line in `text` where each non-empty entry starts, ascending.
    entry_starts: Vec<usize>,
}

/// Expands `$GENERATE` and rewrites record types the scanner lacks into
/// RFC 3597 form, keeping track of where every line came from.
fn prepare(text: &str, path: &Path) -> Result<Prepared, ZoneProblem> {
    let mut prepared = Prepared {
        text: String::with_capacity(text.len() + 1),
        source_lines: Vec::new(),
        entry_lines: Vec::new(),
        entry_starts: Vec::new(),
    };
    let problem = |line, message| problem_at(path, line, message);
    for_each_entry(text, |entry| {
        if entry.unclosed_parenthesis {
            return Err(problem(entry.first_line, "'(' is never closed".to_string()));
        }
        if !entry.is_empty() {
            prepared.entry_starts.push(prepared.source_lines.len() + 1);
        }
        let directive =
            |name: &str| entry.is_control() && entry.tokens[0].eq_ignore_ascii_case(name);
        if directive("$GENERATE") {
            for line in generate::expand(&entry.tokens)
                .map_err(|message| problem(entry.first_line, message))?
            {
                prepared.text.push_str(&line);
                prepared.source_lines.push(entry.first_line);
                prepared.entry_lines.push(entry.first_line);
            }
            return Ok(());
        }
        let mut lines = entry.line_count();
        if directive("$INCLUDE") {
            prepared.entry_lines.push(entry.first_line);
        }
        if !entry.is_empty() && !entry.is_control() {
            prepared.entry_lines.push(entry.first_line);
            if let Some(rewritten) =
                rdata_text::rewrite(entry).map_err(|message| problem(entry.first_line, message))?
            {
                // Same number of lines as the original, so later lines keep their numbers.
                prepared.text.push_str(&rewritten);
                prepared.text.push('\n');
                prepared
                    .text
                    .push_str(&"\n".repeat(lines.saturating_sub(1)));
                lines = lines.max(1);
                prepared
                    .source_lines
                    .extend((0..lines).map(|offset| entry.first_line + offset));
                return Ok(());
            }
        }
        prepared.text.push_str(entry.text);
        prepared
            .source_lines
            .extend((0..lines.max(1)).map(|offset| entry.first_line + offset));
        Ok(())
    })?;
    // The scanner wants a final line feed.
    if !prepared.text.ends_with('\n') {
        prepared.text.push('\n');
    }
    Ok(prepared)
}

fn problem_at(path: &Path, line: usize, message: String) -> ZoneProblem {
    ZoneProblem {
        file: path.to_path_buf(),
        line,
        message,
    }
}

fn scan_file(
    path: &Path,
    origin: &[u8],
    depth: usize,
    scanned: &mut Scanned,
) -> Result<(), ZoneProblem> {
    let problem = |line, message| problem_at(path, line, message);
    // A device or FIFO (say /dev/zero) could be read forever.
    if std::fs::metadata(path).is_ok_and(|metadata| !metadata.is_file()) {
        return Err(problem(0, "not a regular file".to_string()));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|error| problem(0, format!("cannot read zone file: {error}")))?;
    scan_text(&text, path, origin, depth, scanned)
}

fn scan_text(
    text: &str,
    path: &Path,
    origin: &[u8],
    depth: usize,
    scanned: &mut Scanned,
) -> Result<(), ZoneProblem> {
    let problem = |line, message| problem_at(path, line, message);
    let prepared = prepare(text, path)?;
    let origin_name = Name::from_octets(Bytes::copy_from_slice(origin))
        .map_err(|_| problem(0, "bad origin".into()))?;
    let mut scanner = Zonefile::from(prepared.text.as_str());
    drop(prepared.text);
    let file_index = scanned.files.len() as u32;
    scanned.files.push(path.to_path_buf());
    scanner.set_origin(origin_name);
    scanner.set_default_class(Class::IN);
    let mut entry_index = 0;
    loop {
        // The scanner is another crate's code: a defect in it must fail this
        // zone (fuzzing found one, see fuzz/README.md), not the server.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scanner.next_entry()));
        let Ok(outcome) = outcome else {
            let line = prepared
                .entry_lines
                .get(entry_index)
                .or(prepared.entry_lines.last())
                .copied()
                .unwrap_or(0);
            return Err(problem(
                line,
                "the zone scanner failed on this entry (a defect in the domain crate)".to_string(),
            ));
        };
        let entry = match outcome {
            Ok(Some(entry)) => entry,
            Ok(None) => return Ok(()),
            Err(error) => {
                // The scanner's errors read "line:col: message" in the prepared
                // text, where the line may be past the entry at fault: report
                // the start of the last entry that began at or before it.
                let text = error.to_string();
                let mut parts = text.splitn(3, ':');
                let reported = parts
                    .next()
                    .and_then(|l| l.parse::<usize>().ok())
                    .unwrap_or(0);
                let line = prepared
                    .entry_starts
                    .iter()
                    .copied()
                    .filter(|start| *start <= reported)
                    .max()
                    .unwrap_or(reported);
                let message = parts.nth(1).map_or(text.as_str(), str::trim).to_string();
                let source_line = prepared
                    .source_lines
                    .get(line.saturating_sub(1))
                    .copied()
                    .unwrap_or(line);
                return Err(problem(source_line, message));
            }
        };
        let line = prepared
            .entry_lines
            .get(entry_index)
            .or(prepared.entry_lines.last())
            .copied()
            .unwrap_or(0);
        entry_index += 1;
        match entry {
            ScannedEntry::Record(record) => {
                let mut owner = Vec::with_capacity(32);
                let _ = record.owner().compose(&mut owner);
                owner.make_ascii_lowercase();
                let mut rdata = Vec::new();
                let _ = record.data().compose_rdata(&mut rdata);
                scanned.records.push(SourcedRecord {
                    owner,
                    rtype: record.rtype().to_int(),
                    class: record.class().to_int(),
                    ttl: record.ttl().as_secs(),
                    rdata,
                    file: file_index,
                    line: line as u32,
                });
            }
            ScannedEntry::Include {
                path: included,
                origin: include_origin,
            } => {
                if depth + 1 > INCLUDE_DEPTH_MAX {
                    return Err(problem(
                        line,
                        format!("$INCLUDE nested deeper than {INCLUDE_DEPTH_MAX} files"),
                    ));
                }
                let included = PathBuf::from(included.to_string());
                let included = if included.is_absolute() {
                    included
                } else {
                    path.parent().unwrap_or(Path::new(".")).join(included)
                };
                let include_origin = match include_origin {
                    Some(name) => name.as_slice().to_vec(),
                    None => scanner
                        .origin()
                        .map(|name| name.as_slice().to_vec())
                        .unwrap_or_else(|_| origin.to_vec()),
                };
                if let Err(error) = std::fs::metadata(&included) {
                    return Err(problem(
                        line,
                        format!("cannot read $INCLUDE file {}: {error}", included.display()),
                    ));
                }
                scan_file(
                    &included,
                    &name::to_lowercase(&include_origin),
                    depth + 1,
                    scanned,
                )?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::name::from_text;
    use crate::wire::rtype;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn temp_dir(tag: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("ringdns-zone-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    const HEAD: &str = "$ORIGIN example.\n$TTL 300\n@ SOA ns hostmaster 1 7200 900 1209600 60\n  NS ns\nns A 192.0.2.1\n";

    #[test]
    fn loads_includes_generate_and_extra_types() {
        let dir = temp_dir("ok");
        std::fs::write(dir.0.join("sub.inc"), "host A 192.0.2.9\n").unwrap();
        let zone_text = format!(
            "{HEAD}$INCLUDE sub.inc inc.example.\n$GENERATE 1-3 g$ A 10.0.0.$\nwhere LOC 52 22 23 N 4 53 32 E -2m\nweb URI 10 1 \"https://x/\"\nw A 192.0.2.2\nw A 192.0.2.2\n"
        );
        std::fs::write(dir.0.join("db"), zone_text).unwrap();
        let loaded = load_file(&from_text("example").unwrap(), &dir.0.join("db")).unwrap();
        let zone = loaded.zone;
        assert!(
            zone.rrset(&from_text("host.inc.example").unwrap(), rtype::A)
                .is_some()
        );
        assert_eq!(
            zone.rrset(&from_text("g2.example").unwrap(), rtype::A)
                .unwrap()
                .rdatas,
            vec![vec![10, 0, 0, 2]]
        );
        assert!(
            zone.rrset(&from_text("where.example").unwrap(), 29)
                .is_some()
        );
        assert_eq!(
            zone.rrset(&from_text("web.example").unwrap(), 256)
                .unwrap()
                .rdatas[0]
                .len(),
            14
        );
        // Duplicates collapse silently.
        assert_eq!(
            zone.rrset(&from_text("w.example").unwrap(), rtype::A)
                .unwrap()
                .rdatas
                .len(),
            1
        );
        assert_eq!(zone.serial(), 1);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn errors_name_file_and_line() {
        let dir = temp_dir("bad");
        let path = dir.0.join("db");
        let cases = [
            (format!("{HEAD}\n\nbad A 1.2.3\n"), 8, ""),
            (format!("{HEAD}www CNAME ns\nwww A 192.0.2.3\n"), 6, "CNAME"),
            (format!("{HEAD}other.test. A 192.0.2.3\n"), 6, "outside"),
            ("$ORIGIN example.\nns A 192.0.2.1\n".to_string(), 1, "SOA"),
            (
                "$ORIGIN example.\n@ SOA ns hm 1 2 3 4 5\nns A 192.0.2.1\n".to_string(),
                2,
                "NS",
            ),
            (format!("{HEAD}x.ns SOA ns hm 1 2 3 4 5\n"), 6, "SOA"),
            (format!("{HEAD}$GENERATE 9-1 a A 1.1.1.1\n"), 6, "range"),
            (format!("{HEAD}$INCLUDE missing.inc\n"), 6, "cannot read"),
            (
                format!("{HEAD}$INCLUDE /dev/zero\n"),
                0,
                "not a regular file",
            ),
        ];
        for (text, line, needle) in cases {
            std::fs::write(&path, &text).unwrap();
            let problems = load_file(&from_text("example").unwrap(), &path).unwrap_err();
            let first = &problems[0];
            assert_eq!(first.line, line, "{text}: {problems:?}");
            assert!(first.message.contains(needle), "{text}: {problems:?}");
        }
    }

    #[test]
    fn warns_about_missing_glue() {
        let dir = temp_dir("glue");
        let path = dir.0.join("db");
        std::fs::write(
            &path,
            format!("{HEAD}sub NS ns.sub\nsub NS ns.other.test.\n"),
        )
        .unwrap();
        let loaded = load_file(&from_text("example").unwrap(), &path).unwrap();
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert_eq!(loaded.warnings[0].line, 6);
        assert!(loaded.warnings[0].message.contains("glue"));
    }
}
