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
        let name = format!("mqtt {}:{}", cfg.host, cfg.port);
        let mut o = sfn_mqtt::ReporterOptions::new(device, &cfg.spool_dir);
        o.prefix = cfg.prefix.clone();
        o.host = cfg.host.clone();
        o.port = cfg.port;
        o.spool_max = cfg.spool_max;
        o.ring_max = cfg.score_ring;
        if let Some(ha) = &cfg.home_assistant {
            o.discovery = Some(crate::homeassistant::discovery(ha, device, &o.topics(), model_id, snapshots));
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
        let reporter = sfn_mqtt::Reporter::start(o).map_err(|e| SinkError { sink: name.clone(), reason: e.to_string() })?;
        Ok(MqttSink { reporter: Some(reporter), name })
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
