//! The thin I/O layer: threads, the rumqttc client, the spool directory, the clock.
//!
//! Two background threads per reporter:
//! - the *driver* owns the [`ReporterState`], the [`Spool`] and the rumqttc [`Client`] of the
//!   current connection. It feeds connection events (first, one by one) and caller requests
//!   (then, in groups of up to 64) to the state with the current time, and carries out the
//!   resulting actions (publish with `try_publish`, which never blocks: the channel is sized by
//!   the state's gates; write/delete spool files, with one directory fsync per group).
//! - the *connection* thread makes a fresh rumqttc [`Client`]/[`Connection`] for every
//!   connection attempt, waits for the CONNACK (backing off exponentially after failures),
//!   hands the client to the driver, then blocks on the connection's events and forwards the
//!   ones that matter (publish ids, PUBACKs, the end of the connection). A fresh client per
//!   connection means requests of a dead connection can never reach the next one: the state
//!   re-sends unacknowledged alarms itself, from the spool.
//!
//! The caller's methods only send on an unbounded channel: they never block on the network or
//! the disk.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rumqttc::{Client, Connection, Event, MqttOptions, Outgoing, Packet, QoS};

use crate::options::{ReporterOptions, MAX_PAYLOAD_BYTES, MAX_SCORE_BYTES, MAX_SNAPSHOT_BYTES};
use crate::spool::Spool;
use crate::state::{Action, Alarm, Backoff, Input, Qos, ReporterState, Stats, Topics};
use crate::Error;

/// Longest the driver sleeps without a tick.
const IDLE_TICK: Duration = Duration::from_millis(500);
/// After the final DISCONNECT, how long the driver waits for the connection thread to flush it.
const DISCONNECT_WAIT: Duration = Duration::from_secs(1);
/// Most caller requests handled as one group (one directory fsync for their spool files).
const MAX_GROUP: usize = 64;

/// What the driver's channel carries: caller requests, and a doorbell for connection events.
enum Msg {
    Alarm(Alarm),
    Score(Vec<u8>),
    Status(Vec<u8>),
    Snapshot(Vec<u8>),
    Shutdown,
    /// Connection events are waiting in [`ConnQueue`].
    Wake,
}

/// Connection events, kept apart from caller requests so that they are handled first: a burst
/// of alarms (each costing an fsync) must not delay noticing that the connection is gone.
type ConnQueue = Arc<Mutex<VecDeque<ConnEvent>>>;

enum ConnEvent {
    Connected(Client),
    ConnectFailed(String),
    Disconnected(String),
    Published(u16),
    PubAck(u16),
    /// A message on the one subscribed topic (the hub's birth topic).
    Message(String, Vec<u8>),
    Exited,
}

/// Reports one device's availability, alarms, scores and status to an MQTT broker.
///
/// Create it with [`Reporter::start`]; all other methods return at once (they queue work for a
/// background thread). End it with [`Reporter::shutdown`]; dropping it starts the same shutdown
/// without waiting for it.
pub struct Reporter {
    tx: mpsc::Sender<Msg>,
    stats: Arc<Mutex<Stats>>,
    topics: Topics,
    driver: Option<JoinHandle<()>>,
    shutdown_grace: Duration,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").field("topics", &self.topics).field("stats", &self.stats()).finish()
    }
}

