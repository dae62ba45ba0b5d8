//! What the trainer, the host tools and the tests share about footage, without the training stack:
//! reading frame folders, video files ([`video`]) and labels ([`dataset`]), the frame window the model reads, and the
//! synthetic walkway scene ([`synth`]).

pub mod dataset;
pub mod synth;
pub mod video;
