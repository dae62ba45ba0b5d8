//! The state machine's vocabulary: its configuration, what it is fed ([`Input`]), what it answers
//! ([`Action`]) and what it counts ([`Stats`]).

use std::time::Duration;

/// Payload of the availability topic while the device is connected.
pub const ONLINE: &[u8] = b"online";
/// Payload of the availability topic after a clean shutdown, and of the last will.
pub const OFFLINE: &[u8] = b"offline";

/// MQTT quality of service used by the reporter (it never uses QoS 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos {
    /// QoS 0: fire and forget (scores).
    AtMostOnce,
    /// QoS 1: acknowledged by the broker with a PUBACK (alarms, availability, status).
    AtLeastOnce,
}

/// The topics of one device, following Frigate's `<prefix>/<device>/...` layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    /// `<prefix>/<device>/available`: retained `online` / `offline` (also the last will).
    pub available: String,
    /// `<prefix>/<device>/alarm`: QoS 1, the caller's compact binary alarm packet.
    pub alarm: String,
    /// `<prefix>/<device>/alarm/json`: QoS 1, the caller's JSON mirror of the alarm.
    pub alarm_json: String,
    /// `<prefix>/<device>/score`: QoS 0, batches of concatenated score payloads.
    pub score: String,
    /// `<prefix>/<device>/status`: retained QoS 1, the caller's JSON status.
    pub status: String,
    /// `<prefix>/<device>/alarm/snapshot`: retained QoS 1, the caller's JPEG of the latest alarm.
    pub snapshot: String,
}

impl Topics {
    /// Topics for `device` under `prefix` (no validation: see [`crate::ReporterOptions`]).
    pub fn new(prefix: &str, device: &str) -> Topics {
        let base = format!("{prefix}/{device}");
        Topics {
            available: format!("{base}/available"),
            alarm: format!("{base}/alarm"),
            alarm_json: format!("{base}/alarm/json"),
            score: format!("{base}/score"),
            status: format!("{base}/status"),
            snapshot: format!("{base}/alarm/snapshot"),
        }
    }
}

/// One alarm: the binary packet and its JSON mirror, both given by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alarm {
    /// Published as-is on `<prefix>/<device>/alarm`.
    pub packet: Vec<u8>,
    /// Published as-is on `<prefix>/<device>/alarm/json`.
    pub json: Vec<u8>,
}

/// Bounds and timings of the state machine.
#[derive(Clone, Debug)]
pub struct StateConfig {
    pub topics: Topics,
    /// Most alarms held (on disk and in memory) at once; the oldest is dropped beyond.
    pub spool_max: usize,
    /// Most alarms published and not yet fully acknowledged at once.
    pub max_inflight_alarms: usize,
    /// Most score payloads in one `score` message.
    pub batch_max: usize,
    /// A score waits at most this long (while connected) before its batch is published.
    pub batch_interval: Duration,
    /// Most scores held while they cannot be published; the oldest is dropped beyond.
    pub ring_max: usize,
    /// After [`Input::Shutdown`], how long to keep delivering queued alarms before going offline.
    pub shutdown_grace: Duration,
    /// Score batches are only handed to the client while fewer than this many publishes wait
    /// for rumqttc to take them (keeps rumqttc's request channel from ever filling up).
    pub max_unconfirmed: usize,
    /// Retained discovery configs (e.g. Home Assistant's), published on every connect and again
    /// whenever the birth topic says `online`.
    pub discovery: Option<Discovery>,
}

/// Retained configuration messages for a home-automation hub (Home Assistant's MQTT discovery).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    /// The hub's status topic (Home Assistant: `homeassistant/status`); the only topic the reporter
    /// subscribes to. A message `online` there re-publishes `messages`; nothing else is read from it.
    pub birth_topic: String,
    /// (topic, payload): published retained, QoS 1, in this order.
    pub messages: Vec<(String, Vec<u8>)>,
}

/// The hub's birth payload that asks for the discovery configs again.
pub const BIRTH_ONLINE: &[u8] = b"online";

