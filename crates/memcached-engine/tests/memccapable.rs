//! libmemcached's conformance tool (`memccapable`, Debian's name for memcapable) against our node:
//! the ASCII half (-a), the binary half (-b) and the full run must all pass, as they do against
//! memcached 1.6.18 (54/54). Skips when the tool is missing (panics instead when `CI` is set).

mod common;

use std::process::Command;

fn run(bin: &str, extra: &[&str]) -> (bool, String) {
    let node = common::node_1_6_18();
    let port = node.local_addr().port().to_string();
    let out = Command::new(bin)
        .args(["-h", "127.0.0.1", "-p", &port, "-t", "5"])
        .args(extra)
        .output()
        .expect("run memccapable");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn check(extra: &[&str], expect_tests: usize) {
    let Some(bin) = common::require("memccapable") else {
        return;
    };
    let (ok, text) = run(&bin, extra);
    let passed = text
        .lines()
        .filter(|l| l.trim_end().ends_with("[pass]"))
        .count();
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("[FAIL]") || l.contains("[fail]"))
        .collect();
    assert!(ok, "memccapable {extra:?} failed:\n{text}");
    assert!(failed.is_empty(), "failures: {failed:?}");
    assert_eq!(passed, expect_tests, "unexpected number of passes:\n{text}");
    assert!(text.contains("All tests passed"), "{text}");
}

#[test]
fn memccapable_ascii() {
    check(&["-a"], 27);
}

#[test]
fn memccapable_binary() {
    check(&["-b"], 27);
}

#[test]
fn memccapable_all() {
    check(&[], 54);
}
