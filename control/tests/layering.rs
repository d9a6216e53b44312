//! The module layering the architecture asks for, checked on the source:
//! control's pure logic (config, model, ipvsadm, metrics) never reaches
//! into the daemon (which depends on it), and the scheduler has one enum,
//! the dataplane's, with no mapping by name that could fall back silently.

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `rel` (a file or a directory), recursively.
fn rust_files(rel: &str) -> Vec<PathBuf> {
    let p = src().join(rel);
    if p.is_file() {
        return vec![p];
    }
    let mut out = Vec::new();
    let mut stack = vec![p];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The file's code lines (comments dropped), numbered from 1.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

#[test]
fn pure_logic_does_not_depend_on_the_daemon() {
    let mut files = Vec::new();
    for rel in [
        "config.rs",
        "config",
        "model.rs",
        "ipvsadm",
        "metrics.rs",
        "metrics",
    ] {
        files.extend(rust_files(rel));
    }
    assert!(files.len() >= 8, "source files not found: {files:?}");
    let mut bad = Vec::new();
    for f in &files {
        for (n, l) in code_lines(f) {
            if l.contains("crate::daemon") || l.contains("super::daemon") {
                bad.push(format!("{}:{n}: {}", f.display(), l.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "pure logic uses the daemon:\n{}",
        bad.join("\n")
    );
}

#[test]
fn one_scheduler_enum_and_no_fallback_by_name() {
    let model = std::fs::read_to_string(src().join("model.rs")).unwrap();
    assert!(
        !model.contains("pub enum Scheduler"),
        "model.rs defines its own scheduler enum"
    );
    let mut bad = Vec::new();
    for f in rust_files(".") {
        for (n, l) in code_lines(&f) {
            if l.contains("unwrap_or(SchedKind::") || l.contains("fn sched_kind(") {
                bad.push(format!("{}:{n}: {}", f.display(), l.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "scheduler mapped by name:\n{}",
        bad.join("\n")
    );
    // the model's scheduler is the dataplane's type
    let k: dataplane::sched::SchedKind = control::model::Scheduler::Lblcr;
    assert_eq!(k.name(), "lblcr");
}
