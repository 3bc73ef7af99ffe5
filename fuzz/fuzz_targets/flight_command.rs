//! libFuzzer's entry point for meshgate_fuzz::targets::flight_command (what it checks is said there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshgate_fuzz::targets::flight_command::run(data));
