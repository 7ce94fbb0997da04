//! Archive metadata msgpack and its TAM.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oxiborg::fuzzing::archive(data));
