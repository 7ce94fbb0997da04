//! The on-disk hash index (index.N, hints).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oxiborg::fuzzing::hashindex(data));
