//! borg 2 repository objects and store objects: header, sizes, both slots (AEAD or MAC),
//! metadata, decompression, id check.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oxiborg::fuzzing::blob2(data));
