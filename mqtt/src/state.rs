//! The protocol / queueing state machine, free of sockets, threads, files and clocks.
//!
//! [`ReporterState`] is fed [`Input`]s (connection events from the MQTT client, caller requests,
//! ticks) together with the current [`Instant`], and answers with [`Action`]s for the I/O layer
//! to carry out in order: publish a message, write or delete a spool file, disconnect. The I/O
//! layer ([`crate::Reporter`]) owns the rumqttc client and the spool directory; everything that
//! decides *what* happens lives here and is unit-tested without a broker.
//!
//! # Packet ids
//! rumqttc assigns MQTT packet ids itself and reports them, in the order the publishes were
//! handed to it, as `Outgoing::Publish(pkid)` events (pkid 0 for QoS 0). The state therefore
//! keeps the tags of the publishes it emitted in a FIFO (`unconfirmed`); each
//! [`Input::Published`] pops the front and, for QoS 1, files the tag under its pkid until the
//! matching [`Input::PubAck`]. Each connection uses a fresh rumqttc client, so the FIFO is
//! cleared on [`Input::Disconnected`] and nothing of an old connection leaks into the next. If
//! the FIFO is ever inconsistent (a QoS 0 tag gets a non-zero pkid or vice versa, or an event
//! arrives for nothing) the state drops the connection ([`Action::Reconnect`]) rather than risk
//! deleting the wrong spool file.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

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

/// What a publish was for, to route its PUBACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Online,
    Offline,
    Status,
    Snapshot,
    AlarmPacket(u64),
    AlarmJson(u64),
    Scores,
    Discovery,
}

impl Tag {
    fn qos(self) -> Qos {
        match self {
            Tag::Scores => Qos::AtMostOnce,
            _ => Qos::AtLeastOnce,
        }
    }
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    alarm: Alarm,
    /// Published on the current connection (both parts handed to the client).
    sent: bool,
    /// PUBACKs still missing for this alarm's two publishes (only meaningful when `sent`).
    acks_pending: u8,
    /// Counted in `spooled` (or recovered): its delivery counts as `delivered_from_spool`.
    from_spool: bool,
}

/// The reporter's state machine. See the module documentation.
#[derive(Debug)]
pub struct ReporterState {
    cfg: StateConfig,
    connected: bool,
    ever_connected: bool,
    /// Alarms in sequence order; the `inflight_alarms` first ones are `sent`.
    queue: VecDeque<Entry>,
    inflight_alarms: usize,
    next_seq: u64,
    /// Scores with the instant they were pushed.
    scores: VecDeque<(Instant, Vec<u8>)>,
    status: Option<Vec<u8>>,
    status_dirty: bool,
    status_inflight: bool,
    /// The latest snapshot not yet acknowledged (only the newest waiting one is kept).
    snapshot: Option<Vec<u8>>,
    /// The snapshot published and not yet acknowledged (kept to publish again after a reconnect).
    snapshot_inflight: Option<Vec<u8>>,
    /// Tags of publishes handed to the client whose pkid is not known yet, oldest first.
    unconfirmed: VecDeque<Tag>,
    /// QoS 1 publishes on the wire, by pkid, waiting for their PUBACK.
    awaiting: HashMap<u16, Tag>,
    shutdown_deadline: Option<Instant>,
    finished: bool,
    stats: Stats,
    /// Discovery publishes of this connection not yet acknowledged.
    discovery_outstanding: usize,
    /// A birth message came while a round was still outstanding: publish again once it is acked.
    discovery_pending: bool,
}

impl ReporterState {
    /// A fresh state; alarms are numbered from `first_seq` on.
    pub fn new(cfg: StateConfig, first_seq: u64) -> ReporterState {
        ReporterState {
            cfg,
            connected: false,
            ever_connected: false,
            queue: VecDeque::new(),
            inflight_alarms: 0,
            next_seq: first_seq,
            scores: VecDeque::new(),
            status: None,
            status_dirty: false,
            status_inflight: false,
            snapshot: None,
            snapshot_inflight: None,
            unconfirmed: VecDeque::new(),
            awaiting: HashMap::new(),
            shutdown_deadline: None,
            finished: false,
            stats: Stats::default(),
            discovery_outstanding: 0,
            discovery_pending: false,
        }
    }

    /// Take over alarms found in the spool (any order; sorted here). Beyond `spool_max` the
    /// oldest are dropped (their files deleted). Must be called before the first connection.
    pub fn recover(&mut self, alarms: Vec<(u64, Alarm)>, out: &mut Vec<Action>) {
        let mut alarms = alarms;
        alarms.sort_by_key(|(seq, _)| *seq);
        for (seq, alarm) in alarms {
            self.stats.alarms_recovered += 1;
            self.next_seq = self.next_seq.max(seq + 1);
            let pos = self.queue.partition_point(|e| e.seq < seq);
            self.queue.insert(pos, Entry { seq, alarm, sent: false, acks_pending: 0, from_spool: true });
        }
        while self.queue.len() > self.cfg.spool_max {
            self.drop_oldest_waiting(out);
        }
    }

    /// The configuration.
    pub fn config(&self) -> &StateConfig {
        &self.cfg
    }

