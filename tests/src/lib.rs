//! End-to-end tests across crates live in `tests/` of this package (`cargo test -p sfn-e2e`); the
//! library is empty.
