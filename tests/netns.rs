//! Two hosts for real: a primary and a secondary in two network namespaces
//! joined by a veth pair, each on its own address and port 53, checking
//! the transfer, NOTIFY and the transfer ACL across them. Needs root (CI
//! runs as root); skipped with a message otherwise.

mod common;

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::compare::subdir;
use common::{ServerProcess, TempDir, require_tool, wait_for};

const PRIMARY: &str = "10.77.0.1";
const SECONDARY: &str = "10.77.0.2";
/// A second address on the secondary's host, not in the transfer list.
const STRANGER: &str = "10.77.0.3";

/// Two namespaces and their veth pair, deleted on drop (which also
/// removes the veth pair).
struct Namespaces {
    primary: String,
    secondary: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|error| format!("ip: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Namespaces {
    fn create() -> Result<Namespaces, String> {
        let tag = std::process::id() % 100_000;
        let namespaces = Namespaces {
            primary: format!("ringdns-p{tag}"),
            secondary: format!("ringdns-s{tag}"),
        };
        let (p, s) = (namespaces.primary.as_str(), namespaces.secondary.as_str());
        let (veth_p, veth_s) = (format!("rp{tag}"), format!("rs{tag}"));
        ip(&["netns", "add", p])?;
        ip(&["netns", "add", s])?;
        ip(&[
            "link", "add", &veth_p, "netns", p, "type", "veth", "peer", "name", &veth_s, "netns", s,
        ])?;
        ip(&[
            "-n",
            p,
            "addr",
            "add",
            &format!("{PRIMARY}/24"),
            "dev",
            &veth_p,
        ])?;
        ip(&[
            "-n",
            s,
            "addr",
            "add",
            &format!("{SECONDARY}/24"),
            "dev",
            &veth_s,
        ])?;
        ip(&[
            "-n",
            s,
            "addr",
            "add",
            &format!("{STRANGER}/24"),
            "dev",
            &veth_s,
        ])?;
        for (namespace, veth) in [(p, &veth_p), (s, &veth_s)] {
            ip(&["-n", namespace, "link", "set", "lo", "up"])?;
            ip(&["-n", namespace, "link", "set", veth, "up"])?;
        }
        Ok(namespaces)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.primary]);
        let _ = ip(&["netns", "del", &self.secondary]);
    }
}

