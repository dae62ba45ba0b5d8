//! The thin I/O layer: threads, the rumqttc client, the spool directory, the clock.
//!
//! Two background threads per connection:
//! - the *driver* owns one [`ReporterState`] and one [`Spool`] per device on the connection (one
//!   device for [`Reporter::start`], several for [`Reporter::start_shared`]) and the rumqttc
//!   [`Client`] of the current connection. It feeds connection events (first, one by one) and
//!   caller requests (then, in groups of up to 64) to the states with the current time, and
//!   carries out the resulting actions (publish with `try_publish`, which never blocks: the
//!   channel is sized by the states' gates; write/delete spool files, with one directory fsync
//!   per group). With several devices it routes each publish's id and PUBACK back to the device
//!   that published it (rumqttc reports ids in the order publishes were handed to it).
//! - the *connection* thread makes a fresh rumqttc [`Client`]/[`Connection`] for every
//!   connection attempt, waits for the CONNACK (backing off exponentially after failures),
//!   hands the client to the driver, then blocks on the connection's events and forwards the
//!   ones that matter (publish ids, PUBACKs, the end of the connection). A fresh client per
//!   connection means requests of a dead connection can never reach the next one: the states
//!   re-send unacknowledged alarms themselves, from the spools.
//!
//! The caller's methods only send on an unbounded channel: they never block on the network or
//! the disk.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

mod driver;

use driver::{connection_thread, ConnLink, ConnQueue, Driver, IoCounters, Msg, Slot, DISCONNECT_WAIT};

use crate::options::{ReporterOptions, MAX_PAYLOAD_BYTES, MAX_SCORE_BYTES, MAX_SNAPSHOT_BYTES};
use crate::spool::Spool;
use crate::state::{Alarm, Backoff, ReporterState, Stats, Topics};
use crate::Error;

/// What the caller's side of one device shares with the driver.
struct SlotLink {
    stats: Arc<Mutex<Stats>>,
    /// Set by the driver once this device's state has finished (shut down).
    done: Arc<AtomicBool>,
}

