//! The `hubwarp` binary of this build, run as a process the way an
//! operator runs it.

/// The binary, built first if needed (`cargo test --workspace
/// --all-targets` has already built it; `cargo build` is then a no-op). It
/// sits beside the test binary's `deps/` directory.
pub fn hubwarp_binary() -> std::path::PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--quiet", "-p", "hubwarp", "--bin", "hubwarp"])
            .current_dir(integration_tests::workspace_root())
            .status()
            .expect("cargo build of hubwarp");
        assert!(status.success(), "building hubwarp failed");
    });
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join(format!("hubwarp{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

/// Runs the binary with only `vars` in its environment (and PATH), so no
/// setting leaks in from the shell running the tests.
pub fn hubwarp(args: &[&str], vars: &[(&str, String)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(hubwarp_binary());
    cmd.args(args).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// What the binary printed, for assertions and their messages.
pub fn printed(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
