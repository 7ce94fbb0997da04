//! borg 2 key blobs: BORG_KEY line, base64, msgpack envelope, Argon2 bounds, decryption, key map.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oxiborg::fuzzing::key_blob2(data));