    /// Sequence number the next pushed alarm gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// True once a shutdown completed (or could not be done cleanly): stop the I/O layer.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Connected as far as the state knows.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Counters, with the current queue lengths.
    pub fn stats(&self) -> Stats {
        Stats { connected: self.connected, queued_alarms: self.queue.len(), queued_scores: self.scores.len(), ..self.stats.clone() }
    }

    /// Sequence numbers of the alarms held, oldest first.
    pub fn queued_seqs(&self) -> Vec<u64> {
        self.queue.iter().map(|e| e.seq).collect()
    }

    /// The next instant at which [`Input::Tick`] has something to do, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let batch = if self.connected { self.scores.front().map(|(t, _)| *t + self.cfg.batch_interval) } else { None };
        match (batch, self.shutdown_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Feed one input; the actions to carry out (in order) are appended to `out`.
    pub fn handle(&mut self, now: Instant, input: Input, out: &mut Vec<Action>) {
        if self.finished {
            return;
        }
        match input {
            Input::Connected => self.on_connected(now, out),
            Input::Disconnected => self.on_disconnected(),
            Input::Published { pkid } => self.on_published(pkid, out),
            Input::PubAck { pkid } => self.on_puback(pkid, out),
            Input::Alarm(alarm) => self.on_alarm(alarm, out),
            Input::Score(payload) => self.on_score(now, payload, out),
            Input::Status(payload) => {
                self.status = Some(payload);
                self.status_dirty = true;
                self.pump_status(out);
            }
            Input::Snapshot(payload) => {
                self.stats.snapshots_pushed += 1;
                self.snapshot = Some(payload);
                self.pump_snapshot(out);
            }
            Input::Tick => {}
            Input::Message { topic, payload } => {
                let birth = self.cfg.discovery.as_ref().is_some_and(|d| d.birth_topic == topic);
                if self.connected && birth && payload.trim_ascii() == BIRTH_ONLINE {
                    if self.discovery_outstanding > 0 {
                        self.discovery_pending = true;
                    } else {
                        self.publish_discovery(out);
                    }
                }
            }
            Input::Shutdown => {
                if self.shutdown_deadline.is_none() {
                    if self.connected {
                        self.shutdown_deadline = Some(now + self.cfg.shutdown_grace);
                    } else {
                        // Nobody to say goodbye to: what is queued stays in the spool.
                        self.finish_unclean();
                    }
                }
            }
        }
        if !self.finished && self.connected {
            self.pump_scores(now, false, out);
            self.check_shutdown(now, out);
        }
    }

    fn emit(&mut self, tag: Tag, topic: String, payload: Vec<u8>, retain: bool, out: &mut Vec<Action>) {
        self.unconfirmed.push_back(tag);
        self.stats.published += 1;
        out.push(Action::Publish(Publish { topic, payload, qos: tag.qos(), retain }));
    }

    fn on_connected(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.connected {
            // A second CONNACK without a disconnect in between: treat it as a new connection.
            self.on_disconnected();
        }
        self.connected = true;
        if self.ever_connected {
            self.stats.reconnects += 1;
        }
        self.ever_connected = true;
        let topic = self.cfg.topics.available.clone();
        self.emit(Tag::Online, topic, ONLINE.to_vec(), true, out);
        if let Some(d) = &self.cfg.discovery {
            let topic = d.birth_topic.clone();
            self.publish_discovery(out);
            out.push(Action::Subscribe { topic });
        }
        if self.status.is_some() {
            self.status_dirty = true;
        }
        self.pump_status(out);
        self.pump_snapshot(out);
        self.pump_alarms(out);
        // Scores held while away go out now, in full batches.
        self.pump_scores(now, true, out);
    }

    fn on_disconnected(&mut self) {
        if !self.connected {
            return;
        }
        self.connected = false;
        self.unconfirmed.clear();
        self.awaiting.clear();
        self.inflight_alarms = 0;
        for e in self.queue.iter_mut() {
            e.sent = false;
            e.acks_pending = 0;
            if !e.from_spool {
                e.from_spool = true;
                self.stats.spooled += 1;
            }
        }
        self.status_inflight = false;
        self.status_dirty = self.status.is_some();
        // A snapshot without its PUBACK is published again on the next connection (unless a
        // newer one waits).
        if let Some(p) = self.snapshot_inflight.take() {
            self.snapshot.get_or_insert(p);
        }
        self.discovery_outstanding = 0;
        self.discovery_pending = false;
        if self.shutdown_deadline.is_some() {
            self.finish_unclean();
        }
    }

    /// Treat the connection as lost right away and ask the I/O layer for a new one.
    fn resync(&mut self, why: &str, out: &mut Vec<Action>) {
        tracing::warn!("mqtt: {why}; reconnecting to resynchronise packet ids");
        self.on_disconnected();
        if !self.finished {
            out.push(Action::Reconnect);
        }
    }

    fn on_published(&mut self, pkid: u16, out: &mut Vec<Action>) {
        if !self.connected {
            return; // stale event of a connection we already gave up
        }
        let Some(tag) = self.unconfirmed.pop_front() else {
            return self.resync(&format!("publish pkid {pkid} reported for nothing we sent"), out);
        };
        match (tag.qos(), pkid) {
            (Qos::AtMostOnce, 0) => {}
            (Qos::AtLeastOnce, p) if p != 0 => {
                if let Some(old) = self.awaiting.insert(p, tag) {
                    tracing::warn!("mqtt: pkid {p} reused while {old:?} was not acknowledged");
                }
            }
            _ => return self.resync(&format!("pkid {pkid} does not fit {tag:?}"), out),
        }
        self.pump_alarms(out);
    }

    fn on_puback(&mut self, pkid: u16, out: &mut Vec<Action>) {
        if !self.connected {
            return;
        }
        let Some(tag) = self.awaiting.remove(&pkid) else {
            tracing::warn!("mqtt: PUBACK for unknown pkid {pkid} ignored");
            return;
        };
        match tag {
            Tag::AlarmPacket(seq) | Tag::AlarmJson(seq) => {
                if let Ok(i) = self.queue.binary_search_by_key(&seq, |e| e.seq) {
                    let e = &mut self.queue[i];
                    if e.sent && e.acks_pending > 0 {
                        e.acks_pending -= 1;
                        if e.acks_pending == 0 {
                            let e = self.queue.remove(i).expect("index from binary search");
                            self.inflight_alarms -= 1;
                            self.stats.alarms_acked += 1;
                            if e.from_spool {
                                self.stats.delivered_from_spool += 1;
                            }
                            out.push(Action::DeleteSpool { seq });
                        }
                    }
                }
                // Not found: dropped from a full spool while in flight; nothing left to do.
                self.pump_alarms(out);
            }
            Tag::Status => {
                self.status_inflight = false;
                self.pump_status(out);
            }
            Tag::Snapshot => {
                self.snapshot_inflight = None;
                self.stats.snapshots_acked += 1;
                self.pump_snapshot(out);
            }
            Tag::Discovery => {
                self.discovery_outstanding = self.discovery_outstanding.saturating_sub(1);
                if self.discovery_outstanding == 0 && self.discovery_pending {
                    self.discovery_pending = false;
                    self.publish_discovery(out);
                }
            }
            Tag::Online | Tag::Offline | Tag::Scores => {}
        }
    }

    /// One round of the discovery configs, retained, QoS 1.
    fn publish_discovery(&mut self, out: &mut Vec<Action>) {
        let Some(d) = self.cfg.discovery.clone() else { return };
        self.stats.discovery_rounds += 1;
        for (topic, payload) in d.messages {
            self.discovery_outstanding += 1;
            self.emit(Tag::Discovery, topic, payload, true, out);
        }
    }

    fn on_alarm(&mut self, alarm: Alarm, out: &mut Vec<Action>) {
        self.stats.alarms_pushed += 1;
        // Make room first so the directory never holds more than spool_max files.
        while self.queue.len() >= self.cfg.spool_max {
            self.drop_oldest_waiting(out);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        out.push(Action::WriteSpool { seq, alarm: alarm.clone() });
        let from_spool = !self.connected;
        if from_spool {
            self.stats.spooled += 1;
        }
        self.queue.push_back(Entry { seq, alarm, sent: false, acks_pending: 0, from_spool });
        self.pump_alarms(out);
    }

    /// Drop the oldest alarm that is not in flight (all in flight: the oldest of all).
    fn drop_oldest_waiting(&mut self, out: &mut Vec<Action>) {
        let i = self.queue.iter().position(|e| !e.sent).unwrap_or(0);
        if let Some(e) = self.queue.remove(i) {
            if e.sent {
                self.inflight_alarms -= 1;
            }
            self.stats.dropped_alarms += 1;
            tracing::warn!("mqtt: alarm spool full, dropping oldest alarm #{}", e.seq);
            out.push(Action::DeleteSpool { seq: e.seq });
        }
    }

    fn pump_alarms(&mut self, out: &mut Vec<Action>) {
        if !self.connected {
            return;
        }
        while self.inflight_alarms < self.cfg.max_inflight_alarms {
            let Some(e) = self.queue.get_mut(self.inflight_alarms) else { break };
            debug_assert!(!e.sent);
            e.sent = true;
            e.acks_pending = 2;
            let (seq, packet, json) = (e.seq, e.alarm.packet.clone(), e.alarm.json.clone());
            self.inflight_alarms += 1;
            let (t1, t2) = (self.cfg.topics.alarm.clone(), self.cfg.topics.alarm_json.clone());
            self.emit(Tag::AlarmPacket(seq), t1, packet, false, out);
            self.emit(Tag::AlarmJson(seq), t2, json, false, out);
        }
    }

    fn pump_status(&mut self, out: &mut Vec<Action>) {
        if !self.connected || self.status_inflight || !self.status_dirty {
            return;
        }
        if let Some(payload) = self.status.clone() {
            self.status_dirty = false;
            self.status_inflight = true;
            let topic = self.cfg.topics.status.clone();
            self.emit(Tag::Status, topic, payload, true, out);
        }
    }

    /// The waiting snapshot, one at a time: a newer one set while another is in flight replaces
    /// the waiting one (retained: only the latest matters to a subscriber).
    fn pump_snapshot(&mut self, out: &mut Vec<Action>) {
        if !self.connected || self.snapshot_inflight.is_some() {
            return;
        }
        if let Some(payload) = self.snapshot.take() {
            self.snapshot_inflight = Some(payload.clone());
            let topic = self.cfg.topics.snapshot.clone();
            self.emit(Tag::Snapshot, topic, payload, true, out);
        }
    }

    fn on_score(&mut self, now: Instant, payload: Vec<u8>, out: &mut Vec<Action>) {
        self.stats.scores_pushed += 1;
        while self.scores.len() >= self.cfg.ring_max {
            self.scores.pop_front();
            self.stats.dropped_scores += 1;
        }
        self.scores.push_back((now, payload));
        self.pump_scores(now, false, out);
    }

    /// Publish full batches; the remainder too when its oldest score waited `batch_interval`
    /// (or `force`). Gated by `max_unconfirmed`.
    fn pump_scores(&mut self, now: Instant, force: bool, out: &mut Vec<Action>) {
        if !self.connected {
            return;
        }
        while let Some((t0, _)) = self.scores.front() {
            let due = force || now >= *t0 + self.cfg.batch_interval;
            if self.scores.len() < self.cfg.batch_max && !due {
                break;
            }
            if self.unconfirmed.len() >= self.cfg.max_unconfirmed {
                break;
            }
            let n = self.scores.len().min(self.cfg.batch_max);
            let mut payload = Vec::new();
            for (_, s) in self.scores.drain(..n) {
                payload.extend_from_slice(&s);
            }
            self.stats.scores_published += n as u64;
            self.stats.score_batches += 1;
            let topic = self.cfg.topics.score.clone();
            self.emit(Tag::Scores, topic, payload, false, out);
        }
    }

    fn check_shutdown(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(deadline) = self.shutdown_deadline else { return };
        if !self.queue.is_empty() && now < deadline {
            return; // keep delivering alarms during the grace period
        }
        self.pump_scores(now, true, out);
        let left = self.scores.len() as u64;
        if left > 0 {
            self.stats.dropped_scores += left;
            self.scores.clear();
        }
        let topic = self.cfg.topics.available.clone();
        self.emit(Tag::Offline, topic, OFFLINE.to_vec(), true, out);
        out.push(Action::Disconnect);
        self.finished = true;
        self.connected = false;
    }

    fn finish_unclean(&mut self) {
        self.finished = true;
        let left = self.scores.len() as u64;
        self.stats.dropped_scores += left;
        self.scores.clear();
    }
}

/// Exponential reconnect backoff: `min`, `2*min`, `4*min`, ... capped at `max`; `reset` after a
/// successful connection. (No jitter: one device, one broker.)
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let max = max.max(min);
        Backoff { min, max, next: min }
    }

