//! RAF-DB basic: `EmoLabel/list_patition_label.txt` lines `train_00001.jpg 5` (labels 1..7 in
//! canonical order), images at `Image/aligned/train_00001_aligned.jpg`, split by the name prefix.
//!
//! A `--label-file` (e.g. the noisy-label protocol lists) replaces the official labels of every
//! split it has lines for; splits it does not mention keep the official list.

use std::collections::HashMap;
use std::path::Path;

use super::LoadOptions;
use super::error::DataError;
use super::sample::{ImageSource, Listing, Sample, Split};
use super::text::{LineReader, first_existing, relative};
use crate::classes::NUM_BASIC;

/// One parsed label-list line.
struct Entry {
    name: String,
    label: usize,
    split: Split,
    origin: String,
}

/// Lists RAF-DB basic's samples under `root`.
pub(crate) fn list(root: &Path, opts: &LoadOptions) -> Result<Listing, DataError> {
    if opts.classes.is_some_and(|k| k != NUM_BASIC) {
        return Err(DataError::invalid(
            root,
            "RAF-DB basic has 7 classes; --classes 8 applies to affectnet, ferplus and folder",
        ));
    }
    let official = first_existing(&[
        root.join("EmoLabel/list_patition_label.txt"),
        root.join("EmoLabel/list_partition_label.txt"),
    ]);
    let mut listing = Listing::new(NUM_BASIC);
    let mut entries = match (&opts.label_file, official.exists()) {
        (Some(_), false) => Vec::new(),
        _ => parse(root, &official, &mut listing)?,
    };
    if let Some(file) = &opts.label_file {
        let replacement = parse(root, file, &mut listing)?;
        entries.retain(|e| !replacement.iter().any(|r| r.split == e.split));
        entries.extend(replacement);
    }
    let images = root.join("Image/aligned");
    for e in entries {
        let path = images.join(aligned_name(&e.name));
        listing.split_mut(e.split).push(Sample {
            source: ImageSource::File { path, crop: None },
            label: e.label,
            name: e.name,
            origin: e.origin,
        });
    }
    Ok(listing)
}

/// `train_00001.jpg` -> `train_00001_aligned.jpg`.
fn aligned_name(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}_aligned.{ext}"),
        None => format!("{name}_aligned"),
    }
}

/// Parses one label list; bad lines go to `listing.bad`.
fn parse(root: &Path, path: &Path, listing: &mut Listing) -> Result<Vec<Entry>, DataError> {
    let shown = relative(root, path);
    let mut reader = LineReader::open(path, "RAF-DB label list")?;
    let mut entries = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    while let Some(line) = reader.next_line()? {
        let at = format!("{shown} line {}", line.number);
        let text = match line.text {
            Ok(t) => t,
            Err(problem) => {
                listing.bad(at, problem);
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        match parse_line(&text) {
            Ok((name, label, split)) => {
                if let Some(first) = seen.insert(name.to_string(), line.number) {
                    listing.bad(at, format!("duplicate of {name} at line {first}"));
                    continue;
                }
                entries.push(Entry {
                    name: name.to_string(),
                    label,
                    split,
                    origin: at,
                });
            }
            Err(problem) => listing.bad(at, problem),
        }
    }
    Ok(entries)
}

fn parse_line(text: &str) -> Result<(&str, usize, Split), String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [name, label] = fields[..] else {
        return Err(format!(
            "expected `<image name> <label>`, found {} fields: {text:?}",
            fields.len()
        ));
    };
    let label: i64 = label
        .parse()
        .map_err(|_| format!("label {label:?} is not a number"))?;
    if !(1..=NUM_BASIC as i64).contains(&label) {
        return Err(format!("label {label} out of range 1..{NUM_BASIC}"));
    }
    let split = if name.starts_with("train") {
        Split::Train
    } else if name.starts_with("test") {
        Split::Test
    } else {
        return Err(format!(
            "image name {name:?} starts with neither `train` nor `test`"
        ));
    };
    Ok((name, (label - 1) as usize, split))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_to_canonical_labels_and_splits() {
        assert_eq!(
            parse_line("train_00001.jpg 5").unwrap(),
            ("train_00001.jpg", 4, Split::Train)
        );
        assert_eq!(
            parse_line(" test_0001.jpg\t1 ").unwrap(),
            ("test_0001.jpg", 0, Split::Test)
        );
        assert!(
            parse_line("train_1.jpg 8")
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            parse_line("train_1.jpg")
                .unwrap_err()
                .contains("found 1 fields")
        );
        assert!(parse_line("val_1.jpg 2").unwrap_err().contains("neither"));
        assert_eq!(aligned_name("train_00001.jpg"), "train_00001_aligned.jpg");
    }
}
