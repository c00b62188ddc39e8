//! `cucn predict` end to end through the real binary: synthetic face crops for classification, a
//! public-domain photo for detection and annotation, and the bad-input cases. The model is a tiny
//! untrained CUCN, so the tests check structure (one distribution over the classes per face,
//! positive uncertainty, boxes inside the image), not accuracy.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::tensor::Device;
use cucn::classes::class_names;
use cucn::data::synth::{SynthConfig, generate};
use cucn::model::CucnConfig;
use cucn::model::weights::save_model;
use serde_json::Value;

const PHOTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/photos/astronaut.jpg"
);
const CROP_SIZE: u32 = 64;

fn tiny_model(dir: &Path) -> PathBuf {
    let device = Device::default();
    let config = CucnConfig::new()
        .with_widths([8, 16, 32, 64])
        .with_input_size(32);
    let model = config.init(&device).unwrap();
    let path = dir.join("model.bpk");
    save_model(&model, &config, &path).unwrap();
    path
}

/// `n` synthetic face crops (JPEG, `CROP_SIZE` px); returns their folder.
fn synthetic_crops(dir: &Path, n: usize) -> PathBuf {
    let out = dir.join("synth");
    let cfg = SynthConfig {
        train: 0,
        test: n,
        size: CROP_SIZE,
        ..SynthConfig::default()
    };
    generate(&cfg, &out, Some(1), &|_, _| {}).unwrap();
    out.join("Image")
}

fn cucn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cucn"))
        .arg("predict")
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Vec<Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text}"))
        .as_array()
        .expect("a JSON array")
        .clone()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Checks one face object against CLI.md: box inside the image, a probability per class summing