    /// The delay before the next attempt; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Back to `min` (call after a successful connection).
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> StateConfig {
        StateConfig {
            topics: Topics::new("sfn", "cam1"),
            spool_max: 5,
            max_inflight_alarms: 2,
            batch_max: 3,
            batch_interval: Duration::from_secs(1),
            ring_max: 4,
            shutdown_grace: Duration::from_secs(2),
            max_unconfirmed: 4,
            discovery: None,
        }
    }

    fn alarm(i: u8) -> Alarm {
        Alarm { packet: vec![i, 0xAA], json: format!("{{\"i\":{i}}}").into_bytes() }
    }

    /// Test driver: plays rumqttc, assigning pkids in order and remembering what is unacked.
    struct Sim {
        st: ReporterState,
        t0: Instant,
        now: Instant,
        next_pkid: u16,
        /// Publishes handed to the "client" and not yet put on the wire.
        queued: VecDeque<Publish>,
        /// (pkid, publish) on the wire, QoS 1, not acked.
        wire: Vec<(u16, Publish)>,
        /// Everything that reached the broker, in order.
        broker: Vec<Publish>,
        spool: std::collections::BTreeMap<u64, Alarm>,
        disconnects: usize,
        reconnect_requests: usize,
        subscriptions: Vec<String>,
    }