impl Reporter {
    /// Validate the options, load the TLS files, open (and lock) the spool, take over the
    /// alarms found in it, and start connecting in the background. Errors here are the only
    /// ones about configuration; the broker being unreachable is not an error (alarms spool).
    pub fn start(opts: ReporterOptions) -> Result<Reporter, Error> {
        opts.validate()?;
        let tls = opts.tls.as_ref().map(|t| t.client_config()).transpose()?;
        let (spool, recovered) = Spool::open(&opts.spool_dir)?;
        let cfg = opts.state_config();
        let channel_cap = cfg.request_channel_capacity();
        let first_seq = recovered.alarms.last().map_or(1, |(seq, _)| seq + 1);
        let mut state = ReporterState::new(cfg, first_seq);
        if !recovered.alarms.is_empty() {
            tracing::info!("mqtt: {} alarm(s) left in {} by an earlier run will be delivered", recovered.alarms.len(), spool.dir().display());
        }
        let mut actions = Vec::new();
        state.recover(recovered.alarms, &mut actions);
        let stats = Arc::new(Mutex::new(state.stats()));
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mqtt = opts.mqtt_options(tls);
        let backoff = Backoff::new(opts.backoff_min, opts.backoff_max);

        let events: ConnQueue = Arc::default();
        let conn_link = ConnLink { tx: tx.clone(), events: events.clone() };
        let conn_stop = stop.clone();
        let conn = thread::Builder::new()
            .name(format!("sfn-mqtt-conn-{}", opts.device))
            .spawn(move || connection_thread(mqtt, channel_cap, backoff, conn_link, conn_stop))
            .map_err(|e| Error::Options(format!("cannot spawn thread: {e}")))?;

        let mut driver = Driver { state, spool, client: None, stats: stats.clone(), io: IoCounters::default(), stop, conn: Some(conn), events };
        driver.execute(actions);
        let handle = thread::Builder::new().name(format!("sfn-mqtt-{}", opts.device)).spawn(move || driver.run(rx)).map_err(|e| Error::Options(format!("cannot spawn thread: {e}")))?;

        Ok(Reporter { tx, stats, topics: opts.topics(), driver: Some(handle), shutdown_grace: opts.shutdown_grace })
    }

    /// Queue an alarm: `packet` goes to `<prefix>/<device>/alarm`, `json` to
    /// `<prefix>/<device>/alarm/json`, both QoS 1, in push order, after being written to the
    /// spool. Fails only for an oversized payload or a stopped reporter.
    pub fn push_alarm(&self, packet: impl Into<Vec<u8>>, json: impl Into<String>) -> Result<(), Error> {
        let alarm = Alarm { packet: packet.into(), json: json.into().into_bytes() };
        check_size("alarm packet", alarm.packet.len(), MAX_PAYLOAD_BYTES)?;
        check_size("alarm JSON", alarm.json.len(), MAX_PAYLOAD_BYTES)?;
        self.send(Msg::Alarm(alarm))
    }

    /// Queue one score payload (at most [`MAX_SCORE_BYTES`]) for the next `score` batch.
    pub fn push_score(&self, payload: impl Into<Vec<u8>>) -> Result<(), Error> {
        let payload = payload.into();
        if payload.len() > MAX_SCORE_BYTES {
            return Err(Error::ScoreTooLarge(payload.len()));
        }
        self.send(Msg::Score(payload))
    }

    /// Set the retained status (JSON, published as given on `<prefix>/<device>/status`,
    /// QoS 1; republished after every reconnect; only the latest pending value is sent).
    pub fn set_status(&self, json: impl Into<String>) -> Result<(), Error> {
        let json = json.into().into_bytes();
        check_size("status", json.len(), MAX_PAYLOAD_BYTES)?;
        self.send(Msg::Status(json))
    }

    /// Set the retained alarm snapshot (a JPEG, at most [`MAX_SNAPSHOT_BYTES`], published as
    /// given on `<prefix>/<device>/alarm/snapshot`, QoS 1; one in flight at a time, only the
    /// latest waiting one is sent; one without its PUBACK is sent again after a reconnect).
    pub fn set_snapshot(&self, jpeg: impl Into<Vec<u8>>) -> Result<(), Error> {
        self.snapshots().set(jpeg)
    }

    /// A handle that sets snapshots from another thread (an encoder worker), for as long as
    /// this reporter runs.
    pub fn snapshots(&self) -> SnapshotPublisher {
        SnapshotPublisher { tx: self.tx.clone() }
    }

