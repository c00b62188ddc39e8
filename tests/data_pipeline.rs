//! The batch loader: order, shapes, evaluation equivalence, augmentation and determinism.

mod data_fixtures;

use std::sync::Arc;

use cucn::data::{
    self, Augment, Batch, BatchLoader, DatasetFormat, LoaderConfig, Sample, load_image_tensor,
};
use data_fixtures::*;

const SIZE: u32 = 32;
const LEN: usize = 3 * 32 * 32;

/// A RAF-DB set of `n` training images of varied sizes.
fn dataset(n: usize) -> (tempfile::TempDir, Arc<[Sample]>) {
    let dir = tempfile::tempdir().unwrap();
    let list: String = (0..n)
        .map(|i| format!("train_{i:05}.jpg {}\n", i % 7 + 1))
        .collect();
    write(
        &dir.path().join("EmoLabel/list_patition_label.txt"),
        list.as_bytes(),
    );
    for i in 0..n {
        let name = format!("train_{i:05}.jpg");
        let w = 40 + (i as u32 % 5) * 10;
        write(&rafdb_image(dir.path(), &name), &jpeg(w, 50, i as u8));
    }
    let d = data::load(DatasetFormat::Rafdb, dir.path(), &Default::default()).unwrap();
    (dir, d.train.into())
}

fn collect(samples: &Arc<[Sample]>, order: Vec<usize>, config: LoaderConfig) -> Vec<Batch> {
    BatchLoader::new(Arc::clone(samples), order, config)
        .map(|b| b.unwrap())
        .collect()
}

fn train_config(workers: usize, seed: u64, epoch: u64) -> LoaderConfig {
    let mut c = LoaderConfig::new(8, SIZE, workers);
    c.augment = Some(Augment { seed, epoch });
    c
}

#[test]
fn batches_follow_the_order_and_match_single_image_preprocessing() {
    let (_dir, samples) = dataset(21);
    let order: Vec<usize> = (0..21).rev().collect();
    let batches = collect(&samples, order.clone(), LoaderConfig::new(8, SIZE, 2));
    assert_eq!(
        batches.iter().map(|b| b.labels.len()).collect::<Vec<_>>(),
        vec![8, 8, 5]
    );
    let indices: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
    assert_eq!(indices, order);
    for b in &batches {
        assert_eq!(b.images.len(), b.labels.len() * LEN);
        for (k, &i) in b.indices.iter().enumerate() {
            assert_eq!(b.labels[k], samples[i].label);
            let single = load_image_tensor(&samples[i].source, SIZE).unwrap();
            assert_eq!(&b.images[k * LEN..(k + 1) * LEN], single.as_slice());
        }
    }
    let mut drop_last = LoaderConfig::new(8, SIZE, 2);
    drop_last.drop_last = true;
    let loader = BatchLoader::new(Arc::clone(&samples), order, drop_last);
    assert_eq!(loader.num_batches(), 2);
    assert_eq!(loader.count(), 2);
}

#[test]
fn augmentation_is_deterministic_for_any_worker_count() {
    let (_dir, samples) = dataset(24);
    let order: Vec<usize> = (0..24).collect();
    let one = collect(&samples, order.clone(), train_config(1, 42, 3));
    let three = collect(&samples, order.clone(), train_config(3, 42, 3));
    let again = collect(&samples, order.clone(), train_config(2, 42, 3));
    let flat = |bs: &[Batch]| {
        bs.iter()
            .flat_map(|b| b.images.clone())
            .collect::<Vec<f32>>()
    };
    assert_eq!(flat(&one), flat(&three));
    assert_eq!(flat(&one), flat(&again));
    // Another epoch or seed augments differently.
    assert_ne!(
        flat(&one),
        flat(&collect(&samples, order.clone(), train_config(1, 42, 4)))
    );
    assert_ne!(
        flat(&one),
        flat(&collect(&samples, order.clone(), train_config(1, 43, 3)))
    );
    // A sample's augmentation depends on its index, not its position in the order.
    let reversed = collect(
        &samples,
        order.iter().rev().copied().collect(),
        train_config(2, 42, 3),
    );
    let image_of = |bs: &[Batch], i: usize| {
        bs.iter()
            .find_map(|b| {
                let k = b.indices.iter().position(|&x| x == i)?;
                Some(b.images[k * LEN..(k + 1) * LEN].to_vec())
            })
            .unwrap()
    };
    for i in [0, 7, 23] {
        assert_eq!(image_of(&one, i), image_of(&reversed, i));
    }
}

#[test]
fn augmentation_flips_adds_noise_and_erases_at_the_documented_rates() {
    let (_dir, samples) = dataset(4);
    let plain: Vec<Vec<f32>> = (0..4)
        .map(|i| load_image_tensor(&samples[i].source, SIZE).unwrap())
        .collect();
    let mirrored = |t: &[f32]| -> Vec<f32> {
        t.chunks_exact(SIZE as usize)
            .flat_map(|row| row.iter().rev().copied())
            .collect()
    };
    let (mut unchanged, mut flipped, mut erased, mut total) = (0, 0, 0, 0);
    for epoch in 0..100 {
        for b in collect(&samples, vec![0, 1, 2, 3], train_config(2, 9, epoch)) {
            for (k, &i) in b.indices.iter().enumerate() {
                let t = &b.images[k * LEN..(k + 1) * LEN];
                total += 1;
                // Erasing writes exact zeros, which normalized pixel values never are.
                let has_box = t.contains(&0.0);
                erased += usize::from(has_box);
                if !has_box {
                    unchanged += usize::from(t == plain[i].as_slice());
                    flipped += usize::from(t == mirrored(&plain[i]).as_slice());
                }
            }
        }
    }
    // Without erasing (p 0.5): half unchanged, a quarter flipped, a quarter noisy.
    let not_erased = total - erased;
    let share = |n: usize| n as f64 / not_erased as f64;
    assert!(
        (0.4..0.6).contains(&(erased as f64 / total as f64)),
        "erased {erased}/{total}"
    );
    assert!(
        (0.4..0.6).contains(&share(unchanged)),
        "unchanged {unchanged}/{not_erased}"
    );
    assert!(
        (0.15..0.35).contains(&share(flipped)),
        "flipped {flipped}/{not_erased}"
    );
}

#[test]
fn an_image_that_goes_bad_after_loading_is_an_error_naming_it() {
    let (dir, samples) = dataset(10);
    std::fs::write(rafdb_image(dir.path(), "train_00006.jpg"), b"").unwrap();
    let results: Vec<_> =
        BatchLoader::new(samples, (0..10).collect(), LoaderConfig::new(4, SIZE, 2)).collect();
    assert!(results[0].is_ok() && results[2].is_ok());
    let msg = results[1].as_ref().unwrap_err().to_string();
    assert!(msg.contains("train_00006_aligned.jpg"), "{msg}");
    assert!(msg.contains("file is empty"), "{msg}");
}

#[test]
fn dropping_a_loader_early_stops_its_workers() {
    let (_dir, samples) = dataset(40);
    let mut config = LoaderConfig::new(2, SIZE, 2);
    config.prefetch = 1;
    let mut loader = BatchLoader::new(samples, (0..40).collect(), config);
    assert!(loader.next().unwrap().is_ok());
    drop(loader); // joins the workers; a hang here would fail the test run
}
