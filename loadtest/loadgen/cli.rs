//! Command line: dnsperf-like flag names.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

pub const HELP: &str = "\
ringdns-loadgen: a DNS load generator that costs little CPU per query

usage: ringdns-loadgen -d FILE [options]

  -s ADDR      server address, IPv4 or IPv6 (or a host name)    [127.0.0.1]
  -p PORT      server port                                      [53]
  -d FILE      query file (dnsperf format): one `name type` per line,
               e.g. `www.example.com A`; `#` comments and blank lines
               are skipped; names are taken as absolute; types are
               mnemonics (A, AAAA, MX, HTTPS, ...) or TYPEnnn. Bad lines
               are reported and skipped. Queries go out in file order,
               looping.
  -l SECONDS   run time; the tool always stops by itself after it plus
               the final drain (at most 1 s)                    [10]
  -Q RATE      open loop: send RATE queries/s on schedule (token
               bucket), whether replies come or not. Without -Q: closed
               loop at maximum speed, see -q.
  -q N         closed loop: queries kept in flight per socket   [64]
  -c SOCKETS   UDP sockets (source ports), dealt out to threads [8]
  -T THREADS   sender/receiver threads, each with its sockets   [1]
  --cpus LIST  pin thread i to the i-th CPU of LIST (e.g. 1 or 2-3,6)
  -t SECONDS   a query unanswered this long is counted lost     [1.0]
  -e SIZE      add an EDNS OPT record with this UDP payload size,
               e.g. -e 1232                                     [no EDNS]
  -D           set the DO bit (implies -e 1232 if -e is not given)
  -h, --help   this text

Each query carries one question with RD clear. Replies are matched by
(socket, message ID) and checked: QR set, exactly one question, equal to
the query's (name case-insensitively). Replies that match no query in
flight are `unexpected`; replies to a query in flight that fail the
checks are `bad`. sent = received + bad + lost.

The generator sends with sendmmsg and receives with recvmmsg (up to 64
datagrams per call) and works in ticks of 20 us to 1 ms, sized to about
one batch per tick, instead of waking up for every reply. Latency is
from the query's send (interpolated across its sendmmsg call) to the
kernel's receive timestamp of the reply (SO_TIMESTAMPNS), so it does not
depend on when the generator gets round to reading it.

A progress line goes to stderr every second; the final report goes to
stdout and ends with one machine-readable line:

RESULT sent= received= lost= unexpected= qps= noerror= nxdomain= refused=
  servfail= formerr= other_rcode= tc= p50_us= p90_us= p99_us= p999_us=
  max_us= duration_s= bad= io_errors= cpu_s=

(one line; qps = received / duration_s). See loadtest/README.md.
";

/// Parsed command line.
#[derive(Debug)]
pub struct Args {
    pub server: SocketAddr,
    pub file: PathBuf,
    pub seconds: f64,
    pub rate: Option<f64>,
    pub in_flight: u32,
    pub sockets: usize,
    pub threads: usize,
    pub cpus: Vec<usize>,
    pub timeout: f64,
    pub edns: Option<u16>,
    pub dnssec_ok: bool,
}

/// `Ok(None)` means: help was asked for.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut host = String::from("127.0.0.1");
    let mut port: u16 = 53;
    let mut file = None;
    let mut seconds = 10.0;
    let mut rate = None;
    let mut in_flight = 64;
    let mut sockets = 8;
    let mut threads = 1;
    let mut cpus = Vec::new();
    let mut timeout = 1.0;
    let mut edns = None;
    let mut dnssec_ok = false;

    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        // Flags take their value as the next argument, or attached to a
        // short flag (`-p5399`) or after `=` on a long one (`--cpus=1`).
        let (flag, attached) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ if arg.len() > 2 && arg.starts_with('-') && !arg.starts_with("--") => {
                (arg[..2].to_string(), Some(arg[2..].to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            attached
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs {what}"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "-s" => host = value("an address")?,
            "-p" => port = number(&flag, &value("a port")?)?,
            "-d" => file = Some(PathBuf::from(value("a file name")?)),
            "-l" => seconds = positive(&flag, &value("seconds")?)?,
            "-Q" => rate = Some(positive(&flag, &value("a rate")?)?),
            "-q" => in_flight = number(&flag, &value("a count")?)?,
            "-c" => sockets = number(&flag, &value("a count")?)?,
            "-T" => threads = number(&flag, &value("a count")?)?,
            "--cpus" => cpus = cpu_list(&value("a CPU list")?)?,
            "-t" => timeout = positive(&flag, &value("seconds")?)?,
            "-e" => edns = Some(number(&flag, &value("a payload size")?)?),
            "-D" if attached.is_none() => dnssec_ok = true,
            _ => return Err(format!("unknown argument `{arg}` (see --help)")),
        }
    }
    let file = file.ok_or("-d FILE is required (see --help)")?;
    if sockets == 0 || threads == 0 {
        return Err("-c and -T must be at least 1".into());
    }
    if threads > sockets {
        return Err(format!(
            "-T {threads} needs at least as many sockets (-c {sockets})"
        ));
    }
    if in_flight == 0 || in_flight > 65535 {
        return Err("-q must be 1 to 65535".into());
    }
    if dnssec_ok && edns.is_none() {
        edns = Some(1232);
    }
    Ok(Some(Args {
        server: resolve(&host, port)?,
        file,
        seconds,
        rate,
        in_flight,
        sockets,
        threads,
        cpus,
        timeout,
        edns,
        dnssec_ok,
    }))
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag}: `{v}` is not a valid number"))
}

fn positive(flag: &str, v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!("{flag}: `{v}` is not a positive number")),
    }
}

/// `1`, `0-3`, `0,2-3`.
fn cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let bad = || format!("--cpus: `{s}` is not a CPU list like 0-3,6");
    let mut v = Vec::new();
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if a > b || b >= 1024 {
            return Err(bad());
        }
        v.extend(a..=b);
    }
    Ok(v)
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (bare, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("-s: cannot resolve `{host}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Option<Args>, String> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn flags() {
        let a = p("-s ::1 -p5399 -d q.txt -Q 20000 -c 4 -T 2 --cpus 1,2-3 -D -t 0.5")
            .unwrap()
            .unwrap();
        assert_eq!(a.server, "[::1]:5399".parse().unwrap());
        assert_eq!(a.rate, Some(20000.0));
        assert_eq!((a.sockets, a.threads), (4, 2));
        assert_eq!(a.cpus, vec![1, 2, 3]);
        assert_eq!(a.edns, Some(1232));
        assert!(a.dnssec_ok);
        assert_eq!(a.timeout, 0.5);
        let a = p("-d q.txt --cpus=0").unwrap().unwrap();
        assert_eq!(a.server, "127.0.0.1:53".parse().unwrap());
        assert_eq!((a.seconds, a.in_flight, a.edns), (10.0, 64, None));
        assert!(p("--help").unwrap().is_none());
        assert!(p("-d q.txt -T 3 -c 2").is_err());
        assert!(p("-d q.txt -l 0").is_err());
        assert!(p("-d q.txt -x").is_err());
        assert!(p("-p 53").is_err());
    }
}
