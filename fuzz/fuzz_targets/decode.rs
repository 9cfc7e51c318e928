//! Client frame decoding (`kf_core::protocol::decode`) on arbitrary text: the bytes as they are when they are
//! UTF-8 (a WebSocket text message, an SSE body), else their lossy UTF-8 reading.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) => drop(kf_fuzz::check_decode(text)),
        Err(_) => drop(kf_fuzz::check_decode(&String::from_utf8_lossy(data))),
    }
});
