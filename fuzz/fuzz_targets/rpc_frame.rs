//! borg serve response frames.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oxiborg::fuzzing::rpc_frame(data));