    impl Sim {
        fn new(c: StateConfig) -> Sim {
            let t0 = Instant::now();
            Sim {
                st: ReporterState::new(c, 1),
                t0,
                now: t0,
                next_pkid: 1,
                queued: VecDeque::new(),
                wire: Vec::new(),
                broker: Vec::new(),
                spool: Default::default(),
                disconnects: 0,
                reconnect_requests: 0,
                subscriptions: Vec::new(),
            }
        }
        fn feed(&mut self, input: Input) {
            let mut out = Vec::new();
            self.st.handle(self.now, input, &mut out);
            self.apply(out);
        }
        fn apply(&mut self, out: Vec<Action>) {
            for a in out {
                match a {
                    Action::Publish(p) => self.queued.push_back(p),
                    Action::WriteSpool { seq, alarm } => {
                        assert!(self.spool.insert(seq, alarm).is_none(), "seq {seq} reused");
                    }
                    Action::DeleteSpool { seq } => {
                        assert!(self.spool.remove(&seq).is_some(), "delete of missing {seq}");
                    }
                    Action::Disconnect => self.disconnects += 1,
                    Action::Reconnect => self.reconnect_requests += 1,
                    Action::Subscribe { topic } => self.subscriptions.push(topic),
                }
            }
        }
        fn advance(&mut self, d: Duration) {
            self.now += d;
            self.feed(Input::Tick);
        }
        /// rumqttc takes every queued request and writes it (the broker receives it).
        fn transmit(&mut self) {
            while let Some(p) = self.queued.pop_front() {
                let pkid = if p.qos == Qos::AtLeastOnce {
                    let k = self.next_pkid;
                    self.next_pkid = self.next_pkid % 100 + 1;
                    self.wire.push((k, p.clone()));
                    k
                } else {
                    0
                };
                self.broker.push(p);
                self.feed(Input::Published { pkid });
            }
        }
        /// The broker acks everything on the wire, in order.
        fn ack_all(&mut self) {
            for (pkid, _) in std::mem::take(&mut self.wire) {
                self.feed(Input::PubAck { pkid });
            }
        }
        fn settle(&mut self) {
            for _ in 0..1000 {
                if self.queued.is_empty() && self.wire.is_empty() {
                    return;
                }
                self.transmit();
                self.ack_all();
            }
            panic!("did not settle");
        }
        fn connect(&mut self) {
            self.next_pkid = 1; // fresh client
            self.feed(Input::Connected);
        }
        fn drop_connection(&mut self) {
            self.queued.clear();
            self.wire.clear();
            self.feed(Input::Disconnected);
        }
        fn on(&self, topic: &str) -> Vec<Vec<u8>> {
            self.broker.iter().filter(|p| p.topic == topic).map(|p| p.payload.clone()).collect()
        }
    }

