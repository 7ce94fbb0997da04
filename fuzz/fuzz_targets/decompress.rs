//! Compression header dispatch and every decompressor on arbitrary payloads.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let hint = data.first().map(|b| usize::from(*b) * 1000);
    let _ = oxiborg::compress::decompress(data, hint);
});
