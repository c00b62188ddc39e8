//! `cucn train` end to end on a tiny synthetic benchmark: run directory contents, exact resume
//! (after an epoch, and mid-epoch after an interrupt), and clear errors for bad configurations.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::tensor::Device;
use cucn::data::DatasetFormat;
use cucn::train::history::EpochMetrics;
use cucn::train::{TrainConfig, TrainError, TrainOptions, train};

fn cucn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cucn"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A tiny benchmark: 96 training and 48 test faces at 32 px.
fn tiny_data(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let out = cucn(&[
        "synth",
        "--out",
        data.to_str().unwrap(),
        "--train",
        "96",
        "--test",
        "48",
        "--size",
        "32",
        "--seed",
        "5",
        "-q",
    ]);
    assert!(out.status.success(), "synth failed: {}", text(&out));
    data
}

fn train_args<'a>(data: &'a str, out: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "train", "--format", "rafdb", "--data", data, "--out", out, "--epochs", epochs, "--batch",
        "16", "--size", "32", "--lr", "0.001", "--seed", "3", "-q",
    ]
}

fn history(run: &Path) -> Vec<EpochMetrics> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Everything but timing must be identical between two runs.
fn assert_same_learning(a: &[EpochMetrics], b: &[EpochMetrics]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            (x.epoch, x.train_loss, x.train_accuracy, x.test_accuracy),
            (y.epoch, y.train_loss, y.train_accuracy, y.test_accuracy)
        );
        assert_eq!(x.test_per_class_accuracy, y.test_per_class_accuracy);
        assert_eq!((x.lr, x.fc_lr), (y.lr, y.fc_lr));
    }
}

