//! Validation of a whole dataset: the format's listing plus a parallel check of every image, and
//! the report `cucn data check` prints (counts per class and split, image sizes, every problem).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::error::DataError;
use super::sample::{BadSample, Listing, Sample, Split};
use super::{
    DatasetFormat, ImageCheck, LoadOptions, affectnet, decode, fer2013, ferplus, folder, rafdb,
};
use crate::classes::class_names;

/// A format's listing after its images were checked: bad images moved from the splits into
/// `listing.bad`, and the width and height of every good image.
pub(crate) struct Inspection {
    pub listing: Listing,
    pub sizes: Vec<(u32, u32)>,
}

/// Lists the dataset and checks its images as `opts.check` says.
pub(crate) fn inspect(
    format: DatasetFormat,
    root: &Path,
    opts: &LoadOptions,
) -> Result<Inspection, DataError> {
    if opts.label_file.is_some() && format != DatasetFormat::Rafdb {
        return Err(DataError::invalid(
            root,
            "--label-file applies to the rafdb format only",
        ));
    }
    let mut listing = match format {
        DatasetFormat::Rafdb => rafdb::list(root, opts)?,
        DatasetFormat::Affectnet => affectnet::list(root, opts)?,
        DatasetFormat::Fer2013 => fer2013::list(root, opts)?,
        DatasetFormat::Ferplus => ferplus::list(root, opts)?,
        DatasetFormat::Folder => folder::list(root, opts)?,
    };
    let mut sizes = Vec::new();
    let full = match opts.check {
        ImageCheck::None => return Ok(Inspection { listing, sizes }),
        ImageCheck::Header => false,
        ImageCheck::Decode => true,
    };
    for split in Split::ALL {
        let samples = std::mem::take(listing.split_mut(split));
        let results: Vec<Result<(u32, u32), String>> = samples
            .par_iter()
            .map(|s| decode::verify(&s.source, opts.max_pixels, full))
            .collect();
        let mut kept = Vec::with_capacity(samples.len());
        for (sample, result) in samples.into_iter().zip(results) {
            match result {
                Ok(size) => {
                    sizes.push(size);
                    kept.push(sample);
                }
                Err(problem) => listing.bad(sample.location(), problem),
            }
        }
        *listing.split_mut(split) = kept;
    }
    Ok(Inspection { listing, sizes })
}

/// Summary of the image sizes seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SizeSummary {
    /// Images measured.
    pub images: usize,
    /// Smallest and largest width.
    pub min_width: u32,
    pub max_width: u32,
    /// Smallest and largest height.
    pub min_height: u32,
    pub max_height: u32,
    /// The most frequent `[width, height]` and how many images have it.
    pub most_common: Option<([u32; 2], usize)>,
    /// Number of distinct sizes.
    pub distinct: usize,
}

impl SizeSummary {
    fn of(sizes: &[(u32, u32)]) -> Self {
        if sizes.is_empty() {
            return SizeSummary::default();
        }
        let mut freq: HashMap<(u32, u32), usize> = HashMap::new();
        for &s in sizes {
            *freq.entry(s).or_insert(0) += 1;
        }
        let most_common = freq
            .iter()
            .max_by_key(|&(&(w, h), &n)| (n, std::cmp::Reverse((w, h))))
            .map(|(&(w, h), &n)| ([w, h], n));
        SizeSummary {
            images: sizes.len(),
            min_width: sizes.iter().map(|s| s.0).min().unwrap_or(0),
            max_width: sizes.iter().map(|s| s.0).max().unwrap_or(0),
            min_height: sizes.iter().map(|s| s.1).min().unwrap_or(0),
            max_height: sizes.iter().map(|s| s.1).max().unwrap_or(0),
            most_common,
            distinct: freq.len(),
        }
    }
}

