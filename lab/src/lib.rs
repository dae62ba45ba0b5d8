//! Research probes on detection quality, run as examples (`cargo run --release -p sfn-lab --example
//! NAME -- ARGS`); each file says what it measures. Not built by default and not part of the product.