impl StateConfig {
    /// Capacity the rumqttc request channel needs so that a `try_publish` of an action of this
    /// state can never find it full: score batches are gated by `max_unconfirmed`, alarms by
    /// `max_inflight_alarms` (two publishes each), plus availability, status and disconnect.
    pub fn request_channel_capacity(&self) -> usize {
        self.max_unconfirmed + 2 * self.max_inflight_alarms + 8 + self.discovery.as_ref().map_or(0, |d| d.messages.len() + 1)
    }
}

/// What the state machine is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The broker accepted the connection (CONNACK), on a fresh client.
    Connected,
    /// The connection is gone (error, or our own disconnect went out).
    Disconnected,
    /// The client put the next publish we handed it on the wire with this packet id (0: QoS 0).
    Published { pkid: u16 },
    /// The broker acknowledged the QoS 1 publish with this packet id.
    PubAck { pkid: u16 },
    /// The caller pushed an alarm.
    Alarm(Alarm),
    /// The caller pushed one score payload.
    Score(Vec<u8>),
    /// The caller set the (retained) status.
    Status(Vec<u8>),
    /// The caller set the (retained) alarm snapshot.
    Snapshot(Vec<u8>),
    /// Time passed (flushes score batches, ends a shutdown's grace period).
    Tick,
    /// The caller asked for a clean shutdown.
    Shutdown,
    /// A message arrived on a subscribed topic (only [`Discovery::birth_topic`] is subscribed).
    Message { topic: String, payload: Vec<u8> },
}

/// A message to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: Qos,
    pub retain: bool,
}

/// What the I/O layer must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Hand this message to the MQTT client (never blocks: the channel is sized for it).
    Publish(Publish),
    /// Write the alarm to the spool atomically, under sequence number `seq`.
    WriteSpool { seq: u64, alarm: Alarm },
    /// Delete the spool file of `seq` (acknowledged, or dropped because the spool is full).
    DeleteSpool { seq: u64 },
    /// Disconnect cleanly (DISCONNECT packet, so no last will) and stop: the state is finished.
    Disconnect,
    /// Drop the current connection and connect again (packet-id bookkeeping lost its way).
    Reconnect,
    /// Subscribe to this topic (QoS 1) on the current connection.
    Subscribe { topic: String },
}

/// Counters of a reporter. All counts are since this process started the reporter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// MQTT messages handed to the client, all topics (a resent alarm counts again).
    pub published: u64,
    /// Alarms pushed by the caller.
    pub alarms_pushed: u64,
    /// Alarms found in the spool directory at start (left by an earlier run).
    pub alarms_recovered: u64,
    /// Alarms fully delivered: PUBACK for both the packet and its JSON mirror.
    pub alarms_acked: u64,
    /// Alarms that had to wait in the spool for the broker: pushed while disconnected, or still
    /// queued / unacknowledged when the connection dropped. Each alarm counts at most once.
    pub spooled: u64,
    /// Alarms delivered (acked) after waiting in the spool (`spooled` or `alarms_recovered`).
    pub delivered_from_spool: u64,
    /// Alarms dropped because the spool was full (the oldest waiting one goes).
    pub dropped_alarms: u64,
    /// Score payloads pushed by the caller.
    pub scores_pushed: u64,
    /// Score payloads published (inside batches).
    pub scores_published: u64,
    /// `score` messages published.
    pub score_batches: u64,
    /// Score payloads dropped: ring full (oldest dropped), or left over at shutdown.
    pub dropped_scores: u64,
    /// Successful connections after the first one.
    pub reconnects: u64,
    /// Rounds of discovery configs published (one per connect, one per hub birth message).
    pub discovery_rounds: u64,
    /// Snapshots set by the caller.
    pub snapshots_pushed: u64,
    /// Snapshots acknowledged by the broker (a snapshot replaced before it went out is not).
    pub snapshots_acked: u64,
    /// Connection attempts that failed (refused, unreachable, TLS, ...). Set by the I/O layer.
    pub connect_failures: u64,
    /// Spool files that could not be written or deleted. Set by the I/O layer.
    pub spool_errors: u64,
    /// Connected to the broker right now.
    pub connected: bool,
    /// Alarms currently held (spool), including unacknowledged in-flight ones.
    pub queued_alarms: usize,
    /// Scores currently held in the ring.
    pub queued_scores: usize,
}
