//! A folder per class: `root/<class>/...` (all training data), or `root/<split>/<class>/...` with
//! split folders `train`/`training`, `val`/`valid`/`validation` and `test`/`testing`. Class
//! folder names are matched case-insensitively to the classes and common synonyms (`angry`,
//! `happy`, ...); an unknown folder is an error listing the accepted names. Every file below a
//! class folder, in nested folders too, is a sample (a non-image is reported as bad); hidden
//! files (`.DS_Store`, ...) and files outside the class folders are left out and counted.

use std::path::{Path, PathBuf};

use super::LoadOptions;
use super::error::DataError;
use super::sample::{ImageSource, Listing, Sample, Split};
use super::text::relative;
use crate::classes::{CLASS_NAMES, NUM_BASIC};

/// Accepted folder names of each canonical class, in canonical order.
const SYNONYMS: [&[&str]; 8] = [
    &["surprise", "surprised", "suprise"],
    &["fear", "fearful", "afraid", "scared"],
    &["disgust", "disgusted"],
    &["happiness", "happy", "joy"],
    &["sadness", "sad"],
    &["anger", "angry"],
    &["neutral"],
    &["contempt", "contemptuous"],
];

/// The canonical class of a folder name.
fn class_of(name: &str) -> Option<usize> {
    let lower = name.to_lowercase();
    SYNONYMS.iter().position(|s| s.contains(&lower.as_str()))
}

/// The split of a split-folder name.
fn split_of(name: &str) -> Option<Split> {
    match name.to_lowercase().as_str() {
        "train" | "training" => Some(Split::Train),
        "val" | "valid" | "validation" => Some(Split::Val),
        "test" | "testing" => Some(Split::Test),
        _ => None,
    }
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// The entries of a folder, sorted by name so that listings are the same on every machine.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| DataError::io(dir, e)))
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort();
    Ok(entries)
}

/// Lists a class-folder dataset under `root`.
pub(crate) fn list(root: &Path, opts: &LoadOptions) -> Result<Listing, DataError> {
    if !root.is_dir() {
        return Err(DataError::MissingListFile {
            what: "dataset folder",
            path: root.to_path_buf(),
        });
    }
    let mut listing = Listing::default();
    let dirs = subfolders(root, &mut listing)?;
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let split_mode = dirs
        .iter()
        .any(|d| name(d).is_some_and(|n| split_of(&n).is_some()));
    let mut class_dirs = Vec::new();
    for dir in dirs {
        let n = name(&dir).unwrap_or_default();
        if split_mode {
            let split = split_of(&n).ok_or_else(|| DataError::Invalid {
                path: dir.clone(),
                message: "this dataset has split folders, so every top-level folder must be \
                          train/training, val/valid/validation or test/testing"
                    .into(),
            })?;
            for sub in subfolders(&dir, &mut listing)? {
                class_dirs.push((split, class_folder(&sub)?, sub));
            }
        } else {
            class_dirs.push((Split::Train, class_folder(&dir)?, dir));
        }
    }
    if class_dirs.is_empty() {
        return Err(DataError::invalid(
            root,
            "no class folders found (expected root/<class>/*.jpg or root/<split>/<class>/*.jpg)",
        ));
    }
    let has_contempt = class_dirs.iter().any(|(_, c, _)| *c == NUM_BASIC);
    let num_classes = match opts.classes {
        None => NUM_BASIC + usize::from(has_contempt),
        Some(k @ (7 | 8)) => k,
        Some(k) => {
            return Err(DataError::invalid(
                root,
                format!("--classes must be 7 or 8, not {k}"),
            ));
        }
    };
    listing.num_classes = num_classes;
    for (split, class, dir) in class_dirs {
        for file in files_below(&dir, &mut listing)? {
            if class >= num_classes {
                listing.exclude("contempt folder (7-class mode)");
                continue;
            }
            listing.split_mut(split).push(Sample {
                name: relative(root, &file),
                source: ImageSource::File {
                    path: file,
                    crop: None,
                },
                label: class,
                origin: String::new(),
            });
        }
    }
    Ok(listing)
}

/// The visible subfolders of `dir`; files beside them and hidden entries are counted as excluded.
fn subfolders(dir: &Path, listing: &mut Listing) -> Result<Vec<PathBuf>, DataError> {
    let mut dirs = Vec::new();
    for entry in sorted_entries(dir)? {
        if is_hidden(&entry) {
            listing.exclude("hidden file or folder");
        } else if entry.is_dir() {
            dirs.push(entry);
        } else {
            listing.exclude("file outside the class folders");
        }
    }
    Ok(dirs)
}

/// The class of a class folder, or the error that lists the accepted names.
fn class_folder(dir: &Path) -> Result<usize, DataError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    class_of(&name).ok_or_else(|| {
        let accepted = SYNONYMS
            .iter()
            .zip(CLASS_NAMES)
            .map(|(s, c)| format!("{c} ({})", s.join("/")))
            .collect::<Vec<_>>()
            .join(", ");
        DataError::UnknownClassFolder {
            path: dir.to_path_buf(),
            name,
            accepted,
        }
    })
}

/// All non-hidden files below `dir`, in sorted order; hidden entries are counted as excluded.
fn files_below(dir: &Path, listing: &mut Listing) -> Result<Vec<PathBuf>, DataError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut subdirs = Vec::new();
        for entry in sorted_entries(&d)? {
            if is_hidden(&entry) {
                listing.exclude("hidden file or folder");
            } else if entry.is_dir() {
                subdirs.push(entry);
            } else {
                files.push(entry);
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_match_classes_and_synonyms() {
        assert_eq!(class_of("Angry"), Some(5));
        assert_eq!(class_of("anger"), Some(5));
        assert_eq!(class_of("HAPPY"), Some(3));
        assert_eq!(class_of("happiness"), Some(3));
        assert_eq!(class_of("Surprised"), Some(0));
        assert_eq!(class_of("contempt"), Some(7));
        assert_eq!(class_of("bored"), None);
        assert_eq!(split_of("Validation"), Some(Split::Val));
    }
}
