//! Compression header dispatch and every 1.x decompressor.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oxiborg::fuzzing::decompress(data));
