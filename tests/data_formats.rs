//! Every dataset format loads in its published layout and maps to the canonical class order.

mod data_fixtures;

use cucn::data::{
    self, CropBox, DataError, DatasetFormat, ImageSource, LoadOptions, Split, decode,
};
use data_fixtures::*;
use image::{DynamicImage, ImageBuffer, Luma, LumaA, Rgb, Rgba};

fn labels(samples: &[data::Sample]) -> Vec<usize> {
    samples.iter().map(|s| s.label).collect()
}

#[test]
fn rafdb_splits_by_prefix_and_maps_labels() {
    let dir = tempfile::tempdir().unwrap();
    rafdb(
        dir.path(),
        "train_00001.jpg 5\ntrain_00002.jpg 1\ntrain_00003.jpg 7\ntest_0001.jpg 4\n",
    );
    let d = data::load(DatasetFormat::Rafdb, dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(d.num_classes, 7);
    assert_eq!(labels(&d.train), vec![4, 0, 6]);
    assert_eq!(labels(&d.test), vec![3]);
    assert_eq!(d.class_counts(Split::Train), vec![1, 0, 0, 0, 1, 0, 1]);
    assert_eq!(d.class_counts(Split::Test), vec![0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(d.train[0].name, "train_00001.jpg");
    match &d.train[0].source {
        ImageSource::File { path, crop: None } => {
            assert!(path.ends_with("Image/aligned/train_00001_aligned.jpg"))
        }
        other => panic!("unexpected source {other:?}"),
    }
    assert!(d.skipped.is_empty());
}

#[test]
fn rafdb_label_file_replaces_the_splits_it_lists() {
    let dir = tempfile::tempdir().unwrap();
    rafdb(dir.path(), "train_1.jpg 1\ntrain_2.jpg 2\ntest_1.jpg 3\n");
    let noisy = dir.path().join("noisy.txt");
    write(&noisy, b"train_1.jpg 6\ntrain_2.jpg 2\n");
    let opts = LoadOptions {
        label_file: Some(noisy),
        ..Default::default()
    };
    let d = data::load(DatasetFormat::Rafdb, dir.path(), &opts).unwrap();
    assert_eq!(labels(&d.train), vec![5, 1]);
    assert_eq!(labels(&d.test), vec![2], "test labels stay official");
    assert!(d.train[0].origin.starts_with("noisy.txt line 1"));
    let official = data::load(DatasetFormat::Rafdb, dir.path(), &Default::default()).unwrap();
    assert_ne!(d.fingerprint(), official.fingerprint());
    assert_eq!(
        official.fingerprint(),
        data::load(DatasetFormat::Rafdb, dir.path(), &Default::default())
            .unwrap()
            .fingerprint()
    );
}

/// AffectNet rows: path, bbox, landmarks, expression, valence, arousal.
fn affectnet_row(path: &str, bbox: [u32; 4], expression: i32) -> String {
    let [x, y, w, h] = bbox;
    format!("{path},{x},{y},{w},{h},1.0;2.0;3.0,{expression},0.1,-0.2\n")
}

fn affectnet_fixture(root: &std::path::Path) {
    // 200x100 images, left half red, right half blue.
    let img = image::RgbImage::from_fn(200, 100, |x, _| {
        if x < 100 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    let mut training = String::from(
        "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,\
         expression,valence,arousal\n",
    );
    for code in 0..=10 {
        let path = format!("{}/img{code}.jpg", code % 3);
        write(
            &root.join("Manually_Annotated_Images").join(&path),
            &jpeg_of(&img),
        );
        training += &affectnet_row(&path, [120, 10, 60, 80], code);
    }
    write(
        &root.join("Manually_Annotated_file_lists/training.csv"),
        training.as_bytes(),
    );
    // validation.csv as published: no header.
    let validation = affectnet_row("0/img0.jpg", [0, 0, 100, 100], 1)
        + &affectnet_row("1/img1.jpg", [0, 0, 50, 50], 7);
    write(
        &root.join("Manually_Annotated_file_lists/validation.csv"),
        validation.as_bytes(),
    );
}

#[test]
fn affectnet_seven_class_mode_drops_contempt_and_non_expressions() {
    let dir = tempfile::tempdir().unwrap();
    affectnet_fixture(dir.path());
    let d = data::load(DatasetFormat::Affectnet, dir.path(), &Default::default()).unwrap();
    assert_eq!(d.num_classes, 7);
    // Codes 0..6 = neutral, happy, sad, surprise, fear, disgust, anger.
    assert_eq!(labels(&d.train), vec![6, 3, 4, 0, 1, 2, 5]);
    assert_eq!(labels(&d.test), vec![3]);
    let excluded: usize = d.excluded.values().sum();
    assert_eq!(excluded, 5, "{:?}", d.excluded); // 7 twice (train, val), 8, 9, 10
    assert_eq!(d.excluded["AffectNet expression 10 (non-face)"], 1);
    assert_eq!(d.excluded["AffectNet contempt (7-class mode)"], 2);
}

#[test]
fn affectnet_eight_class_mode_keeps_contempt_and_crops_faces() {
    let dir = tempfile::tempdir().unwrap();
    affectnet_fixture(dir.path());
    let opts = LoadOptions {
        classes: Some(8),
        crop_margin: 0.25,
        ..Default::default()
    };
    let d = data::load(DatasetFormat::Affectnet, dir.path(), &opts).unwrap();
    assert_eq!(d.num_classes, 8);
    assert_eq!(labels(&d.train), vec![6, 3, 4, 0, 1, 2, 5, 7]);
    assert_eq!(labels(&d.test), vec![3, 7]);
    let ImageSource::File { crop: Some(b), .. } = &d.train[0].source else {
        panic!("AffectNet samples carry their face box");
    };
    // 60x80 box at (120, 10), widened by a quarter on every side.
    assert_eq!(
        *b,
        CropBox {
            left: 105.0,
            top: -10.0,
            width: 90.0,
            height: 120.0
        }
    );
    // The crop lies in the blue half: the red channel is low, the blue channel high.
    let t = data::load_image_tensor(&d.train[0].source, 8).unwrap();
    let mean = |c: usize| t[c * 64..(c + 1) * 64].iter().sum::<f32>() / 64.0;
    assert!(
        mean(0) < -1.5 && mean(2) > 2.0,
        "r {} b {}",
        mean(0),
        mean(2)
    );
}

#[test]
fn fer2013_rows_split_by_usage_and_turn_grey_into_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let csv = [
        "emotion,pixels,Usage".to_string(),
        fer_row(0, 10, "Training"),
        fer_row(5, 20, "Training"),
        fer_row(3, 30, "PublicTest"),
        fer_row(6, 40, "PrivateTest"),
    ]
    .join("\n");
    write(&dir.path().join("fer2013.csv"), csv.as_bytes());
    let d = data::load(DatasetFormat::Fer2013, dir.path(), &Default::default()).unwrap();
    // 0 angry -> anger (5), 5 surprise -> 0, 3 happy -> 3, 6 neutral -> 6.
    assert_eq!(labels(&d.train), vec![5, 0]);
    assert_eq!(labels(&d.val), vec![3]);
    assert_eq!(labels(&d.test), vec![6]);
    assert_eq!(d.train[1].name, "fer2013.csv line 3");
    let t = data::load_image_tensor(&d.train[0].source, 48).unwrap();
    let plane = 48 * 48;
    // Grey becomes equal R, G, B before normalization.
    let grey = 10.0 / 255.0;
    let expect = [
        (grey - 0.485) / 0.229,
        (grey - 0.456) / 0.224,
        (grey - 0.406) / 0.225,
    ];
    for (c, e) in expect.iter().enumerate() {
        assert!((t[c * plane] - e).abs() < 1e-4);
    }
    // The CSV file itself is accepted as --data too.
    let same = data::load(
        DatasetFormat::Fer2013,
        &dir.path().join("fer2013.csv"),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(same.fingerprint(), d.fingerprint());
}

/// A FERPlus row: usage, name and ten votes.
fn plus_row(usage: &str, name: &str, votes: [u32; 10]) -> String {
    let v: Vec<String> = votes.iter().map(|v| v.to_string()).collect();
    format!("{usage},{name},{}", v.join(","))
}

#[test]
fn ferplus_majority_vote_as_the_reference_defines_it() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        ("Training", "fer0.png", [0, 6, 4, 0, 0, 0, 0, 0, 0, 0]), // happiness
        ("Training", "fer1.png", [5, 4, 1, 0, 0, 0, 0, 0, 0, 0]), // neutral after dropping 1
        ("Training", "fer2.png", [5, 5, 0, 0, 0, 0, 0, 0, 0, 0]), // no majority
        ("Training", "fer3.png", [0, 0, 0, 0, 0, 0, 0, 0, 10, 0]), // unknown
        ("PublicTest", "fer4.png", [2, 0, 0, 0, 0, 0, 0, 0, 0, 8]), // NF
        ("PublicTest", "", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]),      // removed by FERPlus
        ("PrivateTest", "fer6.png", [3, 0, 0, 0, 0, 0, 0, 7, 0, 0]), // contempt
        ("PrivateTest", "fer7.png", [0, 0, 0, 0, 0, 0, 9, 0, 1, 0]), // fear
    ];
    let mut plus = vec![
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
            .to_string(),
    ];
    let mut fer = vec!["emotion,pixels,Usage".to_string()];
    for (i, (usage, name, votes)) in rows.iter().enumerate() {
        plus.push(plus_row(usage, name, *votes));
        fer.push(fer_row(0, i as u8, usage));
    }
    write(
        &dir.path().join("fer2013new.csv"),
        plus.join("\n").as_bytes(),
    );
    write(&dir.path().join("fer2013.csv"), fer.join("\n").as_bytes());

    let d = data::load(DatasetFormat::Ferplus, dir.path(), &Default::default()).unwrap();
    assert_eq!(d.num_classes, 8);
    assert_eq!(labels(&d.train), vec![3, 6]);
    assert!(d.val.is_empty());
    assert_eq!(labels(&d.test), vec![7, 1]);
    assert_eq!(d.test[1].name, "fer7.png");
    // Pixels come from the fer2013.csv row in the same position.
    let ImageSource::Grey { pixels, .. } = &d.test[1].source else {
        panic!("FERPlus samples are in-memory pixels");
    };
    assert!(pixels.iter().all(|&p| p == 7));
    let excluded: usize = d.excluded.values().sum();
    assert_eq!(excluded, 4, "{:?}", d.excluded);
    assert_eq!(d.excluded["FERPlus majority: unknown"], 1);
    assert_eq!(d.excluded["FERPlus majority: NF (not a face)"], 1);

    let seven = LoadOptions {
        classes: Some(7),
        ..Default::default()
    };
    let d7 = data::load(DatasetFormat::Ferplus, dir.path(), &seven).unwrap();
    assert_eq!(d7.num_classes, 7);
    assert_eq!(labels(&d7.test), vec![1]);
    assert_eq!(d7.excluded["FERPlus contempt (7-class mode)"], 1);
}

#[test]
fn class_folders_match_names_and_synonyms_case_insensitively() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (i, class) in ["Angry", "happy", "SURPRISED", "neutral", "Sadness"]
        .iter()
        .enumerate()
    {
        write(
            &root.join("train").join(class).join("a.jpg"),
            &jpeg(20, 20, i as u8),
        );
        write(
            &root.join("test").join(class).join("b.png"),
            &png_of(&DynamicImage::ImageRgb8(picture(8, 8, 1))),
        );
    }
    write(&root.join("train/fear/nested/c.jpg"), &jpeg(30, 20, 9));
    write(&root.join("train/fear/.DS_Store"), b"junk");
    write(&root.join("README.txt"), b"about this set");
    let d = data::load(DatasetFormat::Folder, root, &Default::default()).unwrap();
    assert_eq!(d.num_classes, 7);
    assert_eq!(d.class_counts(Split::Train), vec![1, 1, 0, 1, 1, 1, 1]);
    assert_eq!(d.class_counts(Split::Test), vec![1, 0, 0, 1, 1, 1, 1]);
    assert_eq!(d.excluded["hidden file or folder"], 1);
    assert_eq!(d.excluded["file outside the class folders"], 1);
    assert!(d.train.iter().any(|s| s.name == "train/fear/nested/c.jpg"));

    // A contempt folder makes it 8 classes.
    write(&root.join("test/Contempt/x.jpg"), &jpeg(20, 20, 3));
    let d = data::load(DatasetFormat::Folder, root, &Default::default()).unwrap();
    assert_eq!(d.num_classes, 8);
    assert_eq!(d.class_counts(Split::Test)[7], 1);
}

#[test]
fn unknown_class_folder_is_an_error_listing_the_accepted_names() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("happy/a.jpg"), &jpeg(20, 20, 1));
    write(&dir.path().join("bored/a.jpg"), &jpeg(20, 20, 1));
    let err = data::load(DatasetFormat::Folder, dir.path(), &Default::default()).unwrap_err();
    assert!(matches!(err, DataError::UnknownClassFolder { .. }));
    let msg = err.to_string();
    assert!(msg.contains("bored"), "{msg}");
    assert!(msg.contains("anger (anger/angry)"), "{msg}");
    assert!(msg.contains("happiness (happiness/happy/joy)"), "{msg}");
}

