//! borg serve --rest responses (HTTP/1.1 on the pipe).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oxiborg::fuzzing::rest_response(data));
