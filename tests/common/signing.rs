//! Signing test zones with BIND's `dnssec-keygen` and `dnssec-signzone`,
//! for the DNSSEC tests (differential, delv, `check-zone --dnssec`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How a test zone proves denial of existence.
#[derive(Clone, Copy, Debug)]
pub enum Denial {
    Nsec,
    Nsec3,
    Nsec3OptOut,
}

/// How to sign: a fresh KSK and ZSK of `algorithm`, signatures valid from
/// `inception` to `expiration` (YYYYMMDDHHMMSS), `denial`.
#[derive(Clone, Copy, Debug)]
pub struct Signing<'a> {
    pub algorithm: &'a str,
    pub denial: Denial,
    pub inception: &'a str,
    pub expiration: &'a str,
    /// `-O full`: one record per line, so tests can find and edit records.
    pub one_record_per_line: bool,
}

impl Signing<'_> {
    /// ECDSA P-256, valid 2024–2034, BIND's default layout.
    pub fn ecdsa(denial: Denial) -> Signing<'static> {
        Signing {
            algorithm: "ECDSAP256SHA256",
            denial,
            inception: "20240101000000",
            expiration: "20340101000000",
            one_record_per_line: false,
        }
    }
}

/// Signs `zone_text` for `origin` in `dir`. Returns the signed file and the
/// KSK's DNSKEY record text, or `None` (after a skip notice) without BIND's
/// tools.
pub fn sign_zone(
    dir: &Path,
    origin: &str,
    zone_text: &str,
    signing: Signing<'_>,
) -> Option<(PathBuf, String)> {
    let (Some(keygen), Some(signzone)) = (
        super::require_tool("dnssec-keygen"),
        super::require_tool("dnssec-signzone"),
    ) else {
        return None;
    };
    let unsigned = dir.join("zone.unsigned");
    fs::write(&unsigned, zone_text).expect("write zone");
    let keygen_run = |ksk: bool| -> String {
        let mut command = Command::new(&keygen);
        command
            .current_dir(dir)
            .args(["-q", "-a", signing.algorithm, "-K"])
            .arg(dir);
        if ksk {
            command.args(["-f", "KSK"]);
        }
        let output = command.arg(origin).output().expect("run dnssec-keygen");
        assert!(
            output.status.success(),
            "dnssec-keygen -a {}: {}",
            signing.algorithm,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let ksk = keygen_run(true);
    keygen_run(false);
    let signed = dir.join("zone.signed");
    let mut command = Command::new(&signzone);
    command.current_dir(dir).args(["-q", "-S"]);
    if signing.one_record_per_line {
        command.args(["-O", "full"]);
    }
    command.arg("-K").arg(dir).args([
        "-s",
        signing.inception,
        "-e",
        signing.expiration,
        "-o",
        origin,
    ]);
    // dnssec-signzone's own check of the result wants signatures valid now.
    if signing.expiration < "2025" {
        command.arg("-P");
    }
    command.arg("-f").arg(&signed);
    match signing.denial {
        Denial::Nsec => {}
        Denial::Nsec3 => {
            command.args(["-3", "cafe", "-H", "2"]);
        }
        Denial::Nsec3OptOut => {
            command.args(["-3", "-", "-A"]);
        }
    }
    let output = command
        .arg(&unsigned)
        .output()
        .expect("run dnssec-signzone");
    assert!(
        output.status.success(),
        "dnssec-signzone: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = fs::read_to_string(dir.join(format!("{ksk}.key"))).expect("read KSK");
    let dnskey = key
        .lines()
        .find(|line| !line.starts_with(';') && line.contains("DNSKEY"))
        .expect("DNSKEY line in the KSK file")
        .to_string();
    Some((signed, dnskey))
}
