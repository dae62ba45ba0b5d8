//! Alarms from causal scores: a threshold with hysteresis. An alarm is raised after `raise_after`
//! consecutive frames above `threshold` and cleared after `clear_after` consecutive frames at or below it.
//! Pure state machine: no clock, no I/O.

use serde::{Deserialize, Serialize};
use sfn_scoring::{Cue, Region};

/// Alarm settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmConfig {
    /// Score above which a frame counts as anomalous (causal scores are z-scores against normal footage).
    pub threshold: f32,
    /// Consecutive anomalous frames that raise the alarm (>= 1).
    pub raise_after: u32,
    /// Consecutive normal frames that clear it (>= 1).
    pub clear_after: u32,
}

impl Default for AlarmConfig {
    fn default() -> Self {
        AlarmConfig { threshold: 3.0, raise_after: 3, clear_after: 10 }
    }
}

/// State of the alarm after a frame.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    Idle,
    /// This frame raised the alarm.
    Raised,
    Active,
    /// This frame cleared the alarm.
    Cleared,
}

impl From<AlarmState> for sfn_wire::AlarmState {
    fn from(a: AlarmState) -> Self {
        match a {
            AlarmState::Idle => sfn_wire::AlarmState::Idle,
            AlarmState::Raised => sfn_wire::AlarmState::Raised,
            AlarmState::Active => sfn_wire::AlarmState::Active,
            AlarmState::Cleared => sfn_wire::AlarmState::Cleared,
        }
    }
}

impl From<sfn_wire::AlarmState> for AlarmState {
    fn from(a: sfn_wire::AlarmState) -> Self {
        match a {
            sfn_wire::AlarmState::Idle => AlarmState::Idle,
            sfn_wire::AlarmState::Raised => AlarmState::Raised,
            sfn_wire::AlarmState::Active => AlarmState::Active,
            sfn_wire::AlarmState::Cleared => AlarmState::Cleared,
        }
    }
}

/// A finished or ongoing alarm: first and last anomalous frame, peak score.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AlarmEvent {
    /// Frame index and timestamp (ms) of the first frame above threshold in the run that raised it.
    pub start_frame: u64,
    pub start_ms: u64,
    /// Set when cleared: the last frame above threshold.
    pub end_frame: Option<u64>,
    pub end_ms: Option<u64>,
    pub peak_score: f32,
    /// At the peak: the cue that set the score and its box in the source frame (absent for scorings
    /// without boxes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_cue: Option<Cue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_region: Option<Region>,
}

/// Threshold + hysteresis.
#[derive(Clone, Debug)]
pub struct Hysteresis {
    cfg: AlarmConfig,
    active: bool,
    above: u32,
    below: u32,
    /// First frame of the current run above threshold (frame, ms).
    run_start: Option<(u64, u64)>,
    /// Last frame above threshold (frame, ms).
    last_above: Option<(u64, u64)>,
    event: Option<AlarmEvent>,
}

impl Hysteresis {
    pub fn new(cfg: AlarmConfig) -> Self {
        let cfg = AlarmConfig { raise_after: cfg.raise_after.max(1), clear_after: cfg.clear_after.max(1), ..cfg };
        Hysteresis { cfg, active: false, above: 0, below: 0, run_start: None, last_above: None, event: None }
    }

    /// Whether an alarm is on.
    pub fn active(&self) -> bool {
        self.active
    }

    /// Feeds one frame's score. Returns the state and, on Raised and Cleared, the event. A NaN score
    /// counts as not anomalous.
    pub fn push(&mut self, frame: u64, ms: u64, score: f32) -> (AlarmState, Option<AlarmEvent>) {
        self.push_where(frame, ms, score, None, None)
    }

    /// [`Hysteresis::push`] with what set the score and where (kept at the event's peak).
    pub fn push_where(&mut self, frame: u64, ms: u64, score: f32, cue: Option<Cue>, region: Option<Region>) -> (AlarmState, Option<AlarmEvent>) {
        let hot = score > self.cfg.threshold;
        if hot {
            self.above += 1;
            self.below = 0;
            if self.run_start.is_none() {
                self.run_start = Some((frame, ms));
            }
            self.last_above = Some((frame, ms));
            if let Some(e) = self.event.as_mut() {
                if score > e.peak_score {
                    (e.peak_score, e.peak_cue, e.peak_region) = (score, cue, region);
                }
            }
        } else {
            self.below += 1;
            self.above = 0;
            if !self.active {
                self.run_start = None;
            }
        }
        if !self.active && self.above >= self.cfg.raise_after {
            self.active = true;
            let (start_frame, start_ms) = self.run_start.unwrap_or((frame, ms));
            let e = AlarmEvent { start_frame, start_ms, end_frame: None, end_ms: None, peak_score: score, peak_cue: cue, peak_region: region };
            self.event = Some(e.clone());
            return (AlarmState::Raised, Some(e));
        }
        if self.active && self.below >= self.cfg.clear_after {
            self.active = false;
            self.run_start = None;
            let mut e = self.event.take().unwrap_or(AlarmEvent { start_frame: frame, start_ms: ms, end_frame: None, end_ms: None, peak_score: score, peak_cue: cue, peak_region: region });
            let (f, m) = self.last_above.unwrap_or((frame, ms));
            e.end_frame = Some(f);
            e.end_ms = Some(m);
            return (AlarmState::Cleared, Some(e));
        }
        (if self.active { AlarmState::Active } else { AlarmState::Idle }, None)
    }

    /// The ongoing alarm, if any.
    pub fn current(&self) -> Option<&AlarmEvent> {
        self.event.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_after_n_and_clears_after_m() {
        let mut h = Hysteresis::new(AlarmConfig { threshold: 1.0, raise_after: 2, clear_after: 3 });
        let scores = [0.0, 2.0, 0.5, 2.0, 3.0, 5.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0];
        let states: Vec<AlarmState> = scores.iter().enumerate().map(|(i, &s)| h.push(i as u64, 100 * i as u64, s).0).collect();
        use AlarmState::*;
        // A single hot frame (1) does not raise; 3, 4 do (raised at 4, run started at 3); one hot frame
        // inside the clearing run (8) resets it; cleared at 11 (3 normal frames after 8).
        assert_eq!(states, vec![Idle, Idle, Idle, Idle, Raised, Active, Active, Active, Active, Active, Active, Cleared, Idle]);
        let mut h = Hysteresis::new(AlarmConfig { threshold: 1.0, raise_after: 2, clear_after: 3 });
        let mut events = vec![];
        for (i, &s) in scores.iter().enumerate() {
            if let (_, Some(e)) = h.push(i as u64, 100 * i as u64, s) {
                events.push(e);
            }
        }
        assert_eq!(events[0], AlarmEvent { start_frame: 3, start_ms: 300, end_frame: None, end_ms: None, peak_score: 3.0, peak_cue: None, peak_region: None });
        assert_eq!(events[1], AlarmEvent { start_frame: 3, start_ms: 300, end_frame: Some(8), end_ms: Some(800), peak_score: 5.0, peak_cue: None, peak_region: None });
    }

    #[test]
    fn nan_is_not_an_alarm_and_zero_settings_mean_one() {
        let mut h = Hysteresis::new(AlarmConfig { threshold: 0.0, raise_after: 0, clear_after: 0 });
        assert_eq!(h.push(0, 0, f32::NAN).0, AlarmState::Idle);
        assert_eq!(h.push(1, 1, 1.0).0, AlarmState::Raised);
        assert_eq!(h.push(2, 2, f32::NAN).0, AlarmState::Cleared);
    }
}