#[test]
fn train_writes_the_run_directory_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path());
    let data = data.to_str().unwrap();

    let full = tmp.path().join("full");
    let out = cucn(&train_args(data, full.to_str().unwrap(), "2"));
    assert!(out.status.success(), "{}", text(&out));
    for f in [
        "config.toml",
        "class_weights.json",
        "metrics.jsonl",
        "metrics.csv",
    ] {
        assert!(full.join(f).is_file(), "{f} missing");
    }
    for c in ["last", "best"] {
        for f in ["model.bpk", "optimizer.bpk", "state.json"] {
            assert!(
                full.join("checkpoints").join(c).join(f).is_file(),
                "{c}/{f} missing"
            );
        }
    }
    let csv = std::fs::read_to_string(full.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "header + 2 epochs");
    assert!(csv.lines().next().unwrap().contains("test_accuracy_fear"));
    let config = std::fs::read_to_string(full.join("config.toml")).unwrap();
    assert!(
        config.contains("epochs = 2") && config.contains("format = \"rafdb\""),
        "{config}"
    );

    // One epoch, then resume to two: the same numbers as the uninterrupted run.
    let split = tmp.path().join("split");
    let out = cucn(&train_args(data, split.to_str().unwrap(), "1"));
    assert!(out.status.success(), "{}", text(&out));
    let out = cucn(&[
        "train",
        "--resume",
        split.to_str().unwrap(),
        "--epochs",
        "2",
        "-q",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_same_learning(&history(&full), &history(&split));

    // A changed setting on resume is refused and named.
    let out = cucn(&[
        "train",
        "--resume",
        split.to_str().unwrap(),
        "--epochs",
        "3",
        "--lr",
        "0.01",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("optim.lr"), "{}", text(&out));

    // Training into an existing run without --resume is refused.
    let out = cucn(&train_args(data, full.to_str().unwrap(), "1"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--resume"), "{}", text(&out));
}

fn tiny_config(data: &Path) -> TrainConfig {
    let mut c = TrainConfig::default();
    c.data.format = Some(DatasetFormat::Rafdb);
    c.data.path = Some(data.to_path_buf());
    c.model.input_size = 32;
    c.train.epochs = 1;
    c.train.batch = 16;
    c.train.seed = 9;
    c.optim.lr = 1e-3;
    c
}

#[test]
fn an_interrupt_mid_epoch_saves_and_the_resumed_run_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path());
    let options = |out: &Path, resume: bool, stop: bool| TrainOptions {
        out: out.to_path_buf(),
        resume,
        quiet: true,
        interrupt: Some(Arc::new(AtomicBool::new(stop))),
        device: Device::default(),
        replicas: Vec::new(),
    };
    let whole = tmp.path().join("whole");
    train(tiny_config(&data), &options(&whole, false, false)).unwrap();

    let cut = tmp.path().join("cut");
    let err = train(tiny_config(&data), &options(&cut, false, true)).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Interrupted {
                epoch: 1,
                batch: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--resume"));
    train(tiny_config(&data), &options(&cut, true, false)).unwrap();
    assert_same_learning(&history(&whole), &history(&cut));
}

#[test]
fn bad_configurations_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("run.toml");
    let out_dir = tmp.path().join("run");
    let out_s = out_dir.to_str().unwrap();
    let cases: [(&str, &[&str], &str); 4] = [
        ("[train]\nepoch = 3\n", &[], "epoch"),
        ("[train]\nbatch = \"big\"\n", &[], "batch"),
        (
            "[data]\nformat = \"rafdb\"\n",
            &["--data", "/nonexistent/raf"],
            "/nonexistent/raf",
        ),
        (
            "",
            &["--preset", "rafdb", "--format", "affectnet", "--data", "/x"],
            "preset",
        ),
    ];
    for (toml_text, extra, needle) in cases {
        std::fs::write(&cfg, toml_text).unwrap();
        let mut args = vec!["train", "--config", cfg.to_str().unwrap(), "--out", out_s];
        args.extend_from_slice(extra);
        let out = cucn(&args);
        assert_eq!(out.status.code(), Some(1), "{toml_text:?}: {}", text(&out));
        assert!(
            text(&out).contains(needle),
            "{toml_text:?}: expected '{needle}' in {}",
            text(&out)
        );
        assert!(!text(&out).contains("panicked"), "{}", text(&out));
    }
    let out = cucn(&["train", "--out", out_s]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--format"), "{}", text(&out));
    let out = cucn(&["train", "--batch", "many"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit with 2");
}

#[test]
fn a_diverging_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path());
    let run = tmp.path().join("run");
    // One batch per epoch. Adam's first step moves every weight by about the learning rate, so at
    // 1e30 the second epoch's forward pass overflows: a real divergence, not an injected one.
    let mut args = train_args(data.to_str().unwrap(), run.to_str().unwrap(), "3");
    for (flag, value) in [("--batch", "96"), ("--lr", "1e30")] {
        let i = args.iter().position(|a| *a == flag).unwrap();
        args[i + 1] = value;
    }
    args.extend(["--fc-lr", "1e30"]);
    let out = cucn(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = text(&out);
    assert!(
        message.contains("at epoch 2, batch 1") && message.contains("last good checkpoint"),
        "{message}"
    );
    assert!(!message.contains("panicked"), "{message}");
    // The checkpoint of epoch 1 is intact and the history holds that epoch only.
    let last = cucn::train::checkpoint::usable(&run.join("checkpoints/last")).expect("kept");
    let state = cucn::train::checkpoint::read_state(&last).unwrap();
    assert_eq!((state.epochs_done, state.batches_done), (1, 0));
    let epochs = history(&run);
    assert_eq!(epochs.len(), 1);
    assert!(epochs[0].train_loss.is_finite());
}

#[test]
fn devices_split_the_batch_deterministically_and_one_device_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path());
    let data = data.to_str().unwrap();
    let run = |name: &str, devices: Option<&str>| {
        let out_dir = tmp.path().join(name);
        let mut args = train_args(data, out_dir.to_str().unwrap(), "1");
        if let Some(list) = devices {
            args.extend(["--devices", list]);
        }
        let out = cucn(&args);
        assert!(out.status.success(), "{name}: {}", text(&out));
        history(&out_dir)
    };
    let default = run("default", None);
    assert_same_learning(&default, &run("one", Some("cpu")));
    // Two replicas on the CPU run Burn's multi-device path (fork, gradients moved and summed).
    let split = run("split_a", Some("cpu,cpu"));
    assert_same_learning(&split, &run("split_b", Some("cpu,cpu")));
    assert!(split[0].train_loss.is_finite() && split[0].train_loss > 0.0);
    // BatchNorm and mixing work per share, so the numbers are not the single-device ones.
    assert_ne!(split[0].train_loss, default[0].train_loss);

    let out = cucn(&["train", "--devices", "cuda:0", "--out", "/nonexistent/run"]);
    assert_eq!(out.status.code(), Some(1));
    #[cfg(not(feature = "cuda"))]
    assert!(text(&out).contains("--features cuda"), "{}", text(&out));
}
