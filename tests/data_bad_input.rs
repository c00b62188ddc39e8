//! A corpus of bad inputs. Each one, by default, stops loading with one error naming the file and
//! line or row; with `skip_bad` the sample is left out and listed, and the good samples remain.

mod data_fixtures;

use std::path::Path;

use cucn::data::{self, DataError, DatasetFormat, LoadOptions};
use data_fixtures::*;

/// Loads `root` both ways and checks the one bad sample: its location contains `location`, its
/// problem contains `problem`, and `good` samples survive `skip_bad`.
fn assert_one_bad(format: DatasetFormat, root: &Path, location: &str, problem: &str, good: usize) {
    let err = data::load(format, root, &LoadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::BadSample { more: 0, .. }), "{msg}");
    assert!(msg.contains(location), "{msg:?} should name {location:?}");
    assert!(msg.contains(problem), "{msg:?} should say {problem:?}");
    assert!(msg.contains("--skip-bad"), "{msg}");

    let skip = LoadOptions {
        skip_bad: true,
        ..Default::default()
    };
    let d = data::load(format, root, &skip).unwrap();
    assert_eq!(d.skipped.len(), 1, "{:?}", d.skipped);
    assert!(d.skipped[0].location.contains(location));
    assert!(d.skipped[0].problem.contains(problem));
    assert_eq!(d.train.len() + d.val.len() + d.test.len(), good);
}

/// A RAF-DB folder with two good training images and `list_extra` appended to its list.
fn rafdb_with(list_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    rafdb(dir.path(), "train_00001.jpg 1\ntrain_00002.jpg 2\n");
    let list = dir.path().join("EmoLabel/list_patition_label.txt");
    let text = std::fs::read_to_string(&list).unwrap() + list_extra;
    write(&list, text.as_bytes());
    dir
}

/// A RAF-DB folder whose third image, `train_00003`, has the given bytes.
fn rafdb_image_bytes(bytes: &[u8]) -> tempfile::TempDir {
    let dir = rafdb_with("train_00003.jpg 3\n");
    write(&rafdb_image(dir.path(), "train_00003.jpg"), bytes);
    dir
}

const BAD_IMAGE: &str =
    "train_00003_aligned.jpg (listed at EmoLabel/list_patition_label.txt line 3)";

#[test]
fn zero_byte_image() {
    let dir = rafdb_image_bytes(b"");
    assert_one_bad(
        DatasetFormat::Rafdb,
        dir.path(),
        BAD_IMAGE,
        "file is empty (0 bytes)",
        2,
    );
}

#[test]
fn truncated_jpeg() {
    let full = jpeg(100, 100, 5);
    let dir = rafdb_image_bytes(&full[..full.len() * 2 / 3]);
    assert_one_bad(
        DatasetFormat::Rafdb,
        dir.path(),
        BAD_IMAGE,
        "truncated JPEG",
        2,
    );
}

#[test]
fn corrupt_jpeg() {
    let mut bytes = jpeg(100, 100, 5);
    // Overwrite the tables after the header but keep the end-of-image marker.
    bytes[40..200].fill(0x55);
    let dir = rafdb_image_bytes(&bytes);
    assert_one_bad(DatasetFormat::Rafdb, dir.path(), BAD_IMAGE, "corrupt", 2);
}

#[test]
fn truncated_png() {
    let png = png_of(&image::DynamicImage::ImageRgb8(picture(60, 60, 2)));
    let dir = rafdb_image_bytes(&png[..png.len() / 2]);
    assert_one_bad(
        DatasetFormat::Rafdb,
        dir.path(),
        BAD_IMAGE,
        "corrupt or truncated",
        2,
    );
}

#[test]
fn text_file_named_jpg() {
    let dir = rafdb_image_bytes(b"this is not an image\n");
    assert_one_bad(
        DatasetFormat::Rafdb,
        dir.path(),
        BAD_IMAGE,
        "not a JPEG or PNG",
        2,
    );
}

