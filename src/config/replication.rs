//! The replication directives: `transfer` (a primary's secondaries),
//! `secondary` (where a secondary's zones come from), `tsig` (the shared
//! keys that sign both) and `storage` (where journals and transferred
//! zones are kept). CoreDNS syntax, plus `key NAME` after addresses to
//! require TSIG per peer, which CoreDNS cannot express.

use std::net::{IpAddr, SocketAddr};

use super::super::syntax::{Block, Line};
use super::super::values;
use super::super::{
    SecondaryZones, ServerBlock, TransferPeer, TransferZones, TsigRequire, TsigSecret,
    relative_to_file,
};
use super::Resolver;
use crate::config::lexer::Token;

/// Longest SOA timer a secondary accepts from the config (a year), so a
/// typo cannot make a zone live forever.
const TIMER_MAX_SECONDS: u64 = 365 * 24 * 3600;

impl Resolver<'_> {
    /// The zones a directive applies to: its ZONE arguments (each within
    /// the block) or, without any, the block's own zones.
    fn directive_zones(
        &mut self,
        server: &ServerBlock,
        words: &[Token],
        what: &str,
    ) -> Vec<String> {
        let mut zones: Vec<String> = Vec::new();
        if words.is_empty() {
            for key in &server.keys {
                if !zones.contains(&key.zone) {
                    zones.push(key.zone.clone());
                }
            }
        }
        for word in words {
            match values::zone_name(&word.text) {
                Ok(zone)
                    if server
                        .keys
                        .iter()
                        .any(|key| values::is_within(&zone, &key.zone)) =>
                {
                    if !zones.contains(&zone) {
                        zones.push(zone);
                    }
                }
                Ok(zone) => {
                    let message = format!(
                        "{what}: zone '{zone}' is not within this server block's zones; expected a zone at or below one of them"
                    );
                    self.error(word, message);
                }
                Err(message) => self.error(word, format!("{what}: {message}")),
            }
        }
        zones
    }

    /// `transfer [ZONES...] { to ADDR... [key NAME] }`: who may transfer
    /// the zones out (and, for single addresses, who is sent NOTIFY).
    pub(super) fn transfer(&mut self, server: &mut ServerBlock, line: &Line) {
        let name = line.name();
        let zones = self.directive_zones(server, line.args(), "transfer");
        let Some(block) = &line.block else {
            self.error(
                name,
                "expected a block: 'transfer [ZONES...] { to ADDRESS... }'",
            );
            return;
        };
        let mut to = Vec::new();
        let errors_before = self.errors.len();
        for property in &block.lines {
            let property_name = property.name();
            if property_name.text != "to" {
                let message = format!(
                    "unknown property '{}' in 'transfer' block; expected: to",
                    property_name.text
                );
                self.error(property_name, message);
                continue;
            }
            let Some((addresses, key)) = self.addresses_and_key(property, "to") else {
                continue;
            };
            for word in addresses {
                match transfer_peer(&word.text, key.clone()) {
                    Ok(peer) => to.push(peer),
                    Err(message) => self.error(word, message),
                }
            }
        }
        // A 'to' line with errors has said what is wrong already.
        if to.is_empty() && self.errors.len() == errors_before {
            self.error(
                name,
                "expected at least one 'to ADDRESS' in the transfer block",
            );
        }
        server.transfers.push(TransferZones {
            zones,
            to,
            line: name.line,
        });
    }

    /// `secondary [ZONES...] { transfer from ADDR... [key NAME] }`, plus
    /// the SOA timer clamps `refresh-min`, `refresh-max`, `expire-max`.
    pub(super) fn secondary(&mut self, server: &mut ServerBlock, line: &Line) {
        let name = line.name();
        let zones = self.directive_zones(server, line.args(), "secondary");
        let Some(block) = &line.block else {
            self.error(
                name,
                "expected a block: 'secondary [ZONES...] { transfer from ADDRESS... }'",
            );
            return;
        };
        let mut secondary = SecondaryZones {
            zones,
            from: Vec::new(),
            refresh_min: 5,
            refresh_max: 24 * 3600,
            expire_max: TIMER_MAX_SECONDS as u32,
            line: name.line,
        };
        let errors_before = self.errors.len();
        self.secondary_properties(block, &mut secondary);
        if secondary.from.is_empty() && self.errors.len() == errors_before {
            self.error(
                name,
                "expected 'transfer from ADDRESS...' in the secondary block",
            );
        }
        for zone in &secondary.zones {
            let from_file = server.files.iter().any(|file| file.zones.contains(zone));
            let twice = server.secondaries.iter().any(|s| s.zones.contains(zone));
            if from_file || twice {
                let message = format!(
                    "zone '{zone}' already gets its data from another 'file' or 'secondary' directive in this block"
                );
                self.error(name, message);
            }
        }
        server.secondaries.push(secondary);
    }

    fn secondary_properties(&mut self, block: &Block, secondary: &mut SecondaryZones) {
        for property in &block.lines {
            let property_name = property.name();
            match property_name.text.as_str() {
                "transfer" => {
                    let args = property.args();
                    if !args.first().is_some_and(|word| word.is_keyword("from")) {
                        self.error(property_name, "expected 'transfer from ADDRESS...'");
                        continue;
                    }
                    let Some((addresses, key)) = self.addresses_and_key(property, "transfer from")
                    else {
                        continue;
                    };
                    for word in addresses.iter().skip(1) {
                        match values::peer_address(&word.text, 53) {
                            Ok(address) => secondary.from.push((address, key.clone())),
                            Err(message) => self.error(word, message),
                        }
                    }
                }
                "refresh-min" | "refresh-max" | "expire-max" => {
                    let [value] = property.args() else {
                        let message = format!(
                            "expected one duration after '{}', like '{} 30s'",
                            property_name.text, property_name.text
                        );
                        self.error(property_name, message);
                        continue;
                    };
                    let seconds = match values::duration(&value.text) {
                        Ok(duration) if duration.as_secs() <= TIMER_MAX_SECONDS => {
                            duration.as_secs().max(1) as u32
                        }
                        Ok(_) => {
                            self.error(value, "expected a duration of at most a year (8760h)");
                            continue;
                        }
                        Err(message) => {
                            self.error(value, message);
                            continue;
                        }
                    };
                    match property_name.text.as_str() {
                        "refresh-min" => secondary.refresh_min = seconds,
                        "refresh-max" => secondary.refresh_max = seconds,
                        _ => secondary.expire_max = seconds,
                    }
                }
                other => {
                    let message = format!(
                        "unknown property '{other}' in 'secondary' block; expected: transfer from, refresh-min, refresh-max, expire-max"
                    );
                    self.error(property_name, message);
                }
            }
        }
        if secondary.refresh_min > secondary.refresh_max
            && let Some(first) = block.lines.first()
        {
            self.error(first.name(), "refresh-min is larger than refresh-max");
        }
    }

    /// Splits `WORD... [key NAME]`; `None` (after an error) when `key` is
    /// not followed by exactly one name.
    fn addresses_and_key<'l>(
        &mut self,
        line: &'l Line,
        what: &str,
    ) -> Option<(&'l [Token], Option<String>)> {
        let args = line.args();
        let key_at = args.iter().position(|word| word.is_keyword("key"));
        let (addresses, key) = match key_at {
            None => (args, None),
            Some(at) => match &args[at + 1..] {
                [key_name] => match values::zone_name(&key_name.text) {
                    Ok(key) => {
                        self.key_uses.push((key.clone(), key_name.clone()));
                        (&args[..at], Some(key))
                    }
                    Err(message) => {
                        self.error(key_name, format!("key: {message}"));
                        return None;
                    }
                },
                _ => {
                    self.error(
                        &args[at],
                        format!("expected '{what} ADDRESS... key KEYNAME' with one key name last"),
                    );
                    return None;
                }
            },
        };
        if addresses.is_empty() || (what == "transfer from" && addresses.len() < 2) {
            self.error(
                line.name(),
                format!("expected at least one address: '{what} ADDRESS...'"),
            );
            return None;
        }
        Some((addresses, key))
    }

    /// `tsig [ZONES...] { secret NAME KEY [ALGORITHM]  require [QTYPES...|all|none] }`.
    /// Secrets are global to the process, as in CoreDNS.
    pub(super) fn tsig(&mut self, server: &mut ServerBlock, line: &Line) {
        let zones = self.directive_zones(server, line.args(), "tsig");
        let mut require = TsigRequire {
            zones,
            qtypes: Vec::new(),
        };
        for property in line.block.iter().flat_map(|block| &block.lines) {
            let property_name = property.name();
            match property_name.text.as_str() {
                "secret" => match property.args() {
                    [key_name, secret, rest @ ..] if rest.len() <= 1 => {
                        let algorithm = rest.first().map_or("hmac-sha256", |word| &word.text);
                        match crate::tsig::Key::new(&key_name.text, algorithm, &secret.text) {
                            Ok(_) => self.tsig_secrets.push(TsigSecret {
                                name: key_name.text.clone(),
                                secret: secret.text.clone(),
                                algorithm: algorithm.to_string(),
                            }),
                            Err(message) => self.error(key_name, message),
                        }
                    }
                    _ => self.error(
                        property_name,
                        "expected 'secret KEYNAME BASE64SECRET [ALGORITHM]'",
                    ),
                },
                "secrets" => self.error(
                    property_name,
                    "'secrets FILE' is not supported by ringdns; expected 'secret KEYNAME BASE64SECRET'",
                ),
                "require" => {
                    for word in property.args() {
                        match word.text.to_ascii_uppercase().as_str() {
                            "ALL" => require.qtypes = vec![None],
                            "NONE" => require.qtypes.clear(),
                            text => match crate::wire::rtype::from_text(text) {
                                Some(rtype) => require.qtypes.push(Some(rtype)),
                                None => self.error(
                                    word,
                                    format!("expected a query type (AXFR, IXFR, SOA…), all or none, got '{}'", word.text),
                                ),
                            },
                        }
                    }
                }
                other => {
                    let message = format!(
                        "unknown property '{other}' in 'tsig' block; expected: secret, require"
                    );
                    self.error(property_name, message);
                }
            }
        }
        server.tsig_requires.push(require);
    }

    /// Every `key NAME` must name a `tsig` secret: a typo would otherwise
    /// refuse a peer's transfers, or send NOTIFY unsigned, at run time.
    pub(super) fn check_key_uses(&mut self) {
        let defined: Vec<String> = self
            .tsig_secrets
            .iter()
            .filter_map(|secret| values::zone_name(&secret.name).ok())
            .collect();
        for (key, token) in std::mem::take(&mut self.key_uses) {
            if !defined.contains(&key) {
                let message = format!(
                    "key '{key}' has no secret; expected a 'secret {key} BASE64SECRET' line in a 'tsig' block"
                );
                self.error(&token, message);
            }
        }
    }

    /// `reload [INTERVAL [JITTER]]`: CoreDNS checks the Corefile every
    /// INTERVAL (default 30 s, at least 2 s) give or take JITTER; the
    /// jitter is accepted and not needed (one process checks).
    pub(super) fn reload(&mut self, line: &Line) {
        let name = line.name();
        let args = line.args();
        if args.len() > 2 || line.block.is_some() {
            self.error(
                name,
                "expected 'reload [INTERVAL [JITTER]]', e.g. 'reload 30s'",
            );
            return;
        }
        let interval = match args.first() {
            None => std::time::Duration::from_secs(30),
            Some(word) => match values::duration(&word.text) {
                Ok(interval) if interval >= std::time::Duration::from_secs(2) => interval,
                Ok(_) => {
                    self.error(word, "reload: expected an interval of at least 2s");
                    return;
                }
                Err(message) => {
                    self.error(word, format!("reload: {message}"));
                    return;
                }
            },
        };
        if let Some(jitter) = args.get(1)
            && let Err(message) = values::duration(&jitter.text)
        {
            self.error(jitter, format!("reload: {message}"));
        }
        self.reload.get_or_insert(interval);
    }

    /// `storage DIR`: where journals and secondary zones are written.
    pub(super) fn storage(&mut self, line: &Line) {
        let name = line.name();
        let [directory] = line.args() else {
            self.error(name, "expected one directory: 'storage DIR'");
            return;
        };
        let path = relative_to_file(&directory.file, &directory.text);
        match &self.storage {
            Some(earlier) if *earlier != path => self.error(
                name,
                format!("'storage' is already set to {}", earlier.display()),
            ),
            _ => self.storage = Some(path),
        }
    }
}

/// `*`, `ADDR`, `ADDR:PORT`, `[V6]:PORT` or `NET/PREFIX`: only single
/// addresses are sent NOTIFY.
fn transfer_peer(text: &str, key: Option<String>) -> Result<TransferPeer, String> {
    if text == "*" {
        return Ok(TransferPeer {
            network: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            prefix: 0,
            notify: None,
            key,
            any: true,
        });
    }
    if text.contains('/') {
        let (network, prefix) = values::cidr(text)?;
        return Ok(TransferPeer {
            network,
            prefix,
            notify: None,
            key,
            any: false,
        });
    }
    let address: SocketAddr = values::peer_address(text, 53)?;
    Ok(TransferPeer {
        network: address.ip(),
        prefix: if address.is_ipv4() { 32 } else { 128 },
        notify: Some(address),
        key,
        any: false,
    })
}
