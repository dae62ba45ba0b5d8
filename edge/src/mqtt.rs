//! The MQTT sink: `sfn-mqtt`'s reporter (Frigate's topic conventions, alarms spooled on disk while the
//! broker is away, scores in a bounded ring) behind the [`Sink`] trait. Never blocks the pipeline.

use crate::alarm::{AlarmEvent, AlarmState};
use crate::config::MqttConfig;
use crate::pipeline::FrameOutput;
use crate::sink::{Sink, SinkError};

/// Scores are sent COBS-framed (self-delimiting), so a batch is their concatenation; alarms as the
/// plain 32-byte packet plus a JSON mirror.
pub struct MqttSink {
    reporter: Option<sfn_mqtt::Reporter>,
    name: String,
}

impl MqttSink {
    /// Starts the reporter for `device`; `model_id` (the model's id in packets) goes into Home
    /// Assistant's device block when discovery is on, with a camera entity for the alarm snapshot
    /// when `snapshots`.
    pub fn connect(device: &str, cfg: &MqttConfig, model_id: [u8; 4], snapshots: bool) -> Result<Self, SinkError> {
        let o = Self::options(device, cfg, model_id, snapshots, None);
        let reporter = sfn_mqtt::Reporter::start(o).map_err(|e| SinkError { sink: Self::sink_name(cfg), reason: e.to_string() })?;
        Ok(Self::from_reporter(reporter, cfg))
    }

    /// Several devices (cameras of one process) on one MQTT connection, one sink each, in order.
    /// The connection's last will covers the first device's availability topic; with discovery on,
    /// the other devices' entities take their availability from that topic too.
    pub fn connect_shared(devices: &[(&str, &MqttConfig, bool)], model_id: [u8; 4]) -> Result<Vec<Self>, SinkError> {
        let Some((first, first_cfg, _)) = devices.first() else { return Ok(vec![]) };
        let will = sfn_mqtt::Topics::new(&first_cfg.prefix, first).available;
        let opts: Vec<sfn_mqtt::ReporterOptions> =
            devices.iter().enumerate().map(|(i, (device, cfg, snapshots))| Self::options(device, cfg, model_id, *snapshots, (i > 0).then_some(will.as_str()))).collect();
        let reporters = sfn_mqtt::Reporter::start_shared(opts).map_err(|e| SinkError { sink: Self::sink_name(first_cfg), reason: e.to_string() })?;
        Ok(reporters.into_iter().zip(devices).map(|(r, (_, cfg, _))| Self::from_reporter(r, cfg)).collect())
    }

    fn sink_name(cfg: &MqttConfig) -> String {
        format!("mqtt {}:{}", cfg.host, cfg.port)
    }

    fn from_reporter(reporter: sfn_mqtt::Reporter, cfg: &MqttConfig) -> Self {
        MqttSink { reporter: Some(reporter), name: Self::sink_name(cfg) }
    }

    /// The reporter options of `device` (`will`: the connection's availability topic when it is
    /// another device's).
    fn options(device: &str, cfg: &MqttConfig, model_id: [u8; 4], snapshots: bool, will: Option<&str>) -> sfn_mqtt::ReporterOptions {
        let mut o = sfn_mqtt::ReporterOptions::new(device, &cfg.spool_dir);
        o.prefix = cfg.prefix.clone();
        o.host = cfg.host.clone();
        o.port = cfg.port;
        o.spool_max = cfg.spool_max;
        o.ring_max = cfg.score_ring;
        if let Some(ha) = &cfg.home_assistant {
            o.discovery = Some(crate::homeassistant::discovery(ha, device, &o.topics(), model_id, snapshots, will));
        }
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            o.credentials = Some((u.clone(), p.clone()));
        }
        if let Some(ca) = &cfg.ca_file {
            let mut t = sfn_mqtt::TlsOptions::new(ca);
            if let (Some(c), Some(k)) = (&cfg.client_cert, &cfg.client_key) {
                t = t.with_client_auth(c, k);
            }
            o.tls = Some(t);
        }
        o
    }

    fn err(&self, e: impl std::fmt::Display) -> SinkError {
        SinkError { sink: self.name.clone(), reason: e.to_string() }
    }

    /// The reporter's counters.
    pub fn stats(&self) -> Option<sfn_mqtt::Stats> {
        self.reporter.as_ref().map(|r| r.stats())
    }
}

impl Sink for MqttSink {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn score(&mut self, _out: &FrameOutput, _packet: &[u8], framed: &[u8]) -> Result<(), SinkError> {
        match &self.reporter {
            Some(r) => r.push_score(framed.to_vec()).map_err(|e| self.err(e)),
            None => Ok(()),
        }
    }
    fn alarm(&mut self, _state: AlarmState, _event: &AlarmEvent, packet: &[u8], json: &str) -> Result<(), SinkError> {
        match &self.reporter {
            Some(r) => r.push_alarm(packet.to_vec(), json.to_string()).map_err(|e| self.err(e)),
            None => Ok(()),
        }
    }
    fn queue_depth(&self) -> usize {
        self.stats().map_or(0, |s| s.queued_alarms + s.queued_scores)
    }
    fn snapshot_publisher(&self) -> Option<sfn_mqtt::SnapshotPublisher> {
        self.reporter.as_ref().map(|r| r.snapshots())
    }
    fn status(&mut self, json: &str) -> Result<(), SinkError> {
        match &self.reporter {
            Some(r) => r.set_status(json.to_string()).map_err(|e| self.err(e)),
            None => Ok(()),
        }
    }
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        if let Some(r) = self.reporter.take() {
            let s = r.shutdown();
            tracing::info!(stats = ?s, "mqtt reporter stopped");
        }
    }
}
