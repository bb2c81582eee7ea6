//! The table binary still runs end to end: every part reports and every
//! table is printed. A smoke run at tiny sizes (`--quick`, ~10 s in a debug
//! build); the numbers are not checked, benchmarks are not assertions.

use std::process::Command;

#[test]
fn quick_run_prints_every_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_memocache-bench"))
        .arg("--quick")
        .output()
        .expect("run the bench binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {}\n{stderr}", out.status);
    for heading in [
        "== Redis hit:",
        "== Redis hit throughput",
        "== In-process hit",
        "== Miss",
        "== Flush",
        "== Codecs",
        "== Targets",
    ] {
        assert!(stdout.contains(heading), "no `{heading}` in:\n{stdout}");
    }
    for failure in ["part failed", "printed no report", "could not start"] {
        assert!(!stdout.contains(failure), "{failure}:\n{stdout}\n{stderr}");
    }
    assert!(
        !stdout.contains("not measured"),
        "a target was not measured:\n{stdout}"
    );
}
