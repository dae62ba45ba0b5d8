//! Host tests of the alarm unit with recording pins and recorded byte streams.

mod common;

use common::*;
use sfn_firmware_core::{AlarmUnit, Config, Counters, Link, Status};
use sfn_wire::{AlarmState::*, MAX_FRAMED};

const CFG: Config = Config { heartbeat_timeout_ms: 3_000, model_id: None, fault_pulse_on_ms: 1_000, fault_pulse_period_ms: 10_000 };

#[test]
fn starts_idle_with_pins_low() {
    let (u, siren, relay) = unit(CFG);
    assert_eq!(siren.writes(), [false]);
    assert_eq!(relay.writes(), [false]);
    let s = u.status();
    assert!(!s.alarm && !s.relay_latched && !s.siren_wanted);
    assert_eq!(s.link, Link::Up);
    assert_eq!((s.siren_written, s.relay_written), (Some(false), Some(false)));
    assert_eq!((s.last_seq, s.last_alarm, s.last_good_ms), (None, None, None));
    assert_eq!(s.counters, Counters::default());
}

#[test]
fn raise_and_clear_drive_siren_exactly() {
    let (mut u, siren, relay) = unit(CFG);
    let steps = [
        (Idle, false, [false].as_slice()),
        (Raised, true, &[false, true]),
        (Active, true, &[false, true]),
        (Active, true, &[false, true]),
        (Cleared, false, &[false, true, false]),
        (Idle, false, &[false, true, false]),
        (Raised, true, &[false, true, false, true]),
        (Idle, false, &[false, true, false, true, false]), // Idle clears too
    ];
    for (i, (state, on, writes)) in steps.into_iter().enumerate() {
        u.on_bytes(&frame(i as u16, state), 100 * i as u64);
        let s = u.status();
        assert_eq!(s.alarm, on, "step {i}");
        assert_eq!(s.siren_wanted, on, "step {i}");
        assert_eq!(siren.writes(), writes, "step {i}");
        assert_eq!(s.last_alarm, Some(state));
    }
    // Relay: latched at the first alarm, never released (no acknowledge).
    assert_eq!(relay.writes(), [false, true]);
    let s = u.status();
    assert_eq!(s.counters.good, 8);
    assert_eq!(s.counters.alarms, 2);
    assert_eq!(s.last_seq, Some(7));
    assert_eq!(s.counters.seq_gaps, 0);
}

#[test]
fn relay_latches_until_acknowledge() {
    let (mut u, siren, relay) = unit(CFG);
    u.on_bytes(&frame(1, Raised), 0);
    u.on_bytes(&frame(2, Cleared), 10);
    assert!(!u.status().alarm && u.status().relay_latched);
    assert_eq!(relay.writes(), [false, true]);
    u.tick(2_000);
    assert_eq!(relay.writes(), [false, true], "latch survives ticks");

    u.acknowledge();
    assert!(!u.status().relay_latched);
    assert_eq!(relay.writes(), [false, true, false]);
    u.acknowledge();
    assert_eq!(relay.writes(), [false, true, false], "no write without change");

    // Acknowledge during an alarm releases the relay, not the siren; Active doesn't re-latch,
    // a new Raised does.
    u.on_bytes(&frame(3, Raised), 2_100);
    assert_eq!(relay.writes(), [false, true, false, true]);
    u.acknowledge();
    assert_eq!(relay.writes(), [false, true, false, true, false]);
    assert!(u.status().alarm);
    assert_eq!(siren.level(), Some(true));
    u.on_bytes(&frame(4, Active), 2_200);
    assert_eq!(relay.writes(), [false, true, false, true, false]);
    u.on_bytes(&frame(5, Raised), 2_300);
    assert_eq!(relay.writes(), [false, true, false, true, false, true]);
    u.on_bytes(&frame(6, Cleared), 2_400);
    assert_eq!(relay.writes(), [false, true, false, true, false, true]);
    assert_eq!(siren.writes(), [false, true, false, true, false]);
}

#[test]
fn active_after_restart_turns_alarm_on() {
    let (mut u, siren, relay) = unit(CFG);
    u.on_bytes(&frame(900, Active), 50);
    let s = u.status();
    assert!(s.alarm && s.relay_latched);
    assert_eq!(s.counters.alarms, 1);
    assert_eq!(siren.writes(), [false, true]);
    assert_eq!(relay.writes(), [false, true]);
}