    #[test]
    fn topics_follow_frigate_layout() {
        let t = Topics::new("frigate", "door");
        assert_eq!(t.available, "frigate/door/available");
        assert_eq!(t.alarm, "frigate/door/alarm");
        assert_eq!(t.alarm_json, "frigate/door/alarm/json");
        assert_eq!(t.score, "frigate/door/score");
        assert_eq!(t.status, "frigate/door/status");
        assert_eq!(t.snapshot, "frigate/door/alarm/snapshot");
    }

    #[test]
    fn connect_publishes_online_retained_and_status() {
        let mut s = Sim::new(cfg());
        s.feed(Input::Status(b"{\"fps\":5}".to_vec()));
        assert!(s.queued.is_empty(), "nothing published while disconnected");
        s.connect();
        let p: Vec<_> = s.queued.iter().cloned().collect();
        assert_eq!(p[0].topic, "sfn/cam1/available");
        assert_eq!(p[0].payload, b"online");
        assert!(p[0].retain);
        assert_eq!(p[0].qos, Qos::AtLeastOnce);
        assert_eq!(p[1].topic, "sfn/cam1/status");
        assert!(p[1].retain);
        s.settle();
        // A newer status while connected goes out at once.
        s.feed(Input::Status(b"{\"fps\":6}".to_vec()));
        s.settle();
        assert_eq!(s.on("sfn/cam1/status"), vec![b"{\"fps\":5}".to_vec(), b"{\"fps\":6}".to_vec()]);
    }

    #[test]
    fn status_in_flight_coalesces_to_latest() {
        let mut s = Sim::new(cfg());
        s.connect();
        s.settle();
        s.feed(Input::Status(b"1".to_vec()));
        s.transmit(); // on the wire, not acked
        s.feed(Input::Status(b"2".to_vec()));
        s.feed(Input::Status(b"3".to_vec()));
        assert!(s.queued.is_empty(), "waits for the PUBACK of the first");
        s.settle();
        assert_eq!(s.on("sfn/cam1/status"), vec![b"1".to_vec(), b"3".to_vec()]);
    }

    #[test]
    fn snapshot_is_retained_latest_wins_and_survives_a_lost_connection() {
        let mut s = Sim::new(cfg());
        s.feed(Input::Snapshot(b"jpeg0".to_vec()));
        s.feed(Input::Snapshot(b"jpeg1".to_vec()));
        assert!(s.queued.is_empty(), "nothing published while disconnected");
        s.connect();
        s.settle();
        // Only the newest waiting one went out, retained, QoS 1.
        assert_eq!(s.on("sfn/cam1/alarm/snapshot"), vec![b"jpeg1".to_vec()]);
        let p = s.broker.iter().find(|p| p.topic == "sfn/cam1/alarm/snapshot").unwrap();
        assert!(p.retain && p.qos == Qos::AtLeastOnce);
        // In flight when the connection drops: published again on the next one.
        s.feed(Input::Snapshot(b"jpeg2".to_vec()));
        s.transmit();
        s.drop_connection();
        s.connect();
        s.settle();
        assert_eq!(s.on("sfn/cam1/alarm/snapshot"), vec![b"jpeg1".to_vec(), b"jpeg2".to_vec(), b"jpeg2".to_vec()]);
        // In flight and replaced: the replaced one is not sent again, the newest follows the PUBACK.
        s.feed(Input::Snapshot(b"jpeg3".to_vec()));
        s.transmit();
        s.feed(Input::Snapshot(b"jpeg4".to_vec()));
        s.feed(Input::Snapshot(b"jpeg5".to_vec()));
        assert!(s.queued.is_empty(), "waits for the PUBACK of jpeg3");
        s.settle();
        let got = s.on("sfn/cam1/alarm/snapshot");
        assert_eq!(&got[3..], &[b"jpeg3".to_vec(), b"jpeg5".to_vec()]);
        let st = s.st.stats();
        assert_eq!((st.snapshots_pushed, st.snapshots_acked), (6, 4));
    }

