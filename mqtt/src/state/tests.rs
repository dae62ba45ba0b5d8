use super::*;
use std::time::Duration;

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
