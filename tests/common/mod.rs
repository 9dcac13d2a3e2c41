//! Shared by the CLI test files: run the `purplecov` binary from the package root.
#![allow(dead_code)]

use assert_cmd::Command;

/// What one run of the binary gave.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary from the package root (fixture paths are relative to it, so they appear in the
/// output exactly as given).
pub fn purplecov(args: &[&str]) -> Run {
    let out = Command::cargo_bin("purplecov")
        .expect("binary")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("run purplecov");
    Run {
        code: out
            .status
            .code()
            .expect("exit code (not killed by a signal)"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}