#[test]
fn every_pixel_layout_decodes_to_rgb8() {
    let grey = ImageBuffer::from_pixel(4, 3, Luma([200u8]));
    let grey_alpha = ImageBuffer::from_pixel(4, 3, LumaA([200u8, 10]));
    let rgba = ImageBuffer::from_pixel(4, 3, Rgba([10u8, 20, 30, 0]));
    let rgb16 = ImageBuffer::from_pixel(4, 3, Rgb([65535u16, 0, 32896]));
    let grey16 = ImageBuffer::from_pixel(4, 3, Luma([51400u16]));
    let cases: Vec<(&str, Vec<u8>, [u8; 3])> = vec![
        (
            "grey png",
            png_of(&DynamicImage::ImageLuma8(grey.clone())),
            [200; 3],
        ),
        (
            "grey+alpha png",
            png_of(&DynamicImage::ImageLumaA8(grey_alpha)),
            [200; 3],
        ),
        (
            "rgba png",
            png_of(&DynamicImage::ImageRgba8(rgba)),
            [10, 20, 30],
        ),
        (
            "16-bit rgb png",
            png_of(&DynamicImage::ImageRgb16(rgb16)),
            [255, 0, 128],
        ),
        (
            "16-bit grey png",
            png_of(&DynamicImage::ImageLuma16(grey16)),
            [200; 3],
        ),
        ("grey jpeg", grey_jpeg(), [200; 3]),
        ("cmyk jpeg", cmyk_jpeg(), [255, 0, 0]),
    ];
    for (what, bytes, rgb) in cases {
        let img = decode::decode(&bytes, decode::DEFAULT_MAX_PIXELS)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(img.dimensions(), (4, 3), "{what}");
        let px = img.get_pixel(1, 1).0;
        for c in 0..3 {
            assert!(
                (i32::from(px[c]) - i32::from(rgb[c])).abs() <= 3,
                "{what}: got {px:?}, expected {rgb:?}"
            );
        }
    }
}

fn grey_jpeg() -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 100)
        .encode(&[200u8; 12], 4, 3, image::ExtendedColorType::L8)
        .unwrap();
    out
}

/// A CMYK JPEG of pure red (C 0, M 255, Y 255, K 0).
fn cmyk_jpeg() -> Vec<u8> {
    let mut out = Vec::new();
    let pixels: Vec<u8> = [0u8, 255, 255, 0].repeat(12);
    jpeg_encoder::Encoder::new(&mut out, 100)
        .encode(&pixels, 4, 3, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    out
}
