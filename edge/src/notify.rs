//! systemd's service notification protocol (`sd_notify`), for `Type=notify` with `WatchdogSec=`:
//! `READY=1` once the model is loaded and the source opened, `WATCHDOG=1` from the frame loop at half
//! the watchdog interval (a stalled loop stops the pings and systemd restarts the service), `STATUS=`
//! with the frame rate and the alarm state.
//!
//! [`WatchdogSchedule`] is the pure schedule (tested without sockets or clocks); [`Notifier`] sends the
//! datagrams to `$NOTIFY_SOCKET`. Without `NOTIFY_SOCKET` (not run by systemd) everything is a no-op.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// When the next `WATCHDOG=1` is due: every half interval, measured from the last ping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchdogSchedule {
    pub period: Duration,
    last: Option<Instant>,
}

impl WatchdogSchedule {
    /// Pings every `interval / 2` (systemd's advice for `WATCHDOG_USEC`).
    pub fn new(interval: Duration) -> Self {
        Self { period: interval / 2, last: None }
    }

    /// Whether a ping is due at `now`; if so it counts as sent.
    pub fn due(&mut self, now: Instant) -> bool {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.period => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

/// The watchdog interval systemd set for this process: `WATCHDOG_USEC`, if `WATCHDOG_PID` (when set)
/// is this process.
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>) -> Option<Duration> {
    if pid.is_some_and(|p| p.trim().parse::<u32>().ok() != Some(std::process::id())) {
        return None;
    }
    usec.and_then(|u| u.trim().parse::<u64>().ok()).filter(|&u| u > 0).map(Duration::from_micros)
}

/// Sends notifications to `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket).
pub struct Notifier {
    socket: Option<(UnixDatagram, PathBuf)>,
    watchdog: Option<WatchdogSchedule>,
    last_status: Option<Instant>,
}

impl Notifier {
    /// From the environment systemd gives a `Type=notify` service; a no-op notifier without it.
    pub fn from_env() -> Self {
        let path = std::env::var_os("NOTIFY_SOCKET").map(PathBuf::from);
        let interval = watchdog_interval(std::env::var("WATCHDOG_USEC").ok().as_deref(), std::env::var("WATCHDOG_PID").ok().as_deref());
        Self::new(path, interval)
    }

    /// A notifier for the socket at `path` (None: no-op) with an optional watchdog interval.
    pub fn new(path: Option<PathBuf>, watchdog: Option<Duration>) -> Self {
        let socket = path.and_then(|p| match UnixDatagram::unbound() {
            Ok(s) => Some((s, p)),
            Err(e) => {
                tracing::warn!(error = %e, "sd_notify: no datagram socket");
                None
            }
        });
        Self { socket, watchdog: watchdog.map(WatchdogSchedule::new), last_status: None }
    }

    /// Whether notifications go anywhere.
    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    fn send(&self, msg: &str) {
        let Some((s, p)) = &self.socket else { return };
        let res = match p.to_str().and_then(|p| p.strip_prefix('@')) {
            Some(name) => send_abstract(s, name, msg),
            None => s.send_to(msg.as_bytes(), p).map(|_| ()),
        };
        if let Err(e) = res {
            tracing::debug!(error = %e, "sd_notify: send failed");
        }
    }

    /// `READY=1`: the model is loaded and the source open.
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// From the frame loop: `WATCHDOG=1` when due, and `STATUS=` at most once a second.
    pub fn frame(&mut self, now: Instant, status: impl FnOnce() -> String) {
        if self.watchdog.as_mut().is_some_and(|w| w.due(now)) {
            self.send("WATCHDOG=1");
        }
        if self.socket.is_some() && self.last_status.is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1)) {
            self.last_status = Some(now);
            self.send(&format!("STATUS={}", status()));
        }
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(s: &UnixDatagram, name: &str, msg: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    s.send_to_addr(msg.as_bytes(), &addr).map(|_| ())
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_s: &UnixDatagram, _name: &str, _msg: &str) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "abstract sockets are Linux-only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_every_half_interval() {
        let mut w = WatchdogSchedule::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(w.due(t0));
        assert!(!w.due(t0 + Duration::from_millis(4999)));
        assert!(w.due(t0 + Duration::from_secs(5)));
        assert!(!w.due(t0 + Duration::from_secs(9)));
        assert!(w.due(t0 + Duration::from_secs(30)));
    }

    #[test]
    fn watchdog_interval_is_for_this_process_only() {
        let me = std::process::id().to_string();
        assert_eq!(watchdog_interval(Some("2000000"), None), Some(Duration::from_secs(2)));
        assert_eq!(watchdog_interval(Some("2000000"), Some(&me)), Some(Duration::from_secs(2)));
        assert_eq!(watchdog_interval(Some("2000000"), Some("1")), None);
        assert_eq!(watchdog_interval(Some("0"), None), None);
        assert_eq!(watchdog_interval(Some("x"), None), None);
        assert_eq!(watchdog_interval(None, None), None);
    }

    #[test]
    fn messages_reach_a_real_socket() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut n = Notifier::new(Some(path), Some(Duration::from_millis(200)));
        assert!(n.enabled());
        n.ready();
        let t0 = Instant::now();
        n.frame(t0, || "1.0 frames/s".into());
        n.frame(t0 + Duration::from_millis(50), || unreachable!("status at most once a second"));
        n.frame(t0 + Duration::from_millis(100), || unreachable!());
        let mut buf = [0u8; 256];
        let mut got = Vec::new();
        for _ in 0..4 {
            let k = rx.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..k]).into_owned());
        }
        assert_eq!(got, ["READY=1", "WATCHDOG=1", "STATUS=1.0 frames/s", "WATCHDOG=1"]);
        // Without NOTIFY_SOCKET nothing is sent and nothing fails.
        let mut off = Notifier::new(None, Some(Duration::from_millis(1)));
        assert!(!off.enabled());
        off.ready();
        off.frame(Instant::now(), || unreachable!());
    }
}
