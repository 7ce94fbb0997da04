//! The item-stream msgpack decoder.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oxiborg::fuzzing::item_stream(data));