    /// The counters as of the driver's last step.
    pub fn stats(&self) -> Stats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The topics this reporter publishes on.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Clean shutdown: keep delivering queued alarms for up to `shutdown_grace`, flush the
    /// scores, publish the retained `offline`, disconnect. Alarms not acknowledged by then stay
    /// in the spool for the next start. Returns the final counters. Waits at most
    /// `shutdown_grace` plus about 2 s (the only method that waits).
    pub fn shutdown(mut self) -> Stats {
        let _ = self.tx.send(Msg::Shutdown);
        let limit = self.shutdown_grace + DISCONNECT_WAIT + Duration::from_secs(1);
        let end = Instant::now() + limit;
        if let Some(h) = self.driver.take() {
            while !h.is_finished() && Instant::now() < end {
                thread::sleep(Duration::from_millis(5));
            }
            if h.is_finished() {
                let _ = h.join();
            } else {
                tracing::warn!("mqtt: reporter did not stop within {limit:?}; leaving it to finish");
            }
        }
        self.stats()
    }

    fn send(&self, msg: Msg) -> Result<(), Error> {
        self.tx.send(msg).map_err(|_| Error::Stopped)
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if self.driver.is_some() {
            let _ = self.tx.send(Msg::Shutdown);
        }
    }
}

/// Sets a reporter's retained alarm snapshot from any thread: [`Reporter::snapshots`].
#[derive(Clone)]
pub struct SnapshotPublisher {
    tx: mpsc::Sender<Msg>,
}

impl std::fmt::Debug for SnapshotPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotPublisher")
    }
}

impl SnapshotPublisher {
    /// As [`Reporter::set_snapshot`]; [`Error::Stopped`] once the reporter has shut down.
    pub fn set(&self, jpeg: impl Into<Vec<u8>>) -> Result<(), Error> {
        let jpeg = jpeg.into();
        check_size("snapshot", jpeg.len(), MAX_SNAPSHOT_BYTES)?;
        self.tx.send(Msg::Snapshot(jpeg)).map_err(|_| Error::Stopped)
    }
}

fn check_size(what: &'static str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::PayloadTooLarge { what, len, max });
    }
    Ok(())
}

#[derive(Default)]
struct IoCounters {
    connect_failures: u64,
    spool_errors: u64,
}

struct Driver {
    state: ReporterState,
    spool: Spool,
    client: Option<Client>,
    stats: Arc<Mutex<Stats>>,
    io: IoCounters,
    stop: Arc<AtomicBool>,
    conn: Option<JoinHandle<()>>,
    events: ConnQueue,
}

