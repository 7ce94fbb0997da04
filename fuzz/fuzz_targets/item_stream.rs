//! The item-stream msgpack decoder, fed as one buffer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oxiborg::archive::stream::{decode_item, Decoded};

fuzz_target!(|data: &[u8]| {
    let mut pos = 0;
    while let Decoded::Item(item, used) = decode_item(&data[pos..]) {
        assert!(used > 0 && pos + used <= data.len());
        let _ = item.display_path();
        pos += used;
    }
});
