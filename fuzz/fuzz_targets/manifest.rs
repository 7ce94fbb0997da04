//! Manifest and archive metadata decoding and TAM checks (with the `none` key).
#![no_main]
use libfuzzer_sys::fuzz_target;
use oxiborg::archive::{ArchiveMeta, Manifest};
use oxiborg::key::Key;

fuzz_target!(|data: &[u8]| {
    let key = Key::plaintext();
    let _ = Manifest::parse(data, &key, true);
    let _ = Manifest::parse(data, &key, false);
    let _ = ArchiveMeta::parse(data, &key, "fuzz", false);
});
