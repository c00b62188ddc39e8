//! The synthetic benchmark as a user sees it: files on disk in RAF-DB's layout, the truth table,
//! determinism across thread counts, and refusal of impossible options.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use cucn::classes::CLASS_NAMES;
use cucn::data::synth::{
    META_FILE, Split, SynthConfig, SynthError, class_counts, contact_sheet, generate, render_face,
};

fn small(noise: f64) -> SynthConfig {
    SynthConfig {
        train: 40,
        test: 21,
        size: 48,
        noise,
        seed: 7,
        ..Default::default()
    }
}

fn quiet(_: usize, _: usize) {}

/// Every file under `root`, by relative path, with its bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn writes_rafdb_layout_and_a_truth_table_that_agree() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let cfg = small(0.25);
    let summary = generate(&cfg, &out, None, &quiet).unwrap();

    let labels: Vec<(String, usize)> = read(out.join("EmoLabel/list_patition_label.txt"))
        .lines()
        .map(|l| {
            let (name, label) = l.split_once(' ').unwrap();
            (name.to_string(), label.parse().unwrap())
        })
        .collect();
    assert_eq!(labels.len(), 61);
    assert_eq!(labels[0].0, "train_00001.jpg");
    assert_eq!(labels[40].0, "test_0001.jpg");
    assert!(labels.iter().all(|(_, l)| (1..=7).contains(l)));

    let meta = read(out.join(META_FILE));
    let mut rows = meta.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = rows.map(|r| r.split(',').collect()).collect();
    assert_eq!(rows.len(), labels.len());
    let class = |name: &str| CLASS_NAMES.iter().position(|c| *c == name).unwrap();
    let mut flipped = 0;
    for (row, (name, label)) in rows.iter().zip(&labels) {
        assert_eq!(row[col("name")], name);
        assert_eq!(class(row[col("label")]) + 1, *label, "{name}");
        let is_flipped = row[col("flipped")] == "true";
        assert_eq!(
            is_flipped,
            row[col("label")] != row[col("clean_label")],
            "{name}"
        );
        if is_flipped {
            assert_eq!(row[col("split")], "train", "test labels are never flipped");
            flipped += 1;
        }
        let intensity: f32 = row[col("intensity")].parse().unwrap();
        assert!((cfg.intensity.0..=cfg.intensity.1).contains(&intensity));
        let file = out.join(row[col("file")]);
        let stem = name.trim_end_matches(".jpg");
        assert!(
            file.ends_with(format!("Image/aligned/{stem}_aligned.jpg")),
            "{file:?}"
        );
        let img = image::open(&file).unwrap();
        assert_eq!((img.width(), img.height()), (48, 48));
    }
    assert_eq!(flipped, 10, "25 % of 40 training labels");
    assert_eq!(summary.flipped, 10);
    assert_eq!(
        summary.train_clean_counts,
        class_counts(40, &cfg.proportions)
    );
    assert_eq!(summary.test_counts, class_counts(21, &cfg.proportions));
    // Only the promised files, and no staging debris.
    let top: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut top = top;
    top.sort();
    assert_eq!(
        top,
        ["EmoLabel", "Image", "synth_config.json", "synth_meta.csv"]
    );
}

#[test]
fn output_is_byte_identical_whatever_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        ambiguity: 0.5,
        ..small(0.1)
    };
    let runs: Vec<_> = [Some(1), Some(2), Some(3), None]
        .iter()
        .enumerate()
        .map(|(i, &threads)| {
            let out = dir.path().join(format!("run{i}"));
            generate(&cfg, &out, threads, &quiet).unwrap();
            tree(&out)
        })
        .collect();
    assert_eq!(runs[0].len(), 61 + 3);
    assert!(runs.iter().all(|r| *r == runs[0]));

    let other = dir.path().join("other-seed");
    generate(
        &SynthConfig {
            seed: 8,
            ..cfg.clone()
        },
        &other,
        None,
        &quiet,
    )
    .unwrap();
    let other = tree(&other);
    let image = PathBuf::from("Image/aligned/train_00001_aligned.jpg");
    assert_ne!(other[&image], runs[0][&image]);
}

