//! Errors of the fallible scoring functions.

/// Errors of the fallible scoring functions.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum ScoringError {
    /// No samples were given where some are needed.
    #[error("no {what} samples given")]
    Empty {
        /// Which stream ("visual" or "semantic").
        what: &'static str,
    },
    /// A NaN or infinite value where only finite ones are accepted.
    #[error("{what} value at index {index} is not finite ({value})")]
    NonFinite {
        /// Which stream ("visual" or "semantic").
        what: &'static str,
        /// Position of the first offending value.
        index: usize,
        /// The value.
        value: f32,
    },
    /// The semantic stream's length differs from the visual one's.
    #[error("visual errors have {visual} samples but semantic errors have {semantic}")]
    LengthMismatch {
        /// Number of visual samples.
        visual: usize,
        /// Number of semantic samples.
        semantic: usize,
    },
    /// A parameter (sigma or a weight) outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    BadParameter {
        /// The parameter's name.
        name: &'static str,
        /// Its value.
        value: f32,
        /// What is required of it.
        reason: &'static str,
    },
    /// Region statistics missing, or not fitting the pooling or the frame size.
    #[error("region statistics: {0}")]
    Regions(String),
    /// A frame buffer whose size does not match the frame geometry.
    #[error("{field}: {reason}")]
    BadShape {
        /// Which buffer or size.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}