#[test]
fn unsupported_image_format() {
    let dir = rafdb_image_bytes(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;");
    assert_one_bad(
        DatasetFormat::Rafdb,
        dir.path(),
        BAD_IMAGE,
        "unsupported image format Gif",
        2,
    );
}

#[test]
fn decompression_bomb() {
    let dir = rafdb_image_bytes(&bomb_png(100_000, 100_000));
    assert_one_bad(
        DatasetFormat::Rafdb,
        dir.path(),
        BAD_IMAGE,
        "possible decompression bomb",
        2,
    );
}

#[test]
fn missing_image_file() {
    // The list names a third image that was never written.
    let dir = rafdb_with("train_00003.jpg 3\n");
    assert_one_bad(
        DatasetFormat::Rafdb,
        dir.path(),
        BAD_IMAGE,
        "image file not found",
        2,
    );
}

#[test]
fn label_out_of_range() {
    let dir = rafdb_with("train_00003.jpg 8\n");
    let at = "EmoLabel/list_patition_label.txt line 3";
    assert_one_bad(
        DatasetFormat::Rafdb,
        dir.path(),
        at,
        "label 8 out of range 1..7",
        2,
    );
}

#[test]
fn label_not_a_number() {
    let dir = rafdb_with("train_00003.jpg happy\n");
    let at = "EmoLabel/list_patition_label.txt line 3";
    assert_one_bad(
        DatasetFormat::Rafdb,
        dir.path(),
        at,
        "label \"happy\" is not a number",
        2,
    );
}

#[test]
fn malformed_line() {
    let dir = rafdb_with("train_00003.jpg\n");
    let at = "EmoLabel/list_patition_label.txt line 3";
    assert_one_bad(
        DatasetFormat::Rafdb,
        dir.path(),
        at,
        "expected `<image name> <label>`",
        2,
    );
}

#[test]
fn duplicate_name() {
    let dir = rafdb_with("train_00001.jpg 4\n");
    let at = "EmoLabel/list_patition_label.txt line 3";
    assert_one_bad(
        DatasetFormat::Rafdb,
        dir.path(),
        at,
        "duplicate of train_00001.jpg at line 1",
        2,
    );
}

#[test]
fn name_outside_both_splits() {
    let dir = rafdb_with("val_00003.jpg 4\n");
    let at = "EmoLabel/list_patition_label.txt line 3";
    assert_one_bad(
        DatasetFormat::Rafdb,
        dir.path(),
        at,
        "neither `train` nor `test`",
        2,
    );
}

#[test]
fn invalid_utf8_line() {
    let dir = rafdb_with("train_0000\u{1}3.jpg 3\n");
    let list = dir.path().join("EmoLabel/list_patition_label.txt");
    let mut bytes = std::fs::read(&list).unwrap();
    let i = bytes.iter().position(|&b| b == 1).unwrap();
    bytes[i] = 0xFF;
    write(&list, &bytes);
    let at = "EmoLabel/list_patition_label.txt line 3";
    assert_one_bad(DatasetFormat::Rafdb, dir.path(), at, "not valid UTF-8", 2);
}

/// A fer2013.csv with two good rows and `extra` appended.
fn fer_with(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let csv = format!(
        "emotion,pixels,Usage\n{}\n{}\n{extra}\n",
        fer_row(1, 5, "Training"),
        fer_row(2, 5, "PrivateTest")
    );
    write(&dir.path().join("fer2013.csv"), csv.as_bytes());
    dir
}

#[test]
fn fer2013_wrong_pixel_count() {
    let dir = fer_with(&format!("3,{},Training", vec!["9"; 2303].join(" ")));
    let problem = "expected 2304 pixel values (48x48), found 2303";
    assert_one_bad(
        DatasetFormat::Fer2013,
        dir.path(),
        "fer2013.csv line 4",
        problem,
        2,
    );
}

#[test]
fn fer2013_row_without_usage() {
    let dir = fer_with(&format!("3,{}", vec!["9"; 2304].join(" ")));
    let problem = "expected 3 columns, found 2";
    assert_one_bad(
        DatasetFormat::Fer2013,
        dir.path(),
        "fer2013.csv line 4",
        problem,
        2,
    );
}

#[test]
fn fer2013_pixel_value_out_of_range() {
    let dir = fer_with(&fer_row(3, 9, "Training").replacen(" 9 ", " 256 ", 1));
    let problem = "pixel value \"256\" is not an integer 0..255";
    assert_one_bad(
        DatasetFormat::Fer2013,
        dir.path(),
        "fer2013.csv line 4",
        problem,
        2,
    );
}

#[test]
fn fer2013_unknown_usage() {
    let dir = fer_with(&fer_row(3, 9, "Validation"));
    let problem = "Usage \"Validation\" is not Training, PublicTest or PrivateTest";
    assert_one_bad(
        DatasetFormat::Fer2013,
        dir.path(),
        "fer2013.csv line 4",
        problem,
        2,
    );
}

#[test]
fn fer2013_emotion_out_of_range() {
    let dir = fer_with(&fer_row(7, 9, "Training"));
    let problem = "emotion 7 out of range 0..6";
    assert_one_bad(
        DatasetFormat::Fer2013,
        dir.path(),
        "fer2013.csv line 4",
        problem,
        2,
    );
}

/// An AffectNet training.csv (no header) with one good row plus `extra`, and its image (300x200).
fn affectnet_with(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("Manually_Annotated_Images");
    write(&images.join("1/a.jpg"), &jpeg(300, 200, 1));
    let csv = format!("1/a.jpg,10,10,100,100,1;2,1,0.5,0.5\n{extra}\n");
    write(&dir.path().join("training.csv"), csv.as_bytes());
    dir
}

#[test]
fn affectnet_too_few_columns() {
    let dir = affectnet_with("1/a.jpg,10,10,100");
    let problem = "expected at least 7 columns, found 4";
    assert_one_bad(
        DatasetFormat::Affectnet,
        dir.path(),
        "training.csv line 2",
        problem,
        1,
    );
}

#[test]
fn affectnet_expression_out_of_range() {
    let dir = affectnet_with("1/b.jpg,10,10,100,100,1;2,11,0.5,0.5");
    let problem = "expression 11 out of range 0..10";
    assert_one_bad(
        DatasetFormat::Affectnet,
        dir.path(),
        "training.csv line 2",
        problem,
        1,
    );
}

#[test]
fn affectnet_bbox_not_a_number() {
    let dir = affectnet_with("1/b.jpg,10,ten,100,100,1;2,3,0.5,0.5");
    let problem = "face_y \"ten\" is not a number";
    assert_one_bad(
        DatasetFormat::Affectnet,
        dir.path(),
        "training.csv line 2",
        problem,
        1,
    );
}

#[test]
fn affectnet_bbox_outside_the_image() {
    let dir = affectnet_with("1/c.jpg,500,10,100,100,1;2,3,0.5,0.5");
    write(
        &dir.path().join("Manually_Annotated_Images/1/c.jpg"),
        &jpeg(300, 200, 1),
    );
    let at = "c.jpg (listed at training.csv line 2)";
    let problem = "lies outside the 300x200 image";
    assert_one_bad(DatasetFormat::Affectnet, dir.path(), at, problem, 1);
}

#[test]
fn affectnet_unterminated_quote() {
    let dir = affectnet_with("\"1/b.jpg,10,10,100,100,1;2,3,0.5,0.5");
    assert_one_bad(
        DatasetFormat::Affectnet,
        dir.path(),
        "training.csv line 2",
        "unterminated quoted field",
        1,
    );
}

#[test]
fn many_problems_are_all_counted_and_the_first_is_named() {
    let dir = rafdb_with("train_00003.jpg 9\ntrain_00004.jpg\ntrain_00001.jpg 2\n");
    let err = data::load(DatasetFormat::Rafdb, dir.path(), &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::BadSample { more: 2, .. }));
    let msg = err.to_string();
    assert!(msg.contains("line 3: label 9 out of range"), "{msg}");
    assert!(msg.contains("and 2 more bad samples"), "{msg}");
    let report = data::check(DatasetFormat::Rafdb, dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(report.problems.len(), 3);
    assert_eq!(report.counts["train"].iter().sum::<usize>(), 2);
}

// Problems that make the whole dataset unreadable are errors even with skip_bad.

fn fatal(format: DatasetFormat, root: &Path, expect: &str) {
    for skip_bad in [false, true] {
        let opts = LoadOptions {
            skip_bad,
            ..Default::default()
        };
        let msg = data::load(format, root, &opts).unwrap_err().to_string();
        assert!(msg.contains(expect), "{msg:?} should say {expect:?}");
    }
}

#[test]
fn missing_label_list() {
    let dir = tempfile::tempdir().unwrap();
    fatal(
        DatasetFormat::Rafdb,
        dir.path(),
        "RAF-DB label list not found: expected",
    );
}

#[test]
fn ferplus_files_of_different_length() {
    let dir = tempfile::tempdir().unwrap();
    let fer = format!("emotion,pixels,Usage\n{}\n", fer_row(0, 1, "Training"));
    let plus = "Usage,Image name,a,b,c,d,e,f,g,h,i,j\nTraining,fer0.png,10,0,0,0,0,0,0,0,0,0\n\
                Training,fer1.png,10,0,0,0,0,0,0,0,0,0\n";
    write(&dir.path().join("fer2013.csv"), fer.as_bytes());
    write(&dir.path().join("fer2013new.csv"), plus.as_bytes());
    fatal(
        DatasetFormat::Ferplus,
        dir.path(),
        "fer2013new.csv: line 3: more rows than",
    );
}

#[test]
fn ferplus_rows_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let fer = format!(
        "emotion,pixels,Usage\n{}\n{}\n",
        fer_row(0, 1, "Training"),
        fer_row(0, 1, "PublicTest")
    );
    let plus = "Usage,Image name,a,b,c,d,e,f,g,h,i,j\nTraining,fer0.png,10,0,0,0,0,0,0,0,0,0\n\
                Training,fer1.png,10,0,0,0,0,0,0,0,0,0\n";
    write(&dir.path().join("fer2013.csv"), fer.as_bytes());
    write(&dir.path().join("fer2013new.csv"), plus.as_bytes());
    assert_one_bad(
        DatasetFormat::Ferplus,
        dir.path(),
        "fer2013new.csv line 3 / fer2013.csv line 3",
        "differs from fer2013.csv line 3's \"PublicTest\"",
        1,
    );
}

#[test]
fn label_file_for_a_format_without_one() {
    let dir = fer_with("");
    let opts = LoadOptions {
        label_file: Some(dir.path().join("x.txt")),
        ..Default::default()
    };
    let msg = data::load(DatasetFormat::Fer2013, dir.path(), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("--label-file applies to the rafdb format only"),
        "{msg}"
    );
}
