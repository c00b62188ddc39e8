//! `cucn data check` on small datasets: counts, problems, exit codes, JSON and the problem report.

mod data_fixtures;

use std::process::{Command, Output};

use data_fixtures::*;

fn cucn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cucn"))
        .args(args)
        .output()
        .expect("run cucn")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_prints_counts_and_succeeds_on_a_clean_dataset() {
    let dir = tempfile::tempdir().unwrap();
    rafdb(
        dir.path(),
        "train_1.jpg 4\ntrain_2.jpg 4\ntrain_3.jpg 7\ntest_1.jpg 1\n",
    );
    let root = dir.path().to_str().unwrap();
    let out = cucn(&["data", "check", "--format", "rafdb", "--data", root]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let happiness = stdout.lines().find(|l| l.starts_with("happiness")).unwrap();
    assert_eq!(
        happiness.split_whitespace().collect::<Vec<_>>(),
        ["happiness", "2", "0"]
    );
    assert!(stdout.contains("width 100..100"), "{stdout}");
    assert!(stdout.contains("no problems found"), "{stdout}");

    let out = cucn(&[
        "data", "check", "--format", "rafdb", "--data", root, "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["counts"]["train"],
        serde_json::json!([0, 0, 0, 2, 0, 0, 1])
    );
    assert_eq!(
        json["counts"]["test"],
        serde_json::json!([1, 0, 0, 0, 0, 0, 0])
    );
    assert_eq!(json["classes"][3], "happiness");
    assert_eq!(json["problems"], serde_json::json!([]));
}

#[test]
fn check_lists_every_problem_and_fails_unless_skip_bad() {
    let dir = tempfile::tempdir().unwrap();
    rafdb(dir.path(), "train_1.jpg 4\ntrain_2.jpg 9\ntrain_3.jpg 7\n");
    std::fs::write(rafdb_image(dir.path(), "train_3.jpg"), b"").unwrap();
    let root = dir.path().to_str().unwrap();
    let report = dir.path().join("problems.csv");
    let out = cucn(&[
        "data",
        "check",
        "--format",
        "rafdb",
        "--data",
        root,
        "--report",
        report.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("2 problems:"), "{stdout}");
    assert!(
        stdout.contains("line 2: label 9 out of range 1..7"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "train_3_aligned.jpg (listed at EmoLabel/list_patition_label.txt line 3): file is empty"
        ),
        "{stdout}"
    );
    assert!(text(&out.stderr).contains("--skip-bad"));
    let csv = std::fs::read_to_string(&report).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("location,problem\n"));

    let out = cucn(&[
        "data",
        "check",
        "--format",
        "rafdb",
        "--data",
        root,
        "--skip-bad",
    ]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("2 problems:"));
}

#[test]
fn check_rejects_an_unknown_class_count() {
    let out = cucn(&[
        "data",
        "check",
        "--format",
        "folder",
        "--data",
        ".",
        "--classes",
        "6",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