    #[test]
    fn alarm_is_spooled_published_qos1_with_json_and_deleted_on_both_acks() {
        let mut s = Sim::new(cfg());
        s.connect();
        s.settle();
        s.feed(Input::Alarm(alarm(7)));
        assert_eq!(s.spool.len(), 1, "write-ahead: the file exists before publishing");
        let p: Vec<_> = s.queued.iter().cloned().collect();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].topic.as_str(), p[0].qos, p[0].retain), ("sfn/cam1/alarm", Qos::AtLeastOnce, false));
        assert_eq!(p[0].payload, vec![7, 0xAA]);
        assert_eq!((p[1].topic.as_str(), p[1].qos), ("sfn/cam1/alarm/json", Qos::AtLeastOnce));
        assert_eq!(p[1].payload, b"{\"i\":7}");
        s.transmit();
        // Ack only the packet: the file stays until the JSON mirror is acked too.
        let (k1, _) = s.wire.remove(0);
        s.feed(Input::PubAck { pkid: k1 });
        assert_eq!(s.spool.len(), 1);
        s.ack_all();
        assert!(s.spool.is_empty());
        let st = s.st.stats();
        assert_eq!((st.alarms_pushed, st.alarms_acked, st.spooled, st.delivered_from_spool), (1, 1, 0, 0));
        assert_eq!(st.queued_alarms, 0);
    }

    #[test]
    fn inflight_window_limits_alarms_on_the_wire() {
        let mut s = Sim::new(cfg());
        s.connect();
        s.settle();
        for i in 0..5 {
            s.feed(Input::Alarm(alarm(i)));
        }
        assert_eq!(s.queued.len(), 4, "2 alarms x (packet + json)");
        s.settle();
        let got: Vec<u8> = s.on("sfn/cam1/alarm").iter().map(|p| p[0]).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
        assert!(s.spool.is_empty());
    }

    #[test]
    fn alarms_while_away_are_delivered_in_order_after_connect() {
        let mut s = Sim::new(cfg());
        for i in 0..4 {
            s.feed(Input::Alarm(alarm(i)));
        }
        assert!(s.queued.is_empty());
        assert_eq!(s.spool.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        s.connect();
        s.settle();
        let got: Vec<u8> = s.on("sfn/cam1/alarm").iter().map(|p| p[0]).collect();
        assert_eq!(got, vec![0, 1, 2, 3]);
        let st = s.st.stats();
        assert_eq!((st.spooled, st.delivered_from_spool, st.alarms_acked), (4, 4, 4));
        assert!(s.spool.is_empty());
    }

    #[test]
    fn disconnect_mid_flight_resends_unacked_from_the_first_unacked() {
        let mut s = Sim::new(cfg());
        s.connect();
        s.settle();
        s.feed(Input::Alarm(alarm(0)));
        s.feed(Input::Alarm(alarm(1)));
        s.feed(Input::Alarm(alarm(2)));
        s.transmit(); // 0 and 1 reach the broker, no acks come back
        s.drop_connection();
        s.feed(Input::Alarm(alarm(3)));
        assert_eq!(s.spool.len(), 4, "nothing deleted without a PUBACK");
        s.connect();
        s.settle();
        let got: Vec<u8> = s.on("sfn/cam1/alarm").iter().map(|p| p[0]).collect();
        // 0 and 1 reached the broker twice (QoS 1 redelivery); first arrivals are in order.
        assert_eq!(got, vec![0, 1, 0, 1, 2, 3]);
        let st = s.st.stats();
        assert_eq!(st.alarms_acked, 4);
        assert_eq!(st.spooled, 4, "all four waited for the broker");
        assert_eq!(st.delivered_from_spool, 4);
        assert_eq!(st.reconnects, 1);
        assert!(s.spool.is_empty());
    }

    #[test]
    fn full_spool_drops_oldest_waiting_and_counts() {
        let mut s = Sim::new(cfg()); // spool_max 5
        for i in 0..8 {
            s.feed(Input::Alarm(alarm(i)));
        }
        assert_eq!(s.spool.keys().copied().collect::<Vec<_>>(), vec![4, 5, 6, 7, 8]);
        let st = s.st.stats();
        assert_eq!((st.dropped_alarms, st.queued_alarms), (3, 5));
        s.connect();
        s.settle();
        let got: Vec<u8> = s.on("sfn/cam1/alarm").iter().map(|p| p[0]).collect();
        assert_eq!(got, vec![3, 4, 5, 6, 7]);
        let st = s.st.stats();
        assert_eq!(st.alarms_pushed + st.alarms_recovered, st.alarms_acked + st.dropped_alarms);
    }

    #[test]
    fn full_spool_keeps_in_flight_alarms_and_drops_the_oldest_waiting_one() {
        let mut s = Sim::new(cfg()); // window 2, spool 5
        s.connect();
        s.settle();
        for i in 0..6 {
            s.feed(Input::Alarm(alarm(i)));
        }
        s.transmit();
        // 0 and 1 in flight; 2 was the oldest waiting one and went.
        assert_eq!(s.st.queued_seqs(), vec![1, 2, 4, 5, 6]);
        s.settle();
        let got: Vec<u8> = s.on("sfn/cam1/alarm").iter().map(|p| p[0]).collect();
        assert_eq!(got, vec![0, 1, 3, 4, 5]);
    }

    #[test]
    fn recovered_alarms_go_first_and_new_seqs_continue_after_them() {
        let mut st = ReporterState::new(cfg(), 1);
        let mut out = Vec::new();
        st.recover(vec![(12, alarm(12)), (10, alarm(10)), (11, alarm(11))], &mut out);
        assert!(out.is_empty());
        assert_eq!(st.next_seq(), 13);
        let mut s = Sim::new(cfg());
        s.st = st;
        s.spool.extend([(10, alarm(10)), (11, alarm(11)), (12, alarm(12))]);
        s.feed(Input::Alarm(alarm(13)));
        assert!(s.spool.contains_key(&13));
        s.connect();
        s.settle();
        let got: Vec<u8> = s.on("sfn/cam1/alarm").iter().map(|p| p[0]).collect();
        assert_eq!(got, vec![10, 11, 12, 13]);
        let stats = s.st.stats();
        assert_eq!((stats.alarms_recovered, stats.delivered_from_spool, stats.spooled), (3, 4, 1));
    }

    #[test]
    fn recover_beyond_bound_drops_oldest() {
        let mut st = ReporterState::new(cfg(), 1);
        let mut out = Vec::new();
        st.recover((1..=7).map(|i| (i, alarm(i as u8))).collect(), &mut out);
        assert_eq!(out, vec![Action::DeleteSpool { seq: 1 }, Action::DeleteSpool { seq: 2 }]);
        assert_eq!(st.queued_seqs(), vec![3, 4, 5, 6, 7]);
        assert_eq!(st.stats().dropped_alarms, 2);
    }

    #[test]
    fn scores_batch_by_count() {
        let mut s = Sim::new(cfg()); // batch_max 3
        s.connect();
        s.settle();
        for i in 0..7u8 {
            s.feed(Input::Score(vec![i, 0]));
        }
        s.settle();
        assert_eq!(s.on("sfn/cam1/score"), vec![vec![0, 0, 1, 0, 2, 0], vec![3, 0, 4, 0, 5, 0]]);
        assert_eq!(s.st.stats().queued_scores, 1);
        let p = s.broker.iter().find(|p| p.topic == "sfn/cam1/score").unwrap();
        assert_eq!((p.qos, p.retain), (Qos::AtMostOnce, false));
    }

    #[test]
    fn scores_batch_by_interval_from_the_oldest_score() {
        let mut s = Sim::new(cfg()); // interval 1 s
        s.connect();
        s.settle();
        s.feed(Input::Score(vec![1]));
        assert_eq!(s.st.next_deadline(), Some(s.t0 + Duration::from_secs(1)));
        s.advance(Duration::from_millis(600));
        s.feed(Input::Score(vec![2]));
        s.settle();
        assert!(s.on("sfn/cam1/score").is_empty());
        s.advance(Duration::from_millis(399));
        s.settle();
        assert!(s.on("sfn/cam1/score").is_empty());
        s.advance(Duration::from_millis(1));
        s.settle();
        assert_eq!(s.on("sfn/cam1/score"), vec![vec![1, 2]]);
        assert_eq!(s.st.next_deadline(), None);
    }

    #[test]
    fn ring_keeps_newest_scores_while_away_and_counts_dropped() {
        let mut s = Sim::new(cfg()); // ring 4, batch 3
        for i in 0..10u8 {
            s.feed(Input::Score(vec![i]));
        }
        let st = s.st.stats();
        assert_eq!((st.dropped_scores, st.queued_scores), (6, 4));
        assert_eq!(s.st.next_deadline(), None, "no batch timer while away");
        s.connect();
        s.settle();
        // Flushed at once on connect, in batches of batch_max.
        assert_eq!(s.on("sfn/cam1/score"), vec![vec![6, 7, 8], vec![9]]);
        let st = s.st.stats();
        assert_eq!(st.scores_pushed, st.scores_published + st.dropped_scores);
    }

    #[test]
    fn score_batches_are_gated_by_unconfirmed_publishes() {
        let mut s = Sim::new(cfg()); // max_unconfirmed 4, batch 3
        s.connect();
        s.settle();
        for i in 0..15u8 {
            s.feed(Input::Score(vec![i]));
        }
        // 4 batches handed over, the rest waits in the ring (ring 4: the oldest went).
        assert_eq!(s.queued.len(), 4);
        assert!(s.st.stats().queued_scores <= 4);
        s.settle();
        assert!(s.queued.len() + s.st.stats().queued_scores < 4);
    }

    #[test]
    fn shutdown_waits_for_acks_then_publishes_offline_and_disconnects() {
        let mut s = Sim::new(cfg());
        s.connect();
        s.settle();
        s.feed(Input::Score(vec![9]));
        s.feed(Input::Alarm(alarm(1)));
        s.feed(Input::Shutdown);
        assert_eq!(s.disconnects, 0, "alarm still unacked");
        s.transmit();
        s.ack_all();
        assert_eq!(s.disconnects, 1);
        assert!(s.st.is_finished());
        s.transmit();
        let tail: Vec<_> = s.broker.iter().rev().take(2).cloned().collect();
        assert_eq!(tail[0].topic, "sfn/cam1/available");
        assert_eq!(tail[0].payload, b"offline");
        assert!(tail[0].retain);
        assert_eq!(tail[1].topic, "sfn/cam1/score", "scores flushed before going offline");
        assert!(s.spool.is_empty());
    }

    #[test]
    fn shutdown_grace_expires_with_alarms_left_in_spool() {
        let mut s = Sim::new(cfg());
        s.connect();
        s.settle();
        s.feed(Input::Alarm(alarm(1)));
        s.feed(Input::Shutdown);
        s.transmit(); // never acked
        s.advance(Duration::from_millis(1999));
        assert_eq!(s.disconnects, 0);
        s.advance(Duration::from_millis(1));
        assert_eq!(s.disconnects, 1);
        assert_eq!(s.spool.len(), 1, "kept for the next run");
    }

    #[test]
    fn shutdown_while_away_finishes_at_once() {
        let mut s = Sim::new(cfg());
        s.feed(Input::Alarm(alarm(1)));
        s.feed(Input::Shutdown);
        assert!(s.st.is_finished());
        assert_eq!(s.disconnects, 0);
        assert!(s.queued.is_empty());
        assert_eq!(s.spool.len(), 1);
    }

    #[test]
    fn events_of_a_dropped_connection_are_ignored() {
        let mut s = Sim::new(cfg());
        s.connect();
        s.feed(Input::Alarm(alarm(1)));
        s.drop_connection();
        s.feed(Input::Published { pkid: 1 });
        s.feed(Input::PubAck { pkid: 1 });
        assert_eq!(s.spool.len(), 1);
        assert_eq!(s.reconnect_requests, 0);
    }

    #[test]
    fn inconsistent_pkids_force_a_reconnect_and_keep_the_alarm() {
        let mut s = Sim::new(cfg());
        s.connect(); // "online" is QoS 1 and unconfirmed
        s.feed(Input::Published { pkid: 0 }); // QoS 0 pkid for a QoS 1 publish
        assert_eq!(s.reconnect_requests, 1);
        assert!(!s.st.is_connected());
        s.queued.clear();
        s.feed(Input::Alarm(alarm(1)));
        s.connect();
        s.settle();
        assert_eq!(s.on("sfn/cam1/alarm").len(), 1);
        assert!(s.spool.is_empty());
    }

    #[test]
    fn unknown_puback_is_ignored() {
        let mut s = Sim::new(cfg());
        s.connect();
        s.settle();
        s.feed(Input::PubAck { pkid: 42 });
        assert!(s.st.is_connected());
        assert_eq!(s.reconnect_requests, 0);
    }

    #[test]
    fn reconnect_counts_and_republishes_online_and_status() {
        let mut s = Sim::new(cfg());
        s.connect();
        s.feed(Input::Status(b"s".to_vec()));
        s.settle();
        s.drop_connection();
        s.connect();
        s.settle();
        assert_eq!(s.on("sfn/cam1/available"), vec![b"online".to_vec(), b"online".to_vec()]);
        assert_eq!(s.on("sfn/cam1/status").len(), 2);
        assert_eq!(s.st.stats().reconnects, 1);
    }

    #[test]
    fn request_channel_never_overflows_under_load() {
        let c = cfg();
        let cap = c.request_channel_capacity();
        let mut s = Sim::new(c);
        s.connect();
        for i in 0..200u8 {
            s.feed(Input::Alarm(alarm(i)));
            s.feed(Input::Score(vec![i]));
            s.feed(Input::Status(vec![i]));
            assert!(s.queued.len() <= cap, "{} > {cap}", s.queued.len());
        }
        s.feed(Input::Shutdown);
        assert!(s.queued.len() <= cap);
    }

    fn with_discovery() -> StateConfig {
        let messages = vec![("ha/binary_sensor/x/config".to_string(), b"{\"a\":1}".to_vec()), ("ha/sensor/x/config".to_string(), b"{\"b\":2}".to_vec())];
        StateConfig { discovery: Some(Discovery { birth_topic: "ha/status".into(), messages }), ..cfg() }
    }

    #[test]
    fn discovery_is_published_retained_on_connect_and_on_the_hubs_birth_message() {
        let mut s = Sim::new(with_discovery());
        s.feed(Input::Message { topic: "ha/status".into(), payload: b"online".to_vec() });
        assert!(s.queued.is_empty(), "nothing while disconnected");
        s.connect();
        assert_eq!(s.subscriptions, vec!["ha/status".to_string()], "the birth topic is the only subscription");
        s.settle();
        let configs = |s: &Sim| s.broker.iter().filter(|p| p.topic.starts_with("ha/") && p.retain && p.qos == Qos::AtLeastOnce).count();
        assert_eq!(configs(&s), 2);
        // Other payloads and topics do nothing; "online" publishes the configs again.
        for (t, p) in [("ha/status", &b"offline"[..]), ("ha/other", b"online"), ("sfn/cam1/status", b"online")] {
            s.feed(Input::Message { topic: t.into(), payload: p.to_vec() });
        }
        s.settle();
        assert_eq!(configs(&s), 2);
        s.feed(Input::Message { topic: "ha/status".into(), payload: b"online\n".to_vec() });
        s.settle();
        assert_eq!(configs(&s), 4);
        // A burst of birth messages while a round is on the wire: one more round, not one each.
        s.feed(Input::Message { topic: "ha/status".into(), payload: b"online".to_vec() });
        for _ in 0..10 {
            s.feed(Input::Message { topic: "ha/status".into(), payload: b"online".to_vec() });
        }
        s.settle();
        assert_eq!(configs(&s), 8);
        assert_eq!(s.st.stats().discovery_rounds, 4);
        // Reconnect: online, configs and subscription again.
        s.drop_connection();
        s.connect();
        s.settle();
        assert_eq!(configs(&s), 10);
        assert_eq!(s.subscriptions.len(), 2);
    }

    #[test]
    fn backoff_doubles_up_to_max_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let d: Vec<u64> = (0..5).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(d, vec![100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }
}