#[test]
fn sequence_gaps_counted() {
    let (mut u, _, _) = unit(Config { heartbeat_timeout_ms: 0, ..CFG });
    let feed = |u: &mut Unit, seqs: &[u16]| {
        for &s in seqs {
            u.on_bytes(&frame(s, Idle), 0);
        }
    };
    feed(&mut u, &[10, 11, 14, 15, 15, 20]);
    let c = u.status().counters;
    assert_eq!((c.seq_gaps, c.lost_packets, c.duplicates, c.seq_restarts), (2, 6, 1, 0));

    // Wrapping: 65534, 65535, 0 are consecutive; 0 -> 2 loses one.
    feed(&mut u, &[65534]); // 20 -> 65534 is a backwards jump: a restart
    feed(&mut u, &[65535, 0, 2]);
    let c = u.status().counters;
    assert_eq!((c.seq_gaps, c.lost_packets, c.duplicates, c.seq_restarts), (3, 7, 1, 1));

    // Sender restart: 500 -> 3 is not 65 038 lost packets.
    feed(&mut u, &[500, 3, 4]);
    let c = u.status().counters;
    assert_eq!((c.seq_gaps, c.lost_packets, c.seq_restarts), (4, 7 + 497, 2));

    // Largest forward gap.
    feed(&mut u, &[0, 0x7fff]);
    let c = u.status().counters;
    assert_eq!((c.seq_gaps, c.lost_packets, c.seq_restarts), (5, 7 + 497 + 0x7ffe, 3));
    assert_eq!(c.good, 15);
    assert_eq!(u.status().last_seq, Some(0x7fff));
}

#[test]
fn corrupt_frames_counted_and_decoding_resynchronises() {
    let (mut u, siren, _) = unit(CFG);
    let mut s = Vec::new();
    s.extend_from_slice(b"\x13\x37 line noise\x00"); // garbage, then a delimiter
    s.extend(frame(1, Idle)); // good
    s.extend(&frame(2, Idle)[..20]); // truncated (lost tail) ...
    s.push(0); // ... but its delimiter arrived
    s.extend(frame(3, Raised)); // good
    let mut flipped = frame(4, Cleared);
    flipped[15] ^= 0x04;
    assert_ne!(flipped[15], 0);
    s.extend(&flipped); // bit flip: CRC error; the Cleared is lost
    s.extend(&frame(5, Idle)[..10]); // truncated without delimiter: merges with the next
    s.extend(frame(6, Cleared)); // ... so this one is lost too (one overlong frame)
    s.extend([0, 0, 0]); // empty frames: ignored
    s.extend(other_version_frame(2, 7)); // intact, version 2
    s.extend(std::iter::repeat_n(0x55, 200)); // long garbage ...
    s.push(0); // ... one overlong frame
    s.extend(frame(8, Cleared)); // good

    let mut alarm_after = Vec::new();
    for (i, b) in s.iter().enumerate() {
        u.on_bytes(std::slice::from_ref(b), 0);
        if *b == 0 {
            alarm_after.push((i, u.status().alarm));
        }
    }
    let st = u.status();
    assert_eq!(st.counters.good, 3);
    assert_eq!(st.counters.corrupt, 5);
    assert_eq!(st.counters.other_version, 1);
    assert_eq!((st.counters.seq_gaps, st.counters.lost_packets), (2, 1 + 4));
    assert_eq!(st.last_seq, Some(8));
    assert!(!st.alarm);
    // The alarm stayed on through the corrupted Cleared frames until seq 8.
    assert_eq!(siren.writes(), [false, true, false]);
    assert_eq!(st.counters.alarms, 1);
}