impl Driver {
    fn run(&mut self, rx: mpsc::Receiver<Msg>) {
        let mut disconnect_sent = false;
        let mut group = Vec::new();
        while !self.state.is_finished() {
            let now = Instant::now();
            let wait = self.state.next_deadline().map_or(IDLE_TICK, |d| d.saturating_duration_since(now)).min(IDLE_TICK);
            match rx.recv_timeout(wait) {
                Ok(msg) => group.push(msg),
                Err(RecvTimeoutError::Timeout) => {}
                // The reporter handle is gone without a shutdown (it sends one when dropped,
                // so this is only a safety net).
                Err(RecvTimeoutError::Disconnected) => group.push(Msg::Shutdown),
            }
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(msg) => group.push(msg),
                    Err(_) => break,
                }
            }
            // Connection events first, one at a time, each with its actions carried out at
            // once: publishes must go to the client of the connection the state believes in.
            while let Some(ev) = self.next_event() {
                if let Some(input) = self.conn_input(ev) {
                    disconnect_sent |= self.step(vec![input]);
                }
            }
            // Then the caller's requests as one group.
            let inputs: Vec<Input> = group
                .drain(..)
                .filter_map(|m| match m {
                    Msg::Alarm(a) => Some(Input::Alarm(a)),
                    Msg::Score(p) => Some(Input::Score(p)),
                    Msg::Status(p) => Some(Input::Status(p)),
                    Msg::Snapshot(p) => Some(Input::Snapshot(p)),
                    Msg::Shutdown => Some(Input::Shutdown),
                    Msg::Wake => None,
                })
                .chain([Input::Tick]) // deadlines: score batches, shutdown grace
                .collect();
            disconnect_sent |= self.step(inputs);
            self.publish_stats();
        }
        self.stop.store(true, Ordering::SeqCst);
        // Let the connection thread put the DISCONNECT (and the `offline` before it) on the
        // wire; disconnect any connection it completes meanwhile.
        let deadline = Instant::now() + if disconnect_sent { DISCONNECT_WAIT } else { Duration::from_millis(100) };
        'wait: loop {
            while let Some(ev) = self.next_event() {
                match ev {
                    ConnEvent::Exited => {
                        if let Some(h) = self.conn.take() {
                            let _ = h.join();
                        }
                        break 'wait;
                    }
                    ConnEvent::Connected(client) => {
                        let _ = client.try_disconnect();
                    }
                    _ => {}
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || rx.recv_timeout(left).is_err() {
                break;
            }
        }
        self.client = None;
        self.publish_stats();
    }

    fn next_event(&self) -> Option<ConnEvent> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).pop_front()
    }

    fn conn_input(&mut self, ev: ConnEvent) -> Option<Input> {
        Some(match ev {
            ConnEvent::Connected(client) => {
                tracing::info!("mqtt: connected");
                self.client = Some(client);
                Input::Connected
            }
            ConnEvent::Disconnected(why) => {
                if self.state.is_connected() {
                    tracing::warn!("mqtt: connection lost: {why}");
                }
                self.client = None;
                Input::Disconnected
            }
            ConnEvent::ConnectFailed(why) => {
                self.io.connect_failures += 1;
                tracing::debug!("mqtt: connect failed: {why}");
                return None;
            }
            ConnEvent::Published(pkid) => Input::Published { pkid },
            ConnEvent::PubAck(pkid) => Input::PubAck { pkid },
            ConnEvent::Message(topic, payload) => Input::Message { topic, payload },
            ConnEvent::Exited => return None,
        })
    }

    /// Feed inputs to the state and carry out all their actions. True if the final
    /// DISCONNECT went out.
    fn step(&mut self, inputs: Vec<Input>) -> bool {
        let mut actions = Vec::new();
        let was_connected = self.state.is_connected();
        for input in inputs {
            self.state.handle(Instant::now(), input, &mut actions);
        }
        let disconnect = self.execute(actions);
        if was_connected && !self.state.is_connected() && !disconnect {
            self.client = None;
        }
        disconnect
    }

    /// Carry out actions: first every spool write (each file written, fsynced and renamed,
    /// then one fsync of the directory for all of them), then the rest in order. So an alarm
    /// is on disk before it is published, and a burst of alarms costs one directory fsync.
    fn execute(&mut self, actions: Vec<Action>) -> bool {
        let mut wrote = false;
        for action in &actions {
            if let Action::WriteSpool { seq, alarm } = action {
                wrote = true;
                if let Err(e) = self.spool.write_file(*seq, alarm) {
                    self.io.spool_errors += 1;
                    tracing::error!("mqtt: cannot write {}: {e} (alarm kept in memory only)", self.spool.path(*seq).display());
                }
            }
        }
        if wrote {
            if let Err(e) = self.spool.sync_dir() {
                self.io.spool_errors += 1;
                tracing::error!("mqtt: cannot sync {}: {e}", self.spool.dir().display());
            }
        }
        let mut disconnect = false;
        for action in actions {
            match action {
                Action::WriteSpool { .. } => {}
                Action::Publish(p) => {
                    let qos = match p.qos {
                        Qos::AtMostOnce => QoS::AtMostOnce,
                        Qos::AtLeastOnce => QoS::AtLeastOnce,
                    };
                    match &self.client {
                        Some(c) => {
                            if let Err(e) = c.try_publish(p.topic, qos, p.retain, p.payload) {
                                // Only when the connection just died: its end is on its way
                                // and resets the state, which re-sends alarms from the spool.
                                tracing::debug!("mqtt: publish not queued: {e}");
                            }
                        }
                        None => tracing::debug!("mqtt: publish to {} without a client", p.topic),
                    }
                }
                Action::DeleteSpool { seq } => {
                    if let Err(e) = self.spool.remove(seq) {
                        self.io.spool_errors += 1;
                        tracing::error!("mqtt: cannot delete {}: {e}", self.spool.path(seq).display());
                    }
                }
                Action::Disconnect => {
                    self.stop.store(true, Ordering::SeqCst);
                    if let Some(c) = self.client.take() {
                        let _ = c.try_disconnect();
                    }
                    disconnect = true;
                }
                Action::Reconnect => {
                    if let Some(c) = self.client.take() {
                        let _ = c.try_disconnect();
                    }
                }
                Action::Subscribe { topic } => {
                    if let Some(c) = &self.client {
                        if let Err(e) = c.try_subscribe(topic, QoS::AtLeastOnce) {
                            tracing::debug!("mqtt: subscribe not queued: {e}");
                        }
                    }
                }
            }
        }
        disconnect
    }

    fn publish_stats(&self) {
        let mut s = self.state.stats();
        s.connect_failures = self.io.connect_failures;
        s.spool_errors = self.io.spool_errors;
        *self.stats.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }
}

