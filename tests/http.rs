//! The HTTP endpoints of the running binary: `/metrics` counts exactly the
//! queries sent, by type, rcode, protocol and family, with CoreDNS's names;
//! `/health` answers OK; `/ready` is 200 only when every zone loaded.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use domain::base::iana::Rtype;

const ZONE: &str = "$ORIGIN example.test.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.80\n";

/// The value of the sample whose name and labels start with `series`.
fn sample(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#') && line.starts_with(series))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn metrics_health_and_ready() {
    let dir = TempDir::new("http");
    dir.write("db", ZONE);
    dir.write("db.broken", "this is not a zone\n");
    let (dns, metrics_port, health_port, ready_port) =
        (free_port(), free_port(), free_port(), free_port());
    let text = format!(
        "example.test:{dns} {{\n    bind 127.0.0.1\n    file db\n    prometheus 127.0.0.1:{metrics_port}\n    health 127.0.0.1:{health_port}\n    ready 127.0.0.1:{ready_port}\n}}\n"
    );
    let server = start_ringdns(&text, dir.path());
    let address = |port: u16| -> SocketAddr { format!("127.0.0.1:{port}").parse().unwrap() };

    for _ in 0..5 {
        query_udp(
            server.addr,
            "www.example.test.",
            Rtype::A,
            &QueryOpts::default(),
        );
    }
    for _ in 0..3 {
        query_udp(
            server.addr,
            "nope.example.test.",
            Rtype::MX,
            &QueryOpts::with_edns(1232),
        );
    }
    for _ in 0..2 {
        query_tcp(
            server.addr,
            "www.example.test.",
            Rtype::AAAA,
            &QueryOpts::default(),
        );
    }
    // The readiness probe of start_ringdns also asked SOA queries over UDP.
    let (status, metrics) = http_get(address(metrics_port), "/metrics");
    assert_eq!(status, 200, "{metrics}");
    // CoreDNS's `zone` label: the server block's zone the name is in.
    let series = |labels: &str| {
        format!(
            "coredns_dns_requests_total{{server=\"dns://:{dns}\",zone=\"example.test.\",view=\"\",{labels}}}"
        )
    };
    assert_eq!(
        sample(&metrics, &series("proto=\"udp\",family=\"1\",type=\"A\"")),
        5,
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, &series("proto=\"udp\",family=\"1\",type=\"MX\"")),
        3
    );
    assert_eq!(
        sample(
            &metrics,
            &series("proto=\"tcp\",family=\"1\",type=\"AAAA\"")
        ),
        2
    );
    assert_eq!(
        sample(&metrics, "coredns_dns_responses_total{")
            - sample(&metrics, &series("proto=\"udp\",family=\"1\",type=\"SOA\"")),
        10
    );
    assert_eq!(
        sample(
            &metrics,
            &format!(
                "coredns_dns_responses_total{{server=\"dns://:{dns}\",zone=\"example.test.\",view=\"\",rcode=\"NXDOMAIN\""
            )
        ),
        3
    );
    assert_eq!(
        sample(&metrics, "ringdns_zone_serial{zone=\"example.test.\"}"),
        1
    );
    assert_eq!(
        sample(&metrics, "ringdns_zone_loaded{zone=\"example.test.\"}"),
        1
    );
    assert!(sample(&metrics, "ringdns_worker_received_total") >= 8);
    assert!(metrics.contains("# TYPE coredns_dns_requests_total counter"));

    assert_eq!(
        http_get(address(health_port), "/health"),
        (200, "OK".to_string())
    );
    assert_eq!(http_get(address(ready_port), "/ready").0, 200);
    assert_eq!(
        http_get(address(health_port), "/metrics").0,
        404,
        "each address serves only its endpoints"
    );
    drop(server);

    // A zone that fails to load: the server runs, but is not ready.
    let (dns, ready_port) = (free_port(), free_port());
    let text = format!(
        "example.test:{dns} {{\n    bind 127.0.0.1\n    file db\n    ready 127.0.0.1:{ready_port}\n}}\nbroken.test:{dns} {{\n    bind 127.0.0.1\n    file db.broken\n}}\n"
    );
    let _server = start_ringdns(&text, dir.path());
    assert_eq!(http_get(address(ready_port), "/ready").0, 503);
}

/// Kills the child on drop, so the test leaves nothing behind on any path.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn systemd_readiness_sigterm_and_lameduck() {
    let dir = TempDir::new("http-signals");
    dir.write("db", ZONE);
    let (dns, health_port) = (free_port(), free_port());
    dir.write(
        "Corefile",
        format!("example.test:{dns} {{\n    bind 127.0.0.1\n    file db\n    health 127.0.0.1:{health_port} {{\n        lameduck 1s\n    }}\n}}\n"),
    );
    let notify_path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let child = std::process::Command::new(ringdns_bin())
        .args(["-conf", "Corefile"])
        .current_dir(dir.path())
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Child(child);
    // Type=notify: READY=1 once the sockets are open and zones served.
    let mut buffer = [0u8; 64];
    let length = notify.recv(&mut buffer).unwrap();
    assert_eq!(&buffer[..length], b"READY=1");
    let health: SocketAddr = format!("127.0.0.1:{health_port}").parse().unwrap();
    assert_eq!(http_get(health, "/health").0, 200);

    // SIGTERM: STOPPING=1, unhealthy during the lame duck second, then exit 0.
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let length = notify.recv(&mut buffer).unwrap();
    assert_eq!(&buffer[..length], b"STOPPING=1");
    assert_eq!(http_get(health, "/health").0, 503);
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the lame duck period was skipped"
    );
}