#[test]
fn model_filter() {
    let cfg = Config { model_id: Some(MODEL_A), ..CFG };
    let (mut u, siren, _) = unit(cfg);
    u.on_bytes(&frame_of(&packet(1, Raised, MODEL_B)), 0);
    assert!(!u.status().alarm);
    u.on_bytes(&frame_of(&packet(100, Raised, MODEL_A)), 0);
    assert!(u.status().alarm);
    u.on_bytes(&frame_of(&packet(2, Cleared, MODEL_B)), 1_000);
    u.on_bytes(&frame_of(&packet(3, Idle, MODEL_B)), 2_000);
    assert!(u.status().alarm, "other models cannot clear");
    u.on_bytes(&frame_of(&packet(101, Active, MODEL_A)), 2_500);
    u.on_bytes(&frame_of(&packet(4, Idle, MODEL_B)), 5_000);
    u.tick(5_499);
    assert_eq!(u.status().link, Link::Up);
    u.tick(5_500);
    assert_eq!(u.status().link, Link::Lost { since_ms: 5_500 }, "other models are no heartbeat");
    let c = u.status().counters;
    assert_eq!((c.good, c.foreign_model, c.seq_gaps, c.seq_restarts), (2, 4, 0, 0));
    assert_eq!(siren.writes(), [false, true]);

    // Any model.
    let (mut u, _, _) = unit(CFG);
    u.on_bytes(&frame_of(&packet(1, Raised, MODEL_B)), 0);
    u.on_bytes(&frame_of(&packet(2, Active, MODEL_A)), 0);
    assert!(u.status().alarm);
    assert_eq!((u.status().counters.good, u.status().counters.foreign_model), (2, 0));
}

#[test]
fn heartbeat_timeout_pulses_and_recovers() {
    let (mut u, siren, relay) = unit(CFG);
    u.on_bytes(&frame(1, Idle), 0);
    let expect = [
        (2_999, Link::Up, false),
        (3_000, Link::Lost { since_ms: 3_000 }, true),
        (3_500, Link::Lost { since_ms: 3_000 }, true),
        (3_999, Link::Lost { since_ms: 3_000 }, true),
        (4_000, Link::Lost { since_ms: 3_000 }, false),
        (12_999, Link::Lost { since_ms: 3_000 }, false),
        (13_000, Link::Lost { since_ms: 3_000 }, true),
        (13_999, Link::Lost { since_ms: 3_000 }, true),
        (14_000, Link::Lost { since_ms: 3_000 }, false),
        (23_500, Link::Lost { since_ms: 3_000 }, true), // coarse ticks: phase from now_ms
        (25_000, Link::Lost { since_ms: 3_000 }, false),
    ];
    for (t, link, on) in expect {
        u.tick(t);
        assert_eq!(u.status().link, link, "t={t}");
        assert_eq!(u.status().siren_wanted, on, "t={t}");
        assert_eq!(siren.level(), Some(on), "t={t}");
    }
    assert_eq!(siren.writes(), [false, true, false, true, false, true, false]);
    assert_eq!(u.status().counters.link_losses, 1);
    assert!(!u.status().alarm);

    // Recovery on the next good packet; the timeout restarts from it.
    u.on_bytes(&frame(2, Idle), 25_500);
    assert_eq!(u.status().link, Link::Up);
    assert_eq!(u.status().last_good_ms, Some(25_500));
    u.tick(28_499);
    assert_eq!(u.status().link, Link::Up);
    u.tick(28_500);
    assert_eq!(u.status().link, Link::Lost { since_ms: 28_500 });
    assert_eq!(siren.level(), Some(true));
    // Recovery mid-pulse switches the siren off at once.
    u.on_bytes(&frame(3, Idle), 28_700);
    assert_eq!(u.status().link, Link::Up);
    assert_eq!(siren.level(), Some(false));
    assert_eq!(u.status().counters.link_losses, 2);
    assert_eq!(relay.writes(), [false], "a fault does not touch the relay");

    // Corrupt frames are no heartbeat; bytes that arrive late still see the loss.
    u.on_bytes(b"garbage\x00", 32_000);
    assert_eq!(u.status().link, Link::Lost { since_ms: 31_700 });
    assert_eq!(u.status().counters.link_losses, 3);
}

#[test]
fn heartbeat_from_start_without_packets() {
    let siren = RecordingPin::default();
    let mut u = AlarmUnit::new(CFG, siren.clone(), RecordingPin::default(), 1_000_000);
    u.tick(1_002_999);
    assert_eq!(u.status().link, Link::Up);
    u.tick(1_003_000);
    assert_eq!(u.status().link, Link::Lost { since_ms: 1_003_000 });
    assert_eq!(siren.writes(), [false, true]);

    // Heartbeat disabled.
    let (mut u, siren, _) = unit(Config { heartbeat_timeout_ms: 0, ..CFG });
    u.tick(u64::MAX);
    assert_eq!(u.status().link, Link::Up);
    assert_eq!(siren.writes(), [false]);
}