/// kdig run inside `namespace`, from `source` when given.
fn kdig_in(namespace: &str, server: &str, source: Option<&str>, args: &[&str]) -> String {
    let kdig = common::find_tool("kdig").expect("kdig");
    let mut command = Command::new("ip");
    command.args(["netns", "exec", namespace]).arg(kdig);
    command.arg(format!("@{server}"));
    if let Some(source) = source {
        command.args(["-b", source]);
    }
    let output = command
        .args(["+retry=0", "+timeout=1"])
        .args(args)
        .output()
        .expect("kdig");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn serial_in(namespace: &str, server: &str) -> Option<u32> {
    kdig_in(namespace, server, None, &["+short", "example.com", "SOA"])
        .lines()
        .next()?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

fn zone(serial: u32, www: &str) -> String {
    format!(
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster {serial} 3600 600 86400 300\n@ NS ns1\n@ NS ns2\nns1 A {PRIMARY}\nns2 A {SECONDARY}\nwww A {www}\n"
    )
}

/// Starts ringdns inside `namespace` with `corefile` (written to `dir`).
fn ringdns_in(namespace: &str, dir: &Path, corefile: &str) -> ServerProcess {
    let conf = dir.join("Corefile");
    std::fs::write(&conf, corefile).unwrap();
    let binary = OsStr::new(common::ringdns_bin());
    // `ip netns exec` execs the program, so the PID is ringdns's own.
    ServerProcess::spawn(
        "ringdns",
        "ip",
        [
            OsStr::new("netns"),
            OsStr::new("exec"),
            OsStr::new(namespace),
            binary,
            OsStr::new("-conf"),
            conf.as_os_str(),
        ],
        dir,
        SocketAddr::from(([127, 0, 0, 1], 53)),
    )
}

#[test]
fn primary_and_secondary_on_two_hosts_in_network_namespaces() {
    if require_tool("kdig").is_none()
        || require_tool("dig").is_none()
        || require_tool("ip").is_none()
    {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: network namespaces need root");
        return;
    }
    let namespaces = match Namespaces::create() {
        Ok(namespaces) => namespaces,
        Err(error) => {
            eprintln!("SKIP: cannot create network namespaces here: {error}");
            return;
        }
    };
    let dir = TempDir::new("netns");
    let (primary_dir, secondary_dir) = (subdir(&dir, "primary"), subdir(&dir, "secondary"));
    let zone_file = primary_dir.join("db.example.com");
    std::fs::write(&zone_file, zone(1, "192.0.2.1")).unwrap();
    let primary = ringdns_in(
        &namespaces.primary,
        &primary_dir,
        &format!(
            "example.com {{\n    bind {PRIMARY}\n    file {} {{\n        reload 1s\n    }}\n    transfer {{\n        to {SECONDARY}\n    }}\n}}\n",
            zone_file.display()
        ),
    );
    let secondary = ringdns_in(
        &namespaces.secondary,
        &secondary_dir,
        &format!(
            "example.com {{\n    bind {SECONDARY}\n    secondary {{\n        transfer from {PRIMARY}\n    }}\n    storage {}\n}}\n",
            secondary_dir.join("data").display()
        ),
    );
    let context = || format!("{}\n{}", primary.output(), secondary.output());

    // The secondary's host reaches the primary on port 53 and transfers.
    assert!(
        wait_for(Duration::from_secs(15), || serial_in(
            &namespaces.secondary,
            SECONDARY
        ) == Some(1)),
        "{}",
        context()
    );
    // NOTIFY across the hosts: an edit arrives without waiting for refresh.
    std::fs::write(&zone_file, zone(2, "192.0.2.2")).unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || serial_in(
            &namespaces.secondary,
            SECONDARY
        ) == Some(2)),
        "{}",
        context()
    );
    let www = kdig_in(
        &namespaces.secondary,
        SECONDARY,
        None,
        &["+short", "www.example.com", "A"],
    );
    assert_eq!(www.trim(), "192.0.2.2");
    assert!(
        secondary
            .stderr()
            .contains(&format!("NOTIFY for example.com. from {PRIMARY}"))
    );

    // The ACL: the secondary's address may transfer, another address on
    // the same host may not.
    let allowed = kdig_in(
        &namespaces.secondary,
        PRIMARY,
        Some(SECONDARY),
        &["example.com", "AXFR"],
    );
    assert!(allowed.contains("192.0.2.2"), "{allowed}\n{}", context());
    let refused = kdig_in(
        &namespaces.secondary,
        PRIMARY,
        Some(STRANGER),
        &["example.com", "AXFR"],
    );
    assert!(!refused.contains("192.0.2.2"), "{refused}");
    assert!(
        primary
            .stderr()
            .contains(&format!("AXFR of example.com. from {STRANGER}")),
        "{}",
        context()
    );
    // A NOTIFY from the stranger address is refused by the secondary.
    let dig = common::find_tool("dig").expect("dig");
    let notify = Command::new("ip")
        .args(["netns", "exec", &namespaces.secondary])
        .arg(dig)
        .args([
            &format!("@{SECONDARY}"),
            "-b",
            STRANGER,
            "+opcode=notify",
            "+tries=1",
        ])
        .args(["+time=1", "example.com", "SOA"])
        .output()
        .expect("dig");
    let notify = String::from_utf8_lossy(&notify.stdout);
    assert!(
        notify.contains("status: REFUSED"),
        "{notify}\n{}",
        context()
    );
    drop(primary);
    drop(secondary);
}
