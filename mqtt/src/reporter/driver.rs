//! The reporter's background threads: the driver, which owns the devices' states and spools and
//! carries out their actions, and the connection thread (see the parent module).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rumqttc::{Client, Connection, Event, MqttOptions, Outgoing, Packet, QoS};

use crate::spool::Spool;
use crate::state::{Action, Alarm, Backoff, Input, Qos, ReporterState, Stats};

/// Longest the driver sleeps without a tick.
const IDLE_TICK: Duration = Duration::from_millis(500);
/// After the final DISCONNECT, how long the driver waits for the connection thread to flush it.
pub(super) const DISCONNECT_WAIT: Duration = Duration::from_secs(1);
/// Most caller requests handled as one group (one directory fsync for their spool files).
const MAX_GROUP: usize = 64;

/// What the driver's channel carries: caller requests (with the index of their device on the
/// connection), and a doorbell for connection events.
pub(super) enum Msg {
    Alarm(usize, Alarm),
    Score(usize, Vec<u8>),
    Status(usize, Vec<u8>),
    Snapshot(usize, Vec<u8>),
    Shutdown(usize),
    /// Connection events are waiting in [`ConnQueue`].
    Wake,
}

/// Connection events, kept apart from caller requests so that they are handled first: a burst
/// of alarms (each costing an fsync) must not delay noticing that the connection is gone.
pub(super) type ConnQueue = Arc<Mutex<VecDeque<ConnEvent>>>;

pub(super) enum ConnEvent {
    Connected(Client),
    ConnectFailed(String),
    Disconnected(String),
    Published(u16),
    PubAck(u16),
    /// A message on the one subscribed topic (the hub's birth topic).
    Message(String, Vec<u8>),
    Exited,
}

#[derive(Default)]
pub(super) struct IoCounters {
    pub(super) connect_failures: u64,
    pub(super) spool_errors: u64,
}

/// One device on the connection.
pub(super) struct Slot {
    pub(super) state: ReporterState,
    pub(super) spool: Spool,
    pub(super) stats: Arc<Mutex<Stats>>,
    pub(super) done: Arc<AtomicBool>,
    pub(super) io: IoCounters,
}

pub(super) struct Driver {
    pub(super) slots: Vec<Slot>,
    pub(super) client: Option<Client>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) conn: Option<JoinHandle<()>>,
    pub(super) events: ConnQueue,
    /// The device of each publish handed to the client whose packet id is not known yet, oldest
    /// first (rumqttc reports ids in this order).
    pub(super) sent_by: VecDeque<usize>,
    /// The device of each QoS 1 publish on the wire, by packet id.
    pub(super) awaiting: HashMap<u16, usize>,
}

impl Driver {
    fn all_finished(&self) -> bool {
        self.slots.iter().all(|s| s.state.is_finished())
    }

    fn any_connected(&self) -> bool {
        self.slots.iter().any(|s| s.state.is_connected())
    }

    pub(super) fn run(&mut self, rx: mpsc::Receiver<Msg>) {
        let mut disconnect_sent = false;
        let mut group = Vec::new();
        while !self.all_finished() {
            let now = Instant::now();
            let deadline = self.slots.iter().filter_map(|s| s.state.next_deadline()).min();
            let wait = deadline.map_or(IDLE_TICK, |d| d.saturating_duration_since(now)).min(IDLE_TICK);
            match rx.recv_timeout(wait) {
                Ok(msg) => group.push(msg),
                Err(RecvTimeoutError::Timeout) => {}
                // Every reporter handle is gone without a shutdown (each sends one when
                // dropped, so this is only a safety net).
                Err(RecvTimeoutError::Disconnected) => group.extend((0..self.slots.len()).map(Msg::Shutdown)),
            }
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(msg) => group.push(msg),
                    Err(_) => break,
                }
            }
            // Connection events first, one at a time, each with its actions carried out at
            // once: publishes must go to the client of the connection the states believe in.
            while let Some(ev) = self.next_event() {
                disconnect_sent |= self.conn_event(ev);
            }
            // Then the caller's requests as one group per device.
            let mut inputs: Vec<Vec<Input>> = (0..self.slots.len()).map(|_| Vec::new()).collect();
            for m in group.drain(..) {
                let (slot, input) = match m {
                    Msg::Alarm(i, a) => (i, Input::Alarm(a)),
                    Msg::Score(i, p) => (i, Input::Score(p)),
                    Msg::Status(i, p) => (i, Input::Status(p)),
                    Msg::Snapshot(i, p) => (i, Input::Snapshot(p)),
                    Msg::Shutdown(i) => (i, Input::Shutdown),
                    Msg::Wake => continue,
                };
                if let Some(v) = inputs.get_mut(slot) {
                    v.push(input);
                }
            }
            for (i, mut v) in inputs.into_iter().enumerate() {
                v.push(Input::Tick); // deadlines: score batches, shutdown grace
                disconnect_sent |= self.step(i, v);
            }
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

