//! Health counters and latency percentiles, logged periodically and published as a retained status.

use serde::Serialize;

/// Latency samples in a fixed ring (the most recent `cap`), for p50 / p99.
#[derive(Clone, Debug)]
pub struct Latency {
    ring: Vec<u64>,
    next: usize,
    full: bool,
}

impl Latency {
    pub fn new(cap: usize) -> Self {
        Latency { ring: vec![0; cap.max(1)], next: 0, full: false }
    }

    pub fn push(&mut self, us: u64) {
        self.ring[self.next] = us;
        self.next = (self.next + 1) % self.ring.len();
        self.full |= self.next == 0;
    }

    /// The q-quantile (0..=1) of the samples held, nearest rank; None when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let n = if self.full { self.ring.len() } else { self.next };
        if n == 0 {
            return None;
        }
        let mut v = self.ring[..n].to_vec();
        v.sort_unstable();
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
        Some(v[rank - 1])
    }
}

/// What the status message carries.
#[derive(Serialize, Clone, Debug, Default)]
pub struct Health {
    pub uptime_s: f64,
    pub frames_in: u64,
    pub frames_scored: u64,
    pub frames_dropped: u64,
    pub bad_frames: u64,
    pub window_restarts: u64,
    /// Times the camera or stream was lost and reopened.
    pub source_reconnects: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub fps: f64,
    pub alarms: u64,
    pub alarm_active: bool,
    /// The latest causal score (None until the first scored frame).
    pub score: Option<f32>,
    /// The highest causal score since the previous status.
    pub score_peak: Option<f32>,
    pub captions: Option<crate::captions::CaptionStats>,
    /// Seconds since the last good caption.
    pub caption_age_s: Option<f64>,
    pub sink_errors: u64,
    /// The snapshot stage's counters (when snapshots are on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<crate::snapshot::SnapshotStats>,
    pub queue_depth: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut l = Latency::new(100);
        assert_eq!(l.quantile(0.5), None);
        for us in 1..=100 {
            l.push(us);
        }
        assert_eq!(l.quantile(0.5), Some(50));
        assert_eq!(l.quantile(0.99), Some(99));
        assert_eq!(l.quantile(1.0), Some(100));
        // The ring keeps the most recent 100.
        for _ in 0..100 {
            l.push(1000);
        }
        assert_eq!(l.quantile(0.5), Some(1000));
    }
}
