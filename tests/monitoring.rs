//! The shipped monitoring files against the real binary: the alert rules
//! pass `promtool check rules`, a live scrape passes `promtool check
//! metrics`, and every metric the Grafana dashboard and the alerts use is
//! one the server exports.

mod common;

use std::io::Write;

use std::process::{Command, Stdio};

use common::*;
use domain::base::iana::Rtype;

const ZONE: &str = "$ORIGIN example.test.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n NS ns1\nns1 A 192.0.2.1\n";

/// Metric names (`coredns_…`, `ringdns_…`) mentioned in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for prefix in ["coredns_", "ringdns_"] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

#[test]
fn alerts_dashboard_and_exposition_check_out() {
    let Some(promtool) = require_tool("promtool") else {
        return;
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let rules = Command::new(&promtool)
        .args(["check", "rules", &format!("{root}/monitoring/alerts.yml")])
        .output()
        .unwrap();
    assert!(
        rules.status.success(),
        "{}{}",
        String::from_utf8_lossy(&rules.stdout),
        String::from_utf8_lossy(&rules.stderr)
    );

    let dir = TempDir::new("monitoring");
    dir.write("db", ZONE);
    let (dns, metrics_port) = (free_port(), free_port());
    let server = start_ringdns(
        &format!(
            "example.test:{dns} {{\n    bind 127.0.0.1\n    file db\n    prometheus 127.0.0.1:{metrics_port}\n}}\n"
        ),
        dir.path(),
    );
    query_udp(
        server.addr,
        "ns1.example.test.",
        Rtype::A,
        &QueryOpts::with_edns(1232),
    );
    query_tcp(
        server.addr,
        "nope.example.test.",
        Rtype::A,
        &QueryOpts::default(),
    );
    let (_, metrics) = http_get(
        format!("127.0.0.1:{metrics_port}").parse().unwrap(),
        "/metrics",
    );

    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics:\n{}{}\n{metrics}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // The histograms count the UDP query (duration: every worker batch).
    let value = |prefix: &str| -> u64 {
        metrics
            .lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix}:\n{metrics}"))
    };
    assert!(value("coredns_dns_request_duration_seconds_count{") >= 1);
    // As many UDP sizes as UDP requests (the readiness probe's too).
    let udp_requests: u64 = metrics
        .lines()
        .filter(|line| {
            line.starts_with("coredns_dns_requests_total{") && line.contains("proto=\"udp\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(udp_requests >= 2);
    let udp_sizes = metrics
        .lines()
        .find(|line| {
            line.starts_with("coredns_dns_request_size_bytes_count{")
                && line.contains("proto=\"udp\"")
        })
        .and_then(|line| line.rsplit(' ').next()?.parse::<u64>().ok());
    assert_eq!(udp_sizes, Some(udp_requests), "{metrics}");
    assert!(value("coredns_dns_response_size_bytes_sum{") > 12);
    let exported: Vec<String> = metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .map(String::from)
        .collect();
    for file in ["monitoring/grafana-dashboard.json", "monitoring/alerts.yml"] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let used = metric_names(&text);
        assert!(!used.is_empty(), "{file} uses no metric?");
        for name in used {
            assert!(
                exported.contains(&name),
                "{file} uses {name}, which ringdns does not export:\n{metrics}"
            );
        }
    }
}
