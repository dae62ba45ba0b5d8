//! What the trainer, the host tools and the tests share about footage, without the training stack:
//! reading frame folders and labels ([`dataset`]), the frame window the model reads, and the
//! synthetic walkway scene ([`synth`]).

pub mod dataset;
pub mod synth;
