//! Reporter options: broker connection, topics, bounds, timings, TLS.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::state::{Discovery, StateConfig, Topics, OFFLINE};
use crate::Error;

/// Largest score payload accepted by [`crate::Reporter::push_score`].
pub const MAX_SCORE_BYTES: usize = 64;
/// Largest alarm packet, alarm JSON or status accepted (bytes each).
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;
/// Largest alarm snapshot (JPEG) accepted.
pub const MAX_SNAPSHOT_BYTES: usize = 1024 * 1024;

/// TLS to the broker (rustls, `ring` provider). The broker's certificate is verified against
/// the CA file; the server name checked is [`ReporterOptions::host`] (a DNS name or an IP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file with one or more CA certificates.
    pub ca_file: PathBuf,
    /// PEM client certificate chain, for client authentication (needs `client_key`).
    pub client_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `client_cert`.
    pub client_key: Option<PathBuf>,
}

impl TlsOptions {
    /// Server authentication only.
    pub fn new(ca_file: impl Into<PathBuf>) -> TlsOptions {
        TlsOptions { ca_file: ca_file.into(), client_cert: None, client_key: None }
    }

    /// Add client authentication.
    pub fn with_client_auth(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> TlsOptions {
        self.client_cert = Some(cert.into());
        self.client_key = Some(key.into());
        self
    }

    /// Read the files and build the rustls client configuration. Every error names the file.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, Error> {
        let ca_pem = read("CA", &self.ca_file)?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&ca_pem) {
            let cert = cert.map_err(|e| tls_err("CA", &self.ca_file, format!("bad PEM: {e}")))?;
            roots.add(cert).map_err(|e| tls_err("CA", &self.ca_file, format!("bad certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(tls_err("CA", &self.ca_file, "no PEM certificate in it".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().map_err(|e| Error::Options(format!("TLS: {e}")))?.with_root_certificates(roots);
        match (&self.client_cert, &self.client_key) {
            (None, None) => Ok(builder.with_no_client_auth()),
            (Some(cert_path), Some(key_path)) => {
                let cert_pem = read("client certificate", cert_path)?;
                let certs = CertificateDer::pem_slice_iter(&cert_pem).collect::<Result<Vec<_>, _>>().map_err(|e| tls_err("client certificate", cert_path, format!("bad PEM: {e}")))?;
                if certs.is_empty() {
                    return Err(tls_err("client certificate", cert_path, "no PEM certificate in it".into()));
                }
                let key_pem = read("client key", key_path)?;
                let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| tls_err("client key", key_path, format!("no usable private key: {e}")))?;
                builder.with_client_auth_cert(certs, key).map_err(|e| tls_err("client key", key_path, format!("does not fit the certificate: {e}")))
            }
            _ => Err(Error::Options("TLS client_cert and client_key go together".into())),
        }
    }
}

fn tls_err(what: &'static str, path: &Path, reason: String) -> Error {
    Error::Tls { what, path: path.to_path_buf(), reason }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(|e| tls_err(what, path, e.to_string()))
}

/// Everything a [`crate::Reporter`] needs. [`ReporterOptions::new`] fills in the defaults.
#[derive(Clone, Debug)]
pub struct ReporterOptions {
    /// Topic prefix (default `sfn`). No `/`, `+`, `#`, not empty.
    pub prefix: String,
    /// Device name, the second topic level. No `/`, `+`, `#`, not empty.
    pub device: String,
    /// Broker host name or IP (default `127.0.0.1`).
    pub host: String,
    /// Broker port (default 1883).
    pub port: u16,
    /// MQTT client id (default `sfn-<device>`).
    pub client_id: Option<String>,
    /// MQTT keep-alive (default 30 s; whole seconds, at least 1 s; zero disables it).
    pub keep_alive: Duration,
    /// Username and password.
    pub credentials: Option<(String, String)>,
    /// TLS (default none: plain TCP).
    pub tls: Option<TlsOptions>,
    /// Alarm spool directory (created if missing; one reporter at a time).
    pub spool_dir: PathBuf,
    /// Most alarms held in the spool (default 1000); the oldest waiting one is dropped beyond.
    pub spool_max: usize,
    /// Most alarms published and not yet acknowledged (default 8).
    pub max_inflight_alarms: usize,
    /// Most score payloads in one `score` message (default 32).
    pub batch_max: usize,
    /// Longest a score waits for its batch while connected (default 1 s).
    pub batch_interval: Duration,
    /// Most scores held while they cannot be published (default 4096); oldest dropped beyond.
    pub ring_max: usize,
    /// First reconnect delay (default 250 ms), doubled after each failure ...
    pub backoff_min: Duration,
    /// ... up to this (default 10 s).
    pub backoff_max: Duration,
    /// How long [`crate::Reporter::shutdown`] keeps delivering queued alarms before going
    /// offline (default 2 s).
    pub shutdown_grace: Duration,
    /// Retained discovery configs for a home-automation hub (default none), published on each
    /// connect and when the hub's birth topic says `online`; that topic is then the reporter's only
    /// subscription, and nothing received on it changes anything but this re-publishing.
    pub discovery: Option<Discovery>,
}

impl ReporterOptions {
    /// Defaults for `device`, spooling alarms in `spool_dir`.
    pub fn new(device: impl Into<String>, spool_dir: impl Into<PathBuf>) -> ReporterOptions {
        ReporterOptions {
            prefix: "sfn".into(),
            device: device.into(),
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: None,
            keep_alive: Duration::from_secs(30),
            credentials: None,
            tls: None,
            spool_dir: spool_dir.into(),
            spool_max: 1000,
            max_inflight_alarms: 8,
            batch_max: 32,
            batch_interval: Duration::from_secs(1),
            ring_max: 4096,
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(2),
            discovery: None,
        }
    }

    /// The topics these options give.
    pub fn topics(&self) -> Topics {
        Topics::new(&self.prefix, &self.device)
    }

    /// The client id used.
    pub fn client_id(&self) -> String {
        self.client_id.clone().unwrap_or_else(|| format!("sfn-{}", self.device))
    }

    /// Check the options (not the TLS files: see [`TlsOptions::client_config`]).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Options(m));
        for (what, level) in [("prefix", &self.prefix), ("device", &self.device)] {
            if level.is_empty() || level.contains(['/', '+', '#', '\0']) {
                return bad(format!("{what} {level:?} must be a non-empty topic level without / + # NUL"));
            }
        }
        if self.host.is_empty() {
            return bad("host is empty".into());
        }
        if self.client_id().is_empty() {
            return bad("client id is empty".into());
        }
        if !self.keep_alive.is_zero() && self.keep_alive < Duration::from_secs(1) {
            return bad("keep_alive below 1 s (0 disables it)".into());
        }
        if self.max_inflight_alarms == 0 || self.max_inflight_alarms > 1000 {
            return bad("max_inflight_alarms must be in 1..=1000".into());
        }
        if self.spool_max <= self.max_inflight_alarms {
            return bad(format!("spool_max ({}) must exceed max_inflight_alarms ({})", self.spool_max, self.max_inflight_alarms));
        }
        if self.batch_max == 0 || self.ring_max == 0 {
            return bad("batch_max and ring_max must be at least 1".into());
        }
        if self.backoff_min.is_zero() {
            return bad("backoff_min must be positive".into());
        }
        if let Some(d) = &self.discovery {
            let wildcard = |t: &str| t.is_empty() || t.contains(['+', '#', '\0']);
            if wildcard(&d.birth_topic) || d.messages.iter().any(|(t, _)| wildcard(t)) {
                return bad("discovery topics must be non-empty without + # NUL".into());
            }
            if let Some((t, p)) = d.messages.iter().find(|(_, p)| p.len() > MAX_PAYLOAD_BYTES) {
                return bad(format!("discovery payload for {t} is {} bytes (max {MAX_PAYLOAD_BYTES})", p.len()));
            }
        }
        Ok(())
    }

    pub(crate) fn state_config(&self) -> StateConfig {
        StateConfig {
            topics: self.topics(),
            spool_max: self.spool_max,
            max_inflight_alarms: self.max_inflight_alarms,
            batch_max: self.batch_max,
            batch_interval: self.batch_interval,
            ring_max: self.ring_max,
            shutdown_grace: self.shutdown_grace,
            max_unconfirmed: 64,
            discovery: self.discovery.clone(),
        }
    }

    /// rumqttc options: clean session, retained last will `offline` (QoS 1) on the
    /// availability topic, room for our in-flight window, TLS if configured.
    pub(crate) fn mqtt_options(&self, tls: Option<rustls::ClientConfig>, inflight: usize) -> MqttOptions {
        let topics = self.topics();
        let mut o = MqttOptions::new(self.client_id(), self.host.clone(), self.port);
        o.set_keep_alive(self.keep_alive);
        o.set_clean_session(true);
        o.set_last_will(LastWill::new(topics.available, OFFLINE.to_vec(), QoS::AtLeastOnce, true));
        // Alarm packet + JSON per alarm, plus status, snapshot, availability, for every device on
        // the connection: never hit rumqttc's limit.
        o.set_inflight(inflight.min(u16::MAX as usize) as u16);
        let max_packet = (2 * MAX_PAYLOAD_BYTES).max(MAX_SNAPSHOT_BYTES) + 1024;
        o.set_max_packet_size(max_packet, max_packet);
        if let Some((user, pass)) = &self.credentials {
            o.set_credentials(user.clone(), pass.clone());
        }
        if let Some(cfg) = tls {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(cfg))));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let o = ReporterOptions::new("cam1", "/tmp/x");
        assert_eq!((o.prefix.as_str(), o.port, o.batch_max), ("sfn", 1883, 32));
        assert_eq!(o.batch_interval, Duration::from_secs(1));
        assert_eq!(o.client_id(), "sfn-cam1");
        assert_eq!(o.topics().alarm_json, "sfn/cam1/alarm/json");
        o.validate().unwrap();
    }

    #[test]
    fn bad_topic_levels_and_bounds_are_rejected() {
        for dev in ["", "a/b", "a+", "#"] {
            let o = ReporterOptions::new(dev, "/tmp/x");
            assert!(matches!(o.validate(), Err(Error::Options(_))), "{dev:?}");
        }
        let mut o = ReporterOptions::new("cam", "/tmp/x");
        o.spool_max = o.max_inflight_alarms;
        assert!(o.validate().is_err());
    }

    #[test]
    fn mqtt_options_carry_will_and_credentials() {
        let mut o = ReporterOptions::new("cam", "/tmp/x");
        o.credentials = Some(("u".into(), "p".into()));
        o.keep_alive = Duration::from_secs(7);
        let m = o.mqtt_options(None, 25);
        let will = m.last_will().unwrap();
        assert_eq!(will.topic, "sfn/cam/available");
        assert_eq!(&will.message[..], b"offline");
        assert!(will.retain);
        assert_eq!(will.qos, QoS::AtLeastOnce);
        let login = m.credentials().unwrap();
        assert_eq!((login.username.as_str(), login.password.as_str()), ("u", "p"));
        assert_eq!(m.keep_alive(), Duration::from_secs(7));
        assert_eq!(m.client_id(), "sfn-cam");
        assert!(m.clean_session());
    }

    fn tls_error(t: &TlsOptions) -> String {
        match t.client_config() {
            Err(e @ Error::Tls { .. }) => e.to_string(),
            Err(e) => panic!("expected a TLS error, got {e:?}"),
            Ok(_) => panic!("expected a TLS error"),
        }
    }

    #[test]
    fn tls_missing_ca_file_is_named() {
        let e = tls_error(&TlsOptions::new("/nonexistent/ca-bundle.pem"));
        assert!(e.contains("/nonexistent/ca-bundle.pem"), "{e}");
        assert!(e.contains("CA"), "{e}");
    }

    #[test]
    fn tls_ca_file_without_certificates_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = tmp.path().join("empty-ca.pem");
        fs::write(&ca, "not a certificate\n").unwrap();
        let e = tls_error(&TlsOptions::new(&ca));
        assert!(e.contains("empty-ca.pem") && e.contains("no PEM certificate"), "{e}");
    }

    #[test]
    fn tls_missing_client_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = tmp.path().join("ca.pem");
        fs::write(&ca, TEST_CA).unwrap();
        // The CA alone is fine.
        TlsOptions::new(&ca).client_config().unwrap();
        let e = tls_error(&TlsOptions::new(&ca).with_client_auth("/no/such/client.crt", "/no/such/client.key"));
        assert!(e.contains("/no/such/client.crt") && e.contains("client certificate"), "{e}");
        let e = tls_error(&TlsOptions::new(&ca).with_client_auth(&ca, "/no/such/client.key"));
        assert!(e.contains("/no/such/client.key") && e.contains("client key"), "{e}");
        let only_cert = TlsOptions { client_cert: Some(ca.clone()), ..TlsOptions::new(&ca) };
        assert!(matches!(only_cert.client_config(), Err(Error::Options(_))));
    }

    /// A throwaway self-signed CA certificate (EC P-256; its key was discarded), only parsed here.
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBgzCCASmgAwIBAgIUAQzD8yR6GMDyYvQcPHturKz3Ho8wCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLc2ZuLXRlc3QtY2EwIBcNMjYxMTI4MTYwMTE3WhgPMjEyNjEx
MDQxNjAxMTdaMBYxFDASBgNVBAMMC3Nmbi10ZXN0LWNhMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEydEXEthAkRW62Ey+KJAEGUMgeywE2PrEz/uiKv/W0jMzyBG/
+mbj4+wpd23PmtRKVwzW1sP8QUEgPcTPOhJSZaNTMFEwHQYDVR0OBBYEFHq2lpqa
LP2jFF20liIGsDayUz/LMB8GA1UdIwQYMBaAFHq2lpqaLP2jFF20liIGsDayUz/L
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgNSrsN6jvKrJyM9wr
BHu69aOF+8p5ACwNzVaiKS6mX14CIQDaAGIQrGGobaLYYZSOLJXIq+BHeV5Hs5v5
BCp9a6Ui7g==
-----END CERTIFICATE-----
";
}
