//! Key files and key blobs: base64, msgpack envelope, decryption, key map.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oxiborg::fuzzing::key_file(data));
