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
use std::time::Instant;

mod backoff;
mod vocab;

pub use backoff::Backoff;
pub use vocab::*;

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

#[cfg(test)]
mod tests;
