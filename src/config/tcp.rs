//! The `tcp` directive: limits on DNS over TCP, named after Knot's
//! `tcp-*` settings (`tcp-max-clients`, `tcp-idle-timeout`,
//! `tcp-io-timeout`), once per process.
//!
//! ```text
//! tcp {
//!     max-connections 65536     # open at once; at the cap the longest idle one is closed
//!     max-per-address 64        # from one client address; more are refused
//!     idle-timeout 10s          # between messages
//!     message-timeout 2s        # for a message, from its first byte
//! }
//! ```

use std::time::Duration;

use super::super::syntax::Line;
use super::super::{TcpConfig, values};
use super::Resolver;

/// More connections than this is a typo: it is past what one process's
/// descriptors (fs.nr_open, 2^20 by default) allow.
const CONNECTIONS_MAX: usize = 1 << 20;
/// Timeouts are at least a millisecond (0 would close every connection at
/// once) and at most an hour (RFC 7766 §6.2.3: seconds, not hours).
const TIMEOUT_MIN: Duration = Duration::from_millis(1);
const TIMEOUT_MAX: Duration = Duration::from_secs(3600);

/// Each setting with an example, for messages.
const SETTINGS: [(&str, &str); 4] = [
    ("max-connections", "max-connections 65536"),
    ("max-per-address", "max-per-address 64"),
    ("idle-timeout", "idle-timeout 10s"),
    ("message-timeout", "message-timeout 2s"),
];

impl Resolver<'_> {
    /// `tcp { SETTING VALUE … }`, at most once: one TCP server per process.
    pub(super) fn tcp(&mut self, line: &Line) {
        let name = line.name();
        if let Some((_, first)) = &self.tcp {
            let message = format!(
                "only one 'tcp' directive is allowed; the first is at {}:{}",
                first.file.display(),
                first.line
            );
            self.error(name, message);
            return;
        }
        if let Some(arg) = line.args().first() {
            self.error(
                arg,
                "'tcp' takes no arguments; expected 'tcp {' with settings like 'idle-timeout 10s' inside",
            );
        }
        let mut tcp = TcpConfig::default();
        let Some(block) = &line.block else {
            self.error(
                name,
                "expected '{' after 'tcp', with settings like 'max-connections 65536' inside",
            );
            self.tcp = Some((tcp, name.clone()));
            return;
        };
        self.for_each_setting(
            block,
            "tcp",
            &SETTINGS,
            |resolver, setting, known, example| {
                let key = setting.name();
                let ([value], None) = (setting.args(), &setting.block) else {
                    resolver.error(key, format!("expected one value: '{example}'"));
                    return;
                };
                if let Err(message) = tcp_setting(&mut tcp, known, &value.text) {
                    resolver.error(value, format!("{known}: {message}"));
                }
            },
        );
        self.tcp = Some((tcp, name.clone()));
    }
}

/// Sets one `tcp` setting from its value's text.
fn tcp_setting(tcp: &mut TcpConfig, key: &str, text: &str) -> Result<(), String> {
    let timeout = || -> Result<Duration, String> {
        let duration = values::duration(text)?;
        if !(TIMEOUT_MIN..=TIMEOUT_MAX).contains(&duration) {
            return Err(format!(
                "expected a duration from 1ms to 1h, like 10s, got '{text}'"
            ));
        }
        Ok(duration)
    };
    match key {
        "max-connections" => {
            tcp.connections_max = Some(values::count(
                text,
                1,
                CONNECTIONS_MAX,
                "a connection count",
            )?)
        }
        "max-per-address" => {
            tcp.connections_per_address_max = Some(values::count(
                text,
                1,
                CONNECTIONS_MAX,
                "a connection count",
            )?)
        }
        "idle-timeout" => tcp.idle_timeout = Some(timeout()?),
        "message-timeout" => tcp.message_timeout = Some(timeout()?),
        // Only names from SETTINGS reach here.
        _ => return Err(format!("'{key}' is not a tcp setting")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{TcpConfig, parse_str};

    fn corefile(tcp: &str) -> String {
        format!("example.org {{\n    file db\n{tcp}}}\n")
    }

    fn errors(tcp: &str) -> Vec<String> {
        match parse_str(&corefile(tcp), Path::new("Corefile")) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn tcp_settings_are_read_and_default_when_absent() {
        let config = parse_str(&corefile(""), Path::new("Corefile")).unwrap();
        assert_eq!(config.tcp, TcpConfig::default());
        let text = "    tcp {\n        max-connections 1000\n        max-per-address 8\n        idle-timeout 30s\n        message-timeout 500ms\n    }\n";
        let config = parse_str(&corefile(text), Path::new("Corefile")).unwrap();
        assert_eq!(
            config.tcp,
            TcpConfig {
                connections_max: Some(1000),
                connections_per_address_max: Some(8),
                idle_timeout: Some(Duration::from_secs(30)),
                message_timeout: Some(Duration::from_millis(500)),
            }
        );
    }

    #[test]
    fn tcp_errors_name_the_line_and_what_was_expected() {
        assert_eq!(
            errors("    tcp {\n        max-connections 0\n    }\n"),
            ["Corefile:4: max-connections: expected a connection count from 1 to 1048576, got '0'"]
        );
        assert_eq!(
            errors("    tcp {\n        idle-timeout 0\n    }\n"),
            ["Corefile:4: idle-timeout: expected a duration from 1ms to 1h, like 10s, got '0'"]
        );
        assert_eq!(
            errors("    tcp {\n        message-timeout soon\n    }\n"),
            [
                "Corefile:4: message-timeout: expected a duration like 30s, 1m, 1h30m or 500ms, got 'soon'"
            ]
        );
        assert_eq!(
            errors("    tcp {\n        max-clients 5\n    }\n"),
            [
                "Corefile:4: unknown tcp setting 'max-clients'; expected one of: max-connections, max-per-address, idle-timeout, message-timeout"
            ]
        );
        assert_eq!(
            errors("    tcp {\n        max-per-address\n        max-per-address 2\n    }\n"),
            [
                "Corefile:4: expected one value: 'max-per-address 64'",
                "Corefile:5: 'max-per-address' is already set at line 4"
            ]
        );
        assert_eq!(
            errors("    tcp\n"),
            [
                "Corefile:3: expected '{' after 'tcp', with settings like 'max-connections 65536' inside"
            ]
        );
        assert_eq!(
            errors("    tcp {\n    }\n    tcp {\n    }\n"),
            ["Corefile:5: only one 'tcp' directive is allowed; the first is at Corefile:3"]
        );
    }
}
