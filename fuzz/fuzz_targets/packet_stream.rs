#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sfn_fuzz_targets::packet_stream(data));