    /// One connection event, routed to the device(s) it concerns. True if the final DISCONNECT
    /// went out.
    fn conn_event(&mut self, ev: ConnEvent) -> bool {
        let all = |input: Input, d: &mut Self| (0..d.slots.len()).fold(false, |acc, i| d.step(i, vec![input.clone()]) | acc);
        match ev {
            ConnEvent::Connected(client) => {
                tracing::info!("mqtt: connected");
                self.client = Some(client);
                self.sent_by.clear();
                self.awaiting.clear();
                all(Input::Connected, self)
            }
            ConnEvent::Disconnected(why) => {
                if self.any_connected() {
                    tracing::warn!("mqtt: connection lost: {why}");
                }
                self.client = None;
                self.sent_by.clear();
                self.awaiting.clear();
                all(Input::Disconnected, self)
            }
            ConnEvent::ConnectFailed(why) => {
                for s in &mut self.slots {
                    s.io.connect_failures += 1;
                }
                tracing::debug!("mqtt: connect failed: {why}");
                false
            }
            // A publish nobody is waiting for goes to the first device, whose state then asks
            // for a new connection (its own bookkeeping is off as well).
            ConnEvent::Published(pkid) => {
                let i = self.sent_by.pop_front().unwrap_or(0);
                if pkid != 0 {
                    self.awaiting.insert(pkid, i);
                }
                self.step(i, vec![Input::Published { pkid }])
            }
            ConnEvent::PubAck(pkid) => {
                let i = self.awaiting.remove(&pkid).unwrap_or(0);
                self.step(i, vec![Input::PubAck { pkid }])
            }
            ConnEvent::Message(topic, payload) => all(Input::Message { topic, payload }, self),
            ConnEvent::Exited => false,
        }
    }

    /// Feed inputs to one device's state and carry out all their actions. True if the final
    /// DISCONNECT went out.
    fn step(&mut self, slot: usize, inputs: Vec<Input>) -> bool {
        let mut actions = Vec::new();
        let was_connected = self.any_connected();
        for input in inputs {
            self.slots[slot].state.handle(Instant::now(), input, &mut actions);
        }
        let disconnect = self.execute(slot, actions);
        if was_connected && !self.any_connected() && !disconnect {
            self.client = None;
        }
        disconnect
    }

    /// Carry out one device's actions: first every spool write (each file written, fsynced and
    /// renamed, then one fsync of the directory for all of them), then the rest in order. So an
    /// alarm is on disk before it is published, and a burst of alarms costs one directory fsync.
    pub(super) fn execute(&mut self, slot: usize, actions: Vec<Action>) -> bool {
        let mut wrote = false;
        {
            let s = &mut self.slots[slot];
            for action in &actions {
                if let Action::WriteSpool { seq, alarm } = action {
                    wrote = true;
                    if let Err(e) = s.spool.write_file(*seq, alarm) {
                        s.io.spool_errors += 1;
                        tracing::error!("mqtt: cannot write {}: {e} (alarm kept in memory only)", s.spool.path(*seq).display());
                    }
                }
            }
            if wrote {
                if let Err(e) = s.spool.sync_dir() {
                    s.io.spool_errors += 1;
                    tracing::error!("mqtt: cannot sync {}: {e}", s.spool.dir().display());
                }
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
                    // In the order handed to the client, as the state keeps its own.
                    self.sent_by.push_back(slot);
                    match &self.client {
                        Some(c) => {
                            if let Err(e) = c.try_publish(p.topic, qos, p.retain, p.payload) {
                                // Only when the connection just died: its end is on its way
                                // and resets the states, which re-send alarms from the spools.
                                tracing::debug!("mqtt: publish not queued: {e}");
                            }
                        }
                        None => tracing::debug!("mqtt: publish to {} without a client", p.topic),
                    }
                }
                Action::DeleteSpool { seq } => {
                    let s = &mut self.slots[slot];
                    if let Err(e) = s.spool.remove(seq) {
                        s.io.spool_errors += 1;
                        tracing::error!("mqtt: cannot delete {}: {e}", s.spool.path(seq).display());
                    }
                }
                // This device is done; the connection closes with the last one.
                Action::Disconnect => {
                    if self.all_finished() {
                        self.stop.store(true, Ordering::SeqCst);
                        if let Some(c) = self.client.take() {
                            let _ = c.try_disconnect();
                        }
                        disconnect = true;
                    }
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
        if self.slots[slot].state.is_finished() {
            self.slots[slot].done.store(true, Ordering::SeqCst);
        }
        disconnect
    }

    fn publish_stats(&self) {
        for s in &self.slots {
            let mut st = s.state.stats();
            st.connect_failures = s.io.connect_failures;
            st.spool_errors = s.io.spool_errors;
            *s.stats.lock().unwrap_or_else(|p| p.into_inner()) = st;
        }
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
pub(super) struct ConnLink {
    pub(super) tx: mpsc::Sender<Msg>,
    pub(super) events: ConnQueue,
}

impl ConnLink {
    /// False when the driver is gone.
    fn send(&self, ev: ConnEvent) -> bool {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).push_back(ev);
        self.tx.send(Msg::Wake).is_ok()
    }
}

pub(super) fn connection_thread(opts: MqttOptions, cap: usize, mut backoff: Backoff, link: ConnLink, stop: Arc<AtomicBool>) {
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