#[test]
fn render_face_reproduces_the_written_image() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let cfg = small(0.0);
    generate(&cfg, &out, Some(2), &quiet).unwrap();
    for (split, index) in [(Split::Train, 0), (Split::Train, 39), (Split::Test, 20)] {
        let (img, meta) = render_face(&cfg, split, index).unwrap();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, meta.jpeg_quality)
            .encode_image(&img)
            .unwrap();
        assert_eq!(
            jpeg,
            std::fs::read(out.join(&meta.file)).unwrap(),
            "{}",
            meta.name
        );
    }
    let err = render_face(&cfg, Split::Test, 21).unwrap_err();
    assert!(
        err.to_string().contains("test image 21 does not exist"),
        "{err}"
    );
}

#[test]
fn ambiguity_blends_with_a_weaker_second_expression() {
    let all = SynthConfig {
        ambiguity: 1.0,
        ..small(0.0)
    };
    let none = SynthConfig {
        ambiguity: 0.0,
        ..small(0.0)
    };
    for index in 0..15 {
        let (_, blended) = render_face(&all, Split::Train, index).unwrap();
        let partner = blended.blend_partner.unwrap();
        assert_ne!(partner, blended.clean_label);
        assert!(blended.blend_weight > 0.0 && blended.blend_weight < 0.5);
        let (_, plain) = render_face(&none, Split::Train, index).unwrap();
        assert_eq!((plain.blend_partner, plain.blend_weight), (None, 0.0));
    }
}

#[test]
fn refuses_a_directory_holding_other_files_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("notes.txt");
    std::fs::write(&keep, "mine").unwrap();
    let err = generate(&small(0.0), dir.path(), None, &quiet).unwrap_err();
    assert!(matches!(err, SynthError::OutputNotEmpty(_)));
    assert!(err.to_string().contains("already holds files"), "{err}");
    assert_eq!(tree(dir.path()).len(), 1);
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "mine");

    let err = generate(&small(0.0), &keep, None, &quiet).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn impossible_options_fail_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let cases = [
        (
            SynthConfig {
                size: 16,
                ..small(0.0)
            },
            "size 16",
        ),
        (small(1.5), "noise"),
        (
            SynthConfig {
                ambiguity: -0.2,
                ..small(0.0)
            },
            "ambiguity",
        ),
        (
            SynthConfig {
                train: 0,
                test: 0,
                ..small(0.0)
            },
            "at least one",
        ),
        (
            SynthConfig {
                proportions: vec![1.0; 3],
                ..small(0.0)
            },
            "proportions",
        ),
    ];
    for (cfg, needle) in cases {
        let err = generate(&cfg, &out, None, &quiet).unwrap_err();
        assert!(err.to_string().contains(needle), "{err} lacks {needle}");
        assert!(!out.exists());
    }
    let err = generate(&small(0.0), &out, Some(0), &quiet).unwrap_err();
    assert!(err.to_string().contains("threads"), "{err}");
    assert!(!out.exists());
}

#[test]
fn progress_counts_every_image_once() {
    let dir = tempfile::tempdir().unwrap();
    let calls = AtomicUsize::new(0);
    let last = AtomicUsize::new(0);
    let progress = |done: usize, total: usize| {
        assert_eq!(total, 61);
        calls.fetch_add(1, Ordering::Relaxed);
        last.fetch_max(done, Ordering::Relaxed);
    };
    generate(&small(0.0), &dir.path().join("b"), Some(2), &progress).unwrap();
    assert_eq!(calls.into_inner(), 61);
    assert_eq!(last.into_inner(), 61);
}

#[test]
fn balanced_test_split_has_equal_classes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        train: 10,
        test: 70,
        balanced_test: true,
        ..small(0.0)
    };
    let summary = generate(&cfg, &dir.path().join("b"), None, &quiet).unwrap();
    assert_eq!(summary.test_counts, vec![10; 7]);
}

#[test]
fn contact_sheet_is_a_png_grid_of_classes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sheets/sheet.png");
    let cfg = SynthConfig {
        size: 40,
        ..Default::default()
    };
    contact_sheet(&cfg, 3, &path).unwrap();
    let sheet = image::open(&path).unwrap();
    assert_eq!(sheet.height(), 7 * (40 + 2) + 2);
    assert!(sheet.width() > 3 * 42);
    assert!(
        contact_sheet(&cfg, 0, &path)
            .unwrap_err()
            .to_string()
            .contains("per class")
    );
}
