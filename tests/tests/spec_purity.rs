//! `sealtrail-spec` must stay pure: no async runtime, no HTTP stack, no storage engine anywhere in
//! its (normal) dependency tree. This asks cargo for the tree and fails on any forbidden crate.

use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "tokio", "axum", "hyper", "reqwest", "redb", "sled", "mio", "tower",
];

#[test]
fn spec_dependency_tree_has_no_io_crates() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .current_dir(sealtrail_tests::workspace_root())
        .args([
            "tree",
            "--offline",
            "-p",
            "sealtrail-spec",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).expect("utf-8");
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"sealtrail-spec"),
        "tree looks wrong:\n{tree}"
    );
    assert!(names.contains(&"sha2"), "tree looks wrong:\n{tree}");
    for bad in FORBIDDEN {
        assert!(
            !names.contains(bad),
            "sealtrail-spec depends on {bad}:\n{tree}"
        );
    }
}
