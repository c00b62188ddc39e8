//! The real RAF-DB training list (12,271 lines, from the shared data folder) with stand-in images.

mod data_fixtures;

use cucn::classes::RAFDB_TRAIN_COUNTS;
use cucn::data::{self, DatasetFormat, LoadOptions, Split};
use data_fixtures::*;

/// A RAF-DB folder whose official list is the real training list plus three test lines, with one
/// stand-in JPEG per name.
fn real_rafdb() -> tempfile::TempDir {
    let clean = std::fs::read_to_string(shared("rafdb-train-labels/clean.txt"))
        .expect("the shared folder ../shared/data/rafdb-train-labels/clean.txt");
    let dir = tempfile::tempdir().unwrap();
    let list = clean + "test_0001.jpg 1\ntest_0002.jpg 4\ntest_0003.jpg 7\n";
    write(
        &dir.path().join("EmoLabel/list_patition_label.txt"),
        list.as_bytes(),
    );
    let stand_in = jpeg(16, 16, 1);
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        write(&rafdb_image(dir.path(), name), &stand_in);
    }
    dir
}

#[test]
fn real_training_list_loads_with_the_published_class_counts() {
    let dir = real_rafdb();
    let d = data::load(DatasetFormat::Rafdb, dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(d.train.len(), 12_271);
    assert_eq!(d.class_counts(Split::Train), RAFDB_TRAIN_COUNTS.to_vec());
    assert_eq!(d.class_counts(Split::Test), vec![1, 0, 0, 1, 0, 0, 1]);
    assert!(d.skipped.is_empty() && d.excluded.is_empty());

    // The noisy-label protocol files flip the documented number of training labels.
    for (file, flipped) in [
        ("noise01.txt", 1241),
        ("noise02.txt", 2498),
        ("noise03.txt", 3722),
    ] {
        let opts = LoadOptions {
            label_file: Some(shared(&format!("rafdb-train-labels/{file}"))),
            ..Default::default()
        };
        let noisy = data::load(DatasetFormat::Rafdb, dir.path(), &opts).unwrap();
        assert_eq!(noisy.train.len(), 12_271, "{file}");
        let differing = d
            .train
            .iter()
            .zip(&noisy.train)
            .inspect(|(a, b)| assert_eq!(a.name, b.name))
            .filter(|(a, b)| a.label != b.label)
            .count();
        assert_eq!(differing, flipped, "{file}");
        assert_eq!(
            noisy.test.len(),
            3,
            "{file}: test split keeps the official list"
        );
    }
}