/// to 1, the label the most probable class, u > 0.
fn check_face(face: &Value, width: u64, height: u64) {
    let b: Vec<u64> = face["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(b.len(), 4);
    assert!(
        b[2] > 0 && b[3] > 0 && b[0] + b[2] <= width && b[1] + b[3] <= height,
        "box {b:?}"
    );
    let probabilities = face["probabilities"].as_object().unwrap();
    let mut names: Vec<&str> = probabilities.keys().map(String::as_str).collect();
    let mut expected = class_names(7).to_vec();
    names.sort_unstable();
    expected.sort_unstable();
    assert_eq!(names, expected);
    let total: f64 = probabilities.values().map(|p| p.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4, "probabilities sum to {total}");
    let (best, _) = probabilities
        .iter()
        .max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
        .unwrap();
    assert_eq!(face["label"].as_str().unwrap(), best);
    let u = face["uncertainty"].as_f64().unwrap();
    assert!(u > 0.0 && u.is_finite(), "uncertainty {u}");
}

#[test]
fn crops_are_classified_whole_with_a_distribution_each() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let crops = synthetic_crops(dir.path(), 40);
    let args = [
        "--model",
        s(&model),
        "--no-detect",
        "--format",
        "json",
        "--batch",
        "16",
        s(&crops),
    ];
    let out = cucn(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let files = json(&out);
    assert_eq!(files.len(), 40);
    for file in &files {
        assert!(file["error"].is_null(), "{file}");
        assert!(file["path"].as_str().unwrap().ends_with("_aligned.jpg"));
        let faces = file["faces"].as_array().unwrap();
        assert_eq!(faces.len(), 1, "a crop is one face");
        assert_eq!(
            faces[0]["box"],
            serde_json::json!([0, 0, CROP_SIZE, CROP_SIZE])
        );
        check_face(&faces[0], u64::from(CROP_SIZE), u64::from(CROP_SIZE));
    }
    // Batching does not change the numbers, and the order follows the sorted file names.
    let again = cucn(&[
        "--model",
        s(&model),
        "--no-detect",
        "--json",
        "--batch",
        "7",
        s(&crops),
    ]);
    assert_eq!(json(&again).len(), 40);
    for (a, b) in files.iter().zip(json(&again)) {
        assert_eq!(a["path"], b["path"]);
        let (pa, pb) = (
            &a["faces"][0]["probabilities"],
            &b["faces"][0]["probabilities"],
        );
        for name in class_names(7) {
            let d = pa[name].as_f64().unwrap() - pb[name].as_f64().unwrap();
            assert!(d.abs() < 1e-5, "{name} differs between batch sizes by {d}");
        }
    }
}

#[test]
fn the_face_in_a_real_photo_is_found_and_annotated() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let annotated = dir.path().join("annotated");
    let out = cucn(&[
        "--model",
        s(&model),
        "--json",
        "--annotate",
        s(&annotated),
        PHOTO,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let files = json(&out);
    assert_eq!(files.len(), 1);
    let faces = files[0]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1, "one face in the portrait: {faces:?}");
    check_face(&faces[0], 384, 384);
    // The astronaut's face is around (168, 87) and about 70 px wide in the 384 px photo.
    let b: Vec<f64> = faces[0]["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let (cx, cy) = (b[0] + b[2] / 2.0, b[1] + b[3] / 2.0);
    assert!(
        (cx - 168.0).abs() < 15.0 && (cy - 87.0).abs() < 15.0,
        "box {b:?}"
    );
    assert!((45.0..110.0).contains(&b[2]), "box {b:?}");

    let copy = image::open(annotated.join("astronaut.jpg"))
        .unwrap()
        .into_rgb8();
    let original = image::open(PHOTO).unwrap().into_rgb8();
    assert_eq!(copy.dimensions(), original.dimensions());
    // The left edge of the box is drawn; far from it the picture is unchanged (up to JPEG).
    // The edge's colour is the predicted class's, which varies with the untrained model's
    // random weights, and one pixel of the photo can match a class colour (disgust's brown on
    // the cheek: 17 levels), so the test reads the mean change along the middle half of the
    // edge (70-164 levels over the eight class colours).
    let x = b[0] as u32;
    let rows = (b[1] + b[3] / 4.0) as u32..(b[1] + 3.0 * b[3] / 4.0) as u32;
    let diff = |px: u32, py: u32| {
        let (a, o) = (copy.get_pixel(px, py).0, original.get_pixel(px, py).0);
        (0..3)
            .map(|c| i32::from(a[c]).abs_diff(i32::from(o[c])))
            .max()
            .unwrap()
    };
    let edge_change = rows.clone().map(|y| diff(x, y)).sum::<u32>() / rows.len() as u32;
    assert!(
        edge_change > 40,
        "box edge drawn: mean change {edge_change}"
    );
    assert!(diff(20, 370) < 30, "corner unchanged");
}

#[test]
fn an_image_without_a_face_is_a_result_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let blank = dir.path().join("blank.png");
    image::RgbImage::from_pixel(320, 240, image::Rgb([200, 200, 200]))
        .save(&blank)
        .unwrap();
    let out = cucn(&["--model", s(&model), "--json", s(&blank), PHOTO]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let files = json(&out);
    assert_eq!(files[0]["path"], s(&blank));
    assert!(files[0]["error"].is_null());
    assert_eq!(files[0]["faces"].as_array().unwrap().len(), 0);
    assert_eq!(files[1]["faces"].as_array().unwrap().len(), 1);
    let table = cucn(&["--model", s(&model), s(&blank)]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("no face found"));
}

#[test]
fn bad_files_are_reported_and_the_rest_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let inputs = dir.path().join("inputs");
    std::fs::create_dir(&inputs).unwrap();
    let photo = std::fs::read(PHOTO).unwrap();
    std::fs::write(inputs.join("a_good.jpg"), &photo).unwrap();
    std::fs::write(inputs.join("b_empty.jpg"), b"").unwrap();
    std::fs::write(inputs.join("c_truncated.jpg"), &photo[..photo.len() / 2]).unwrap();
    std::fs::write(inputs.join("d_text.png"), b"not a picture at all").unwrap();
    let missing = dir.path().join("missing.jpg");
    let out = cucn(&["--model", s(&model), "--json", s(&inputs), s(&missing)]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "partial success: {}",
        stderr(&out)
    );
    let files = json(&out);
    assert_eq!(files.len(), 5);
    assert!(files[0]["error"].is_null());
    assert_eq!(files[0]["faces"].as_array().unwrap().len(), 1);
    let errors: Vec<&str> = files[1..]
        .iter()
        .map(|f| f["error"].as_str().unwrap())
        .collect();
    assert!(errors[0].contains("empty"), "{}", errors[0]);
    assert!(errors[1].contains("truncated"), "{}", errors[1]);
    assert!(errors[2].contains("not a JPEG or PNG"), "{}", errors[2]);
    assert!(errors[3].contains("not found"), "{}", errors[3]);
    let err = stderr(&out);
    for name in [
        "b_empty.jpg",
        "c_truncated.jpg",
        "d_text.png",
        "missing.jpg",
    ] {
        assert!(err.contains(name), "stderr names {name}: {err}");
    }

    let all_bad = cucn(&["--model", s(&model), "--json", s(&missing)]);
    assert_eq!(all_bad.status.code(), Some(1));
    assert_eq!(json(&all_bad).len(), 1);
}

#[test]
fn a_file_that_is_not_a_cucn_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = cucn(&["--model", PHOTO, PHOTO]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("not a cucn model") && err.contains("astronaut.jpg"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let missing = dir.path().join("nothing.bpk");
    let out = cucn(&["--model", s(&missing), PHOTO]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nothing.bpk"), "{}", stderr(&out));
}

#[test]
fn csv_table_and_out_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let crops = synthetic_crops(dir.path(), 5);

    let out = cucn(&[
        "--model",
        s(&model),
        "--no-detect",
        "--format",
        "csv",
        s(&crops),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let header = format!(
        "path,error,face,x,y,w,h,label,uncertainty,{}",
        class_names(7).join(",")
    );
    assert_eq!(lines[0], header);
    assert_eq!(lines.len(), 6);
    for line in &lines[1..] {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 16);
        assert_eq!(&fields[1..7], &["", "0", "0", "0", "64", "64"]);
        let total: f64 = fields[9..].iter().map(|p| p.parse::<f64>().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-4);
    }

    let out = cucn(&[
        "--model",
        s(&model),
        "--no-detect",
        "--top-k",
        "2",
        s(&crops),
    ]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.lines().next().unwrap().ends_with("top-2"));
    for line in table.lines().skip(1) {
        assert_eq!(line.matches(", ").count(), 1, "two classes listed: {line}");
    }

    let file = dir.path().join("results/predictions.json");
    let out = cucn(&[
        "--model",
        s(&model),
        "--no-detect",
        "--json",
        "--out",
        s(&file),
        s(&crops),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved.as_array().unwrap().len(), 5);
}

#[test]
fn a_folder_without_images_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = cucn(&["--model", s(&model), s(&empty)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no JPEG or PNG"), "{}", stderr(&out));
}