#[test]
fn fault_and_alarm_siren_continuous() {
    let (mut u, siren, _) = unit(CFG);
    u.on_bytes(&frame(1, Raised), 0);
    for t in (0..=30_000).step_by(100) {
        u.tick(t);
        assert!(u.status().siren_wanted);
    }
    assert_eq!(u.status().link, Link::Lost { since_ms: 3_000 });
    assert!(u.status().alarm, "alarm held while the link is lost");
    assert_eq!(siren.writes(), [false, true], "alarm wins: no pulsing");
    // Cleared: recovery and siren off.
    u.on_bytes(&frame(2, Cleared), 30_050);
    assert_eq!(u.status().link, Link::Up);
    assert_eq!(siren.writes(), [false, true, false]);
    // Lost again without alarm: pulse pattern from the new deadline.
    u.tick(33_050);
    u.tick(34_049);
    u.tick(34_050);
    assert_eq!(siren.writes(), [false, true, false, true, false]);
}

/// A recorded stream: garbage, good frames with alarms and gaps, corrupt and foreign frames.
fn mixed_stream() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(b"\xff\x01boot noise\x00");
    s.extend(frame(1, Idle));
    s.extend(frame(2, Raised));
    s.extend(&frame(3, Active)[..17]);
    s.extend(frame(4, Active));
    let mut f = frame(5, Cleared);
    f[3] ^= 0x80;
    s.extend(f);
    s.extend(other_version_frame(9, 6));
    s.extend(frame(7, Cleared));
    s.extend(frame_of(&packet(8, Raised, MODEL_B)));
    s.extend([0, 0]);
    s.extend(frame(12, Raised));
    s.extend(b"\x02\x03\x00");
    s.extend(frame(13, Idle));
    s
}

fn run_chunks(stream: &[u8], cuts: &[usize]) -> (Status, Vec<bool>, Vec<bool>) {
    let (mut u, siren, relay) = unit(CFG);
    let mut start = 0;
    for &cut in cuts.iter().chain([stream.len()].iter()) {
        u.on_bytes(&stream[start..cut], 1_000);
        start = cut;
    }
    (u.status(), siren.writes(), relay.writes())
}

#[test]
fn split_stream_equals_whole() {
    let s = mixed_stream();
    let whole = run_chunks(&s, &[]);
    assert_eq!(whole.0.counters.good, 6);
    assert_eq!(whole.0.counters.corrupt, 4);
    assert_eq!(whole.0.counters.other_version, 1);
    assert_eq!(whole.1, [false, true, false, true, false]);
    for i in 0..=s.len() {
        assert_eq!(run_chunks(&s, &[i]), whole, "split at {i}");
    }
    let every: Vec<usize> = (1..s.len()).collect();
    assert_eq!(run_chunks(&s, &every), whole, "byte by byte");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2_000 {
        let mut cuts: Vec<usize> = (0..rng.below(8)).map(|_| rng.below(s.len() as u64 + 1) as usize).collect();
        cuts.sort_unstable();
        assert_eq!(run_chunks(&s, &cuts), whole, "cuts {cuts:?}");
    }
}

#[test]
fn pin_errors_counted_and_retried() {
    let (mut u, siren, relay) = unit(CFG);
    siren.0.borrow_mut().fail_next = 2;
    u.on_bytes(&frame(1, Raised), 0); // fails after the packet and again at the end
    let s = u.status();
    assert_eq!((s.counters.siren_pin_errors, s.siren_written), (2, None));
    assert!(s.siren_wanted);
    u.tick(10); // retry succeeds
    let s = u.status();
    assert_eq!((s.counters.siren_pin_errors, s.siren_written), (2, Some(true)));
    assert_eq!(siren.writes(), [false, true]);
    u.tick(20);
    assert_eq!(siren.writes(), [false, true], "no rewrite once written");

    // A broken relay: every update retries and counts, nothing panics.
    relay.0.borrow_mut().broken = true;
    u.acknowledge();
    assert_eq!(u.status().counters.relay_pin_errors, 1);
    assert!(!u.status().relay_latched);
    u.tick(30);
    u.tick(40);
    assert_eq!(u.status().counters.relay_pin_errors, 3);
    assert_eq!(u.status().relay_written, None);
    relay.0.borrow_mut().broken = false;
    u.tick(50);
    assert_eq!(u.status().relay_written, Some(false));
    assert_eq!(relay.writes(), [false, true, false]);
    assert_eq!(relay.0.borrow().failures, 3);
    assert_eq!(u.status().counters.siren_pin_errors, 2);

    // Broken from the start.
    let siren = RecordingPin::default();
    siren.0.borrow_mut().broken = true;
    let relay = RecordingPin::default();
    relay.0.borrow_mut().broken = true;
    let u = AlarmUnit::new(CFG, siren, relay, 0);
    let s = u.status();
    assert_eq!((s.siren_written, s.relay_written), (None, None));
    assert_eq!((s.counters.siren_pin_errors, s.counters.relay_pin_errors), (1, 1));
}