/// Reports one device's availability, alarms, scores and status to an MQTT broker.
///
/// Create it with [`Reporter::start`] (its own connection) or [`Reporter::start_shared`] (several
/// devices on one connection); all other methods return at once (they queue work for a
/// background thread). End it with [`Reporter::shutdown`]; dropping it starts the same shutdown
/// without waiting for it.
pub struct Reporter {
    tx: mpsc::Sender<Msg>,
    slot: usize,
    link: SlotLink,
    topics: Topics,
    driver: Arc<Mutex<Option<JoinHandle<()>>>>,
    /// Every device's done flag on this connection (the last one to shut down waits for the
    /// connection to close).
    all_done: Vec<Arc<AtomicBool>>,
    shutdown_grace: Duration,
    shut: bool,
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
        let mut v = Self::start_shared(vec![opts])?;
        Ok(v.pop().expect("one device, one reporter"))
    }

    /// Several devices on one MQTT connection, one [`Reporter`] each (in the order given): each
    /// keeps its topics, spool, queues, discovery and counters, and shuts down on its own (its
    /// `offline` published; the connection closes with the last one). The connection's settings
    /// (host, port, client id, keep-alive, credentials, TLS, backoff) are the first device's; the
    /// others must name the same broker. One connection has one last will: it goes on the first
    /// device's availability topic, so a subscriber that must see every device go offline when
    /// the process dies watches that topic too (Home Assistant discovery lists it).
    pub fn start_shared(opts: Vec<ReporterOptions>) -> Result<Vec<Reporter>, Error> {
        let Some(first) = opts.first() else { return Err(Error::Options("no device to report for".into())) };
        for o in &opts {
            o.validate()?;
            if (o.host.as_str(), o.port) != (first.host.as_str(), first.port) {
                return Err(Error::Options(format!("device {} names broker {}:{}, the connection's is {}:{}", o.device, o.host, o.port, first.host, first.port)));
            }
        }
        for (i, o) in opts.iter().enumerate() {
            if opts[..i].iter().any(|p| p.device == o.device && p.prefix == o.prefix) {
                return Err(Error::Options(format!("device {} given twice on one connection", o.device)));
            }
        }
        let tls = first.tls.as_ref().map(|t| t.client_config()).transpose()?;
        let mut slots = Vec::new();
        let mut links = Vec::new();
        let mut boot = Vec::new();
        let mut channel_cap = 0;
        let mut inflight = 0;
        for o in &opts {
            let (spool, recovered) = Spool::open(&o.spool_dir)?;
            let cfg = o.state_config();
            channel_cap += cfg.request_channel_capacity();
            inflight += 2 * o.max_inflight_alarms + 9;
            let first_seq = recovered.alarms.last().map_or(1, |(seq, _)| seq + 1);
            let mut state = ReporterState::new(cfg, first_seq);
            if !recovered.alarms.is_empty() {
                tracing::info!("mqtt: {} alarm(s) left in {} by an earlier run will be delivered", recovered.alarms.len(), spool.dir().display());
            }
            let mut actions = Vec::new();
            state.recover(recovered.alarms, &mut actions);
            let stats = Arc::new(Mutex::new(state.stats()));
            let done = Arc::new(AtomicBool::new(false));
            links.push(SlotLink { stats: stats.clone(), done: done.clone() });
            slots.push(Slot { state, spool, stats, done, io: IoCounters::default() });
            boot.push(actions);
        }
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mqtt = first.mqtt_options(tls, inflight);
        let backoff = Backoff::new(first.backoff_min, first.backoff_max);

        let events: ConnQueue = Arc::default();
        let conn_link = ConnLink { tx: tx.clone(), events: events.clone() };
        let conn_stop = stop.clone();
        let conn = thread::Builder::new()
            .name(format!("sfn-mqtt-conn-{}", first.device))
            .spawn(move || connection_thread(mqtt, channel_cap, backoff, conn_link, conn_stop))
            .map_err(|e| Error::Options(format!("cannot spawn thread: {e}")))?;

        let mut driver = Driver { slots, client: None, stop, conn: Some(conn), events, sent_by: VecDeque::new(), awaiting: HashMap::new() };
        for (i, actions) in boot.into_iter().enumerate() {
            driver.execute(i, actions);
        }
        let handle = thread::Builder::new().name(format!("sfn-mqtt-{}", first.device)).spawn(move || driver.run(rx)).map_err(|e| Error::Options(format!("cannot spawn thread: {e}")))?;
        let driver = Arc::new(Mutex::new(Some(handle)));
        let all_done: Vec<Arc<AtomicBool>> = links.iter().map(|l| l.done.clone()).collect();
        Ok(opts
            .iter()
            .zip(links)
            .enumerate()
            .map(|(slot, (o, link))| Reporter { tx: tx.clone(), slot, link, topics: o.topics(), driver: driver.clone(), all_done: all_done.clone(), shutdown_grace: o.shutdown_grace, shut: false })
            .collect())
    }

    /// Queue an alarm: `packet` goes to `<prefix>/<device>/alarm`, `json` to
    /// `<prefix>/<device>/alarm/json`, both QoS 1, in push order, after being written to the
    /// spool. Fails only for an oversized payload or a stopped reporter.
    pub fn push_alarm(&self, packet: impl Into<Vec<u8>>, json: impl Into<String>) -> Result<(), Error> {
        let alarm = Alarm { packet: packet.into(), json: json.into().into_bytes() };
        check_size("alarm packet", alarm.packet.len(), MAX_PAYLOAD_BYTES)?;
        check_size("alarm JSON", alarm.json.len(), MAX_PAYLOAD_BYTES)?;
        self.send(Msg::Alarm(self.slot, alarm))
    }

    /// Queue one score payload (at most [`MAX_SCORE_BYTES`]) for the next `score` batch.
    pub fn push_score(&self, payload: impl Into<Vec<u8>>) -> Result<(), Error> {
        let payload = payload.into();
        if payload.len() > MAX_SCORE_BYTES {
            return Err(Error::ScoreTooLarge(payload.len()));
        }
        self.send(Msg::Score(self.slot, payload))
    }

    /// Set the retained status (JSON, published as given on `<prefix>/<device>/status`,
    /// QoS 1; republished after every reconnect; only the latest pending value is sent).
    pub fn set_status(&self, json: impl Into<String>) -> Result<(), Error> {
        let json = json.into().into_bytes();
        check_size("status", json.len(), MAX_PAYLOAD_BYTES)?;
        self.send(Msg::Status(self.slot, json))
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
        SnapshotPublisher { tx: self.tx.clone(), slot: self.slot }
    }

    /// The counters as of the driver's last step.
    pub fn stats(&self) -> Stats {
        self.link.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The topics this reporter publishes on.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Clean shutdown: keep delivering queued alarms for up to `shutdown_grace`, flush the
    /// scores, publish the retained `offline`, (the last device on the connection) disconnect.
    /// Alarms not acknowledged by then stay in the spool for the next start. Returns the final
    /// counters. Waits at most `shutdown_grace` plus about 2 s (the only method that waits).
    pub fn shutdown(mut self) -> Stats {
        self.shut = true;
        let _ = self.tx.send(Msg::Shutdown(self.slot));
        let limit = self.shutdown_grace + DISCONNECT_WAIT + Duration::from_secs(1);
        let end = Instant::now() + limit;
        let all_done = || self.all_done.iter().all(|d| d.load(Ordering::SeqCst));
        let driver_finished = || self.driver.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_none_or(|h| h.is_finished());
        // This device's state is done; the last device also waits for the connection to close.
        while Instant::now() < end && !(self.link.done.load(Ordering::SeqCst) && (!all_done() || driver_finished())) {
            thread::sleep(Duration::from_millis(5));
        }
        if all_done() {
            let h = self.driver.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(h) = h {
                if h.is_finished() {
                    let _ = h.join();
                } else {
                    tracing::warn!("mqtt: reporter did not stop within {limit:?}; leaving it to finish");
                }
            }
        } else if !self.link.done.load(Ordering::SeqCst) {
            tracing::warn!("mqtt: device {} did not stop within {limit:?}", self.topics.available);
        }
        self.stats()
    }

    fn send(&self, msg: Msg) -> Result<(), Error> {
        self.tx.send(msg).map_err(|_| Error::Stopped)
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if !self.shut {
            let _ = self.tx.send(Msg::Shutdown(self.slot));
        }
    }
}

/// Sets a reporter's retained alarm snapshot from any thread: [`Reporter::snapshots`].
#[derive(Clone)]
pub struct SnapshotPublisher {
    tx: mpsc::Sender<Msg>,
    slot: usize,
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
        self.tx.send(Msg::Snapshot(self.slot, jpeg)).map_err(|_| Error::Stopped)
    }
}

fn check_size(what: &'static str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::PayloadTooLarge { what, len, max });
    }
    Ok(())
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