/// What `cucn data check` reports about a dataset.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckReport {
    /// The format read.
    pub format: DatasetFormat,
    /// The dataset root.
    pub root: PathBuf,
    /// Number of classes.
    pub num_classes: usize,
    /// Class names in index order.
    pub classes: Vec<String>,
    /// Per split (`train`, `val`, `test`): usable samples per class, in class order.
    pub counts: BTreeMap<String, Vec<usize>>,
    /// Sizes of the (source) images that were checked.
    pub image_sizes: SizeSummary,
    /// Samples left out by the format's protocol, by reason.
    pub excluded: BTreeMap<String, usize>,
    /// Every problem found.
    pub problems: Vec<BadSample>,
}

/// Checks a dataset completely and reports what it found; only problems that make the whole
/// dataset unreadable (a missing label list, an unknown class folder, ...) are errors.
pub fn check(
    format: DatasetFormat,
    root: &Path,
    opts: &LoadOptions,
) -> Result<CheckReport, DataError> {
    let Inspection { listing, sizes } = inspect(format, root, opts)?;
    let counts = Split::ALL
        .iter()
        .map(|&s| {
            let samples = match s {
                Split::Train => &listing.train,
                Split::Val => &listing.val,
                Split::Test => &listing.test,
            };
            (
                s.name().to_string(),
                count_classes(samples, listing.num_classes),
            )
        })
        .collect();
    Ok(CheckReport {
        format,
        root: root.to_path_buf(),
        num_classes: listing.num_classes,
        classes: class_names(listing.num_classes)
            .iter()
            .map(|s| s.to_string())
            .collect(),
        counts,
        image_sizes: SizeSummary::of(&sizes),
        excluded: listing.excluded,
        problems: listing.bad,
    })
}

/// Samples per class.
pub(crate) fn count_classes(samples: &[Sample], num_classes: usize) -> Vec<usize> {
    let mut counts = vec![0; num_classes];
    for s in samples {
        counts[s.label] += 1;
    }
    counts
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} dataset at {} ({} classes)",
            self.format,
            self.root.display(),
            self.num_classes
        )?;
        let width = self
            .classes
            .iter()
            .map(|c| c.len())
            .max()
            .unwrap_or(5)
            .max(5);
        write!(f, "{:width$}", "class")?;
        let splits: Vec<&String> = self
            .counts
            .iter()
            .filter(|(_, c)| c.iter().sum::<usize>() > 0)
            .map(|(s, _)| s)
            .collect();
        let order = |s: &&String| Split::ALL.iter().position(|x| x.name() == s.as_str());
        let mut splits = splits;
        splits.sort_by_key(order);
        for s in &splits {
            write!(f, " {s:>8}")?;
        }
        writeln!(f)?;
        for (c, name) in self.classes.iter().enumerate() {
            write!(f, "{name:width$}")?;
            for s in &splits {
                write!(f, " {:>8}", self.counts[*s][c])?;
            }
            writeln!(f)?;
        }
        write!(f, "{:width$}", "total")?;
        for s in &splits {
            write!(f, " {:>8}", self.counts[*s].iter().sum::<usize>())?;
        }
        writeln!(f)?;
        let z = &self.image_sizes;
        if z.images > 0 {
            write!(
                f,
                "image sizes: {} images, width {}..{}, height {}..{}, {} distinct",
                z.images, z.min_width, z.max_width, z.min_height, z.max_height, z.distinct
            )?;
            if let Some(([w, h], n)) = z.most_common {
                write!(f, ", most common {w}x{h} ({n})")?;
            }
            writeln!(f)?;
        }
        for (reason, n) in &self.excluded {
            writeln!(f, "left out by protocol: {n} x {reason}")?;
        }
        if self.problems.is_empty() {
            writeln!(f, "no problems found")?;
        } else {
            writeln!(f, "{} problems:", self.problems.len())?;
            for p in &self.problems {
                writeln!(f, "  {}: {}", p.location, p.problem)?;
            }
        }
        Ok(())
    }
}

/// Writes bad samples as CSV (`location,problem`) atomically, e.g. the report of what
/// `--skip-bad` skipped.
pub fn write_problems_csv(path: &Path, problems: &[BadSample]) -> std::io::Result<()> {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut text = String::from("location,problem\n");
    for p in problems {
        text.push_str(&format!("{},{}\n", quote(&p.location), quote(&p.problem)));
    }
    crate::util::write_atomic(path, text.as_bytes())
}
