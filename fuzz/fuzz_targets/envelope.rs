//! The object envelope (type byte, MAC, AES-CTR, decompression, id check), alone and in groups.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oxiborg::fuzzing::envelope(data));
