//! rvsadm's ipvsadm-style command line: arguments (NUL- or newline-
//! separated in the input) are parsed and, when valid, applied to a model
//! that already holds a few services; a bad command is an error, never a
//! panic, and a refused one leaves the model as it was.
#![no_main]

use control::ipvsadm::{apply, parse};
use control::model::Model;
use libfuzzer_sys::fuzz_target;

fn base() -> Model {
    let mut m = Model::default();
    for line in [
        "-A -t 198.18.0.100:80 -s wrr -p 60",
        "-a -t 198.18.0.100:80 -r 198.19.0.11:8080 -m -w 3",
        "-A -u [2001:db8::100]:53 -s rr",
        "-a -u [2001:db8::100]:53 -r [2001:db8:1::11]:53 -g",
    ] {
        let args: Vec<&str> = line.split(' ').collect();
        if let Ok(cmd) = parse(&args) {
            let _ = apply(&mut m, &cmd);
        }
    }
    m
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut model = base();
    for cmdline in text.split('\n').take(8) {
        let args: Vec<&str> = cmdline.split('\0').filter(|a| !a.is_empty()).collect();
        if let Ok(cmd) = parse(&args) {
            let before = model.clone();
            if apply(&mut model, &cmd).is_err() {
                assert_eq!(before, model, "a refused command changed the model");
            }
        }
    }
});