#[test]
fn random_streams_never_panic() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let configs = [
        CFG,
        Config::default(),
        Config { heartbeat_timeout_ms: 1, fault_pulse_on_ms: u64::MAX, fault_pulse_period_ms: 0, model_id: Some(MODEL_A) },
        Config { heartbeat_timeout_ms: u64::MAX, fault_pulse_on_ms: 0, fault_pulse_period_ms: 1, model_id: None },
        Config { heartbeat_timeout_ms: 7, fault_pulse_on_ms: 3, fault_pulse_period_ms: 5, model_id: Some(MODEL_B) },
    ];
    for cfg in configs {
        let (mut u, siren, relay) = unit(cfg);
        let mut now: u64 = 0;
        for _ in 0..40_000 {
            match rng.below(10) {
                // Raw random bytes, zeros more likely than uniform.
                0..=2 => {
                    let len = rng.below(80) as usize;
                    let bytes: Vec<u8> = (0..len).map(|_| if rng.below(16) == 0 { 0 } else { rng.next() as u8 }).collect();
                    u.on_bytes(&bytes, now);
                }
                // Valid frame, random fields, possibly damaged or cut.
                3..=5 => {
                    let alarm = [Idle, Raised, Active, Cleared][rng.below(4) as usize];
                    let model = if rng.below(2) == 0 { MODEL_A } else { MODEL_B };
                    let mut f = frame_of(&packet(rng.next() as u16, alarm, model));
                    match rng.below(4) {
                        0 => {
                            let i = rng.below(f.len() as u64) as usize;
                            f[i] ^= 1 << rng.below(8);
                        }
                        1 => f.truncate(rng.below(MAX_FRAMED as u64) as usize),
                        _ => {}
                    }
                    let cut = rng.below(f.len() as u64 + 1) as usize;
                    u.on_bytes(&f[..cut], now);
                    u.on_bytes(&f[cut..], now);
                }
                6 => u.on_bytes(&other_version_frame(rng.next() as u8, 1), now),
                7 => u.tick(now),
                8 => u.acknowledge(),
                _ => {
                    let broken = rng.below(4) == 0;
                    siren.0.borrow_mut().broken = broken;
                    relay.0.borrow_mut().broken = rng.below(4) == 0;
                    if rng.below(8) == 0 {
                        u.reset_stream();
                    }
                }
            }
            now = match rng.below(100) {
                0 => now.saturating_sub(rng.below(5_000)), // clock went backwards
                1 => u64::MAX - rng.below(3),
                2 => rng.below(1_000),
                _ => now.saturating_add(rng.below(700)),
            };
            let s = u.status();
            assert!(!s.alarm || s.siren_wanted, "alarm implies siren");
            if s.alarm {
                assert!(s.counters.alarms > 0);
            }
        }
        // Pins work again: one tick brings them to the wanted levels.
        siren.0.borrow_mut().broken = false;
        relay.0.borrow_mut().broken = false;
        u.tick(now);
        let s = u.status();
        assert_eq!(s.siren_written, Some(s.siren_wanted));
        assert_eq!(s.relay_written, Some(s.relay_latched));
        assert_eq!(siren.level(), Some(s.siren_wanted));
        assert!(s.counters.good > 0 && s.counters.corrupt > 0);
    }
}

#[test]
fn long_random_byte_stream() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let (mut u, _, _) = unit(CFG);
    let bytes: Vec<u8> = (0..1 << 20).map(|_| rng.next() as u8).collect();
    let mut at = 0;
    let mut now = 0;
    while at < bytes.len() {
        let n = (rng.below(300) as usize).min(bytes.len() - at);
        u.on_bytes(&bytes[at..at + n], now);
        at += n;
        now += rng.below(50);
        u.tick(now);
    }
    let c = u.status().counters;
    assert!(c.corrupt > 1_000, "{c:?}");
    assert_eq!(c.good, 0);
}
