use std::path::PathBuf;

/// What went wrong in a frame source; every variant names the file, folder or device.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading a file or listing a folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A frame file could not be decoded (corrupt, truncated, unknown format).
    #[error("corrupt frame {}: {reason}", path.display())]
    CorruptFrame { path: PathBuf, reason: String },
    /// A folder holds no frame files.
    #[error("{}: no frames (*.jpg, *.jpeg, *.png, *.tif, *.tiff)", path.display())]
    NoFrames { path: PathBuf },
    /// Invalid options (e.g. a frame rate that is not a positive number).
    #[error("{what}: {reason}")]
    Config { what: String, reason: String },
    /// Opening or decoding a video file failed.
    #[error("video {}: {message}", path.display())]
    Video { path: PathBuf, message: String },
    /// Opening, configuring or reading a camera failed.
    #[error("camera {device}: {message}")]
    Camera { device: String, message: String },
    /// A disconnected camera could not be reopened within the configured attempts.
    #[error("camera {device}: still unavailable after {attempts} reconnect attempts: {last}")]
    ReconnectFailed {
        device: String,
        attempts: u32,
        #[source]
        last: Box<SourceError>,
    },
}
