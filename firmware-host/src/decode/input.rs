//! Input specs: where a packet stream comes from (`file:`, `serial:`, `udp:`, `mqtt://`), parsed and
//! written back.

use std::fmt;
use std::path::PathBuf;

use super::DecodeError;

/// Default MQTT broker port when `mqtt://HOST/TOPIC` names none.
pub const MQTT_DEFAULT_PORT: u16 = 1883;

/// Where packets come from. Parse one with [`Input::parse`]; `Display` writes it back as a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A file of COBS frames, read to EOF.
    File(PathBuf),
    /// A serial device (tty), configured beforehand with `stty`, read as a byte stream of COBS
    /// frames until the limit or the silence timeout.
    Serial(PathBuf),
    /// A UDP socket bound to this `host:port`.
    Udp(String),
    /// An MQTT subscription.
    Mqtt {
        /// Broker host name or address (an IPv6 address without brackets).
        host: String,
        /// Broker port.
        port: u16,
        /// Topic filter, may contain `+` and `#` (e.g. `sfn/cam1/#`).
        topic: String,
    },
}

impl Input {
    /// Parses an input spec: `file:PATH` or a bare path, `serial:DEVICE`, `udp:HOST:PORT`
    /// (`udp:PORT` binds `0.0.0.0`), `mqtt://HOST[:PORT]/TOPIC` (port 1883 by default, IPv6
    /// hosts in brackets, the topic a filter that may contain `+` and `#`).
    pub fn parse(spec: &str) -> Result<Input, DecodeError> {
        let bad = |reason: &str| DecodeError::BadSpec { spec: spec.to_string(), reason: reason.to_string() };
        if spec.is_empty() {
            return Err(bad("empty spec"));
        }
        if let Some(path) = spec.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(bad("missing file path after file:"));
            }
            return Ok(Input::File(PathBuf::from(path)));
        }
        if let Some(path) = spec.strip_prefix("serial:") {
            if path.is_empty() {
                return Err(bad("missing device after serial: (e.g. serial:/dev/ttyUSB0)"));
            }
            return Ok(Input::Serial(PathBuf::from(path)));
        }
        if let Some(addr) = spec.strip_prefix("udp:") {
            let addr = addr.strip_prefix("//").unwrap_or(addr);
            return parse_udp(addr).map(Input::Udp).map_err(|r| bad(&r));
        }
        if let Some(rest) = spec.strip_prefix("mqtt://") {
            return parse_mqtt(rest).map_err(|r| bad(&r));
        }
        if spec.starts_with("mqtt:") {
            return Err(bad("expected mqtt://HOST[:PORT]/TOPIC"));
        }
        if let Some((scheme, _)) = spec.split_once("://") {
            return Err(bad(&format!("unknown scheme {scheme:?} (expected file:, serial:, udp: or mqtt://)")));
        }
        Ok(Input::File(PathBuf::from(spec)))
    }

    /// Whether this input is a byte stream of COBS frames (file or serial).
    pub fn is_stream(&self) -> bool {
        matches!(self, Input::File(_) | Input::Serial(_))
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::File(p) => write!(f, "file:{}", p.display()),
            Input::Serial(p) => write!(f, "serial:{}", p.display()),
            Input::Udp(a) => write!(f, "udp:{a}"),
            Input::Mqtt { host, port, topic } if host.contains(':') => {
                write!(f, "mqtt://[{host}]:{port}/{topic}")
            }
            Input::Mqtt { host, port, topic } => write!(f, "mqtt://{host}:{port}/{topic}"),
        }
    }
}

impl std::str::FromStr for Input {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Input::parse(s)
    }
}

/// Splits `host:port` / `[v6]:port`; `None` when there is no port.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| format!("unclosed '[' in {s:?}"))?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("unexpected {after:?} after ']'")),
            },
        };
    }
    match s.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Err("IPv6 addresses need brackets: [ADDR]:PORT".to_string()),
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((s, None)),
    }
}

fn parse_port(port: &str) -> Result<u16, String> {
    port.parse::<u16>().map_err(|_| format!("bad port {port:?} (expected 0..=65535)"))
}

fn parse_udp(addr: &str) -> Result<String, String> {
    if addr.is_empty() {
        return Err("missing address after udp: (e.g. udp:0.0.0.0:5005)".to_string());
    }
    if addr.bytes().all(|b| b.is_ascii_digit()) {
        parse_port(addr)?;
        return Ok(format!("0.0.0.0:{addr}"));
    }
    let (host, port) = split_host_port(addr)?;
    let port = port.ok_or("missing port (expected udp:HOST:PORT)")?;
    if host.is_empty() {
        return Err("missing host (expected udp:HOST:PORT)".to_string());
    }
    parse_port(port)?;
    Ok(addr.to_string())
}

fn parse_mqtt(rest: &str) -> Result<Input, String> {
    let (authority, topic) = rest.split_once('/').ok_or("missing topic (expected mqtt://HOST[:PORT]/TOPIC)")?;
    if authority.contains('@') {
        return Err("credentials in the URL are not supported".to_string());
    }
    let (host, port) = split_host_port(authority)?;
    if host.is_empty() {
        return Err("missing broker host".to_string());
    }
    let port = port.map(parse_port).transpose()?.unwrap_or(MQTT_DEFAULT_PORT);
    validate_topic_filter(topic)?;
    Ok(Input::Mqtt { host: host.to_string(), port, topic: topic.to_string() })
}

/// MQTT topic filter rules: not empty, no NUL, `#` only as the whole last level, `+` only as a
/// whole level.
fn validate_topic_filter(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("missing topic (expected mqtt://HOST[:PORT]/TOPIC)".to_string());
    }
    if topic.contains('\0') {
        return Err("NUL in topic".to_string());
    }
    let levels: Vec<&str> = topic.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err(format!("bad topic filter {topic:?}: '#' must be the whole last level"));
        }
        if level.contains('+') && *level != "+" {
            return Err(format!("bad topic filter {topic:?}: '+' must be a whole level"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_filters() {
        for ok in ["a", "a/b/c", "sfn/+/score", "sfn/cam1/#", "#", "+", "a//b"] {
            assert!(validate_topic_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/#/b", "a/b#", "a+/b", "sfn/cam+1/score", "a/\0"] {
            assert!(validate_topic_filter(bad).is_err(), "{bad:?}");
        }
    }
}
