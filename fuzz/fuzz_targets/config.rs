//! rvsd's TOML configuration: any text is either a validated config or a
//! list of errors naming the field; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = control::config::parse(text, "fuzz.toml");
    }
});