/// Sleep `d`, waking early when `stop` is set.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        thread::sleep(left.min(Duration::from_millis(20)));
    }
}

/// The connection thread's way to the driver: queue the event, ring the doorbell.
struct ConnLink {
    tx: mpsc::Sender<Msg>,
    events: ConnQueue,
}

impl ConnLink {
    /// False when the driver is gone.
    fn send(&self, ev: ConnEvent) -> bool {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).push_back(ev);
        self.tx.send(Msg::Wake).is_ok()
    }
}

fn connection_thread(opts: MqttOptions, cap: usize, mut backoff: Backoff, link: ConnLink, stop: Arc<AtomicBool>) {
    let send = |ev: ConnEvent| link.send(ev);
    while !stop.load(Ordering::SeqCst) {
        let (client, mut conn): (Client, Connection) = Client::new(opts.clone(), cap);
        match conn.recv() {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                backoff.reset();
                if !send(ConnEvent::Connected(client)) {
                    break;
                }
            }
            Ok(Ok(other)) => {
                tracing::warn!("mqtt: expected CONNACK, got {other:?}");
                continue;
            }
            Ok(Err(e)) => {
                if !send(ConnEvent::ConnectFailed(e.to_string())) {
                    break;
                }
                sleep_unless_stopped(backoff.next_delay(), &stop);
                continue;
            }
            Err(_) => break,
        }
        let why = loop {
            match conn.recv() {
                Ok(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => {
                    if !send(ConnEvent::Published(pkid)) {
                        break "reporter gone".to_string();
                    }
                }
                Ok(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                    if !send(ConnEvent::PubAck(ack.pkid)) {
                        break "reporter gone".to_string();
                    }
                }
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    if !send(ConnEvent::Message(p.topic, p.payload.to_vec())) {
                        break "reporter gone".to_string();
                    }
                }
                Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) => break "disconnected by us".to_string(),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => break e.to_string(),
                Err(_) => break "client closed".to_string(),
            }
        };
        // Dropping the connection closes the socket; a new client is made for the next one.
        drop(conn);
        if !send(ConnEvent::Disconnected(why)) {
            break;
        }
        sleep_unless_stopped(backoff.next_delay(), &stop);
    }
    let _ = link.send(ConnEvent::Exited);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reporter_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Reporter>();
    }

    #[test]
    fn oversized_payloads_are_refused_without_touching_the_network() {
        let tmp = tempfile::tempdir().unwrap();
        let mut o = ReporterOptions::new("unit", tmp.path());
        o.port = 1; // nothing listens there: the reporter just keeps backing off
        let r = Reporter::start(o).unwrap();
        assert!(matches!(r.push_score(vec![0; MAX_SCORE_BYTES + 1]), Err(Error::ScoreTooLarge(65))));
        r.push_score(vec![0; MAX_SCORE_BYTES]).unwrap();
        let big = vec![0; MAX_PAYLOAD_BYTES + 1];
        assert!(matches!(r.push_alarm(big.clone(), "{}"), Err(Error::PayloadTooLarge { what: "alarm packet", .. })));
        let t = Instant::now();
        r.shutdown();
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
