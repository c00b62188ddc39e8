//! FERPlus: `fer2013new.csv` (`Usage, Image name, neutral, happiness, surprise, sadness, anger,
//! disgust, fear, contempt, unknown, NF`, the votes of 10 annotators) paired row by row with
//! `fer2013.csv`'s pixels, as the FERPlus repository's `generate_training_data.py` pairs them.
//!
//! Labels follow the FERPlus reference's majority mode: votes of 1 are discarded, the top class
//! (first on ties) must hold more than half of the remaining votes, and faces whose winner is
//! `unknown` or `NF`, or that have no majority, are left out (and counted). Rows without an
//! image name are faces FERPlus removed; they are left out as well. K = 8 (contempt is index 7);
//! `--classes 7` also leaves out contempt winners.

use std::path::Path;

use super::LoadOptions;
use super::error::DataError;
use super::fer2013::{self, RowReader};
use super::sample::{Listing, Sample};
use super::text::{Line, LineReader, file_name, split_csv};

/// FERPlus vote columns 0..7 (neutral, happiness, surprise, sadness, anger, disgust, fear,
/// contempt) to canonical indices; 8 is unknown and 9 NF.
const TO_CANONICAL: [usize; 8] = [6, 3, 0, 4, 5, 2, 1, 7];
const UNKNOWN: usize = 8;
const NOT_FACE: usize = 9;
const VOTE_COLUMNS: usize = 10;

/// Lists FERPlus's samples under `root`, which holds `fer2013new.csv` and `fer2013.csv` (or
/// `fer2013/fer2013.csv`).
pub(crate) fn list(root: &Path, opts: &LoadOptions) -> Result<Listing, DataError> {
    let num_classes = match opts.classes {
        None | Some(8) => 8,
        Some(7) => 7,
        Some(k) => {
            return Err(DataError::invalid(
                root,
                format!("FERPlus has 8 classes (7 without contempt), not {k}"),
            ));
        }
    };
    let votes_path = root.join("fer2013new.csv");
    let pixels_path = fer2013::csv_path(root);
    let mut votes = LineReader::open(&votes_path, "FERPlus votes (fer2013new.csv)")?;
    let mut pixels = RowReader::open(&pixels_path)?;
    let shown = file_name(&votes_path);
    let mut listing = Listing::new(num_classes);
    loop {
        let vote_line = next_data_line(&mut votes)?;
        let fer = pixels.next_row()?;
        let (line, (fer_at, fer_row)) = match (vote_line, fer) {
            (None, None) => break,
            (Some(line), Some(fer)) => (line, fer),
            (Some(line), None) => {
                return Err(DataError::invalid(
                    &votes_path,
                    format!(
                        "line {}: more rows than {} has; the two files must pair row by row",
                        line.number,
                        pixels_path.display()
                    ),
                ));
            }
            (None, Some((fer_at, _))) => {
                return Err(DataError::invalid(
                    &votes_path,
                    format!("ends before {fer_at}; the two files must pair row by row"),
                ));
            }
        };
        let at = format!("{shown} line {}", line.number);
        let origin = format!("{at} / {fer_at}");
        let fields = match line.text.and_then(|t| split_csv(&t)) {
            Ok(f) => f,
            Err(problem) => {
                listing.bad(at, problem);
                continue;
            }
        };
        let (usage, name, votes) = match parse_votes(&fields) {
            Ok(v) => v,
            Err(problem) => {
                listing.bad(at, problem);
                continue;
            }
        };
        if name.is_empty() {
            listing.exclude("FERPlus: no image name (face removed by FERPlus)");
            continue;
        }
        let label = match majority(&votes) {
            None => {
                listing.exclude("FERPlus majority: no class has more than half the votes");
                continue;
            }
            Some(UNKNOWN) => {
                listing.exclude("FERPlus majority: unknown");
                continue;
            }
            Some(NOT_FACE) => {
                listing.exclude("FERPlus majority: NF (not a face)");
                continue;
            }
            Some(w) if TO_CANONICAL[w] >= num_classes => {
                listing.exclude("FERPlus contempt (7-class mode)");
                continue;
            }
            Some(w) => TO_CANONICAL[w],
        };
        let paired = fer_row.and_then(|r| {
            let split = fer2013::usage_split(usage)?;
            if r.usage != usage {
                return Err(format!(
                    "Usage {usage:?} differs from {fer_at}'s {:?}: the files are not in the \
                     same row order",
                    r.usage
                ));
            }
            Ok((split, fer2013::parse_pixels(&r.pixels)?))
        });
        match paired {
            Ok((split, pixels)) => listing.split_mut(split).push(Sample {
                source: fer2013::grey_source(pixels),
                label,
                name: name.to_string(),
                origin,
            }),
            Err(problem) => listing.bad(origin, problem),
        }
    }
    Ok(listing)
}

/// The next line that is neither the header nor blank.
fn next_data_line(lines: &mut LineReader) -> Result<Option<Line>, DataError> {
    while let Some(line) = lines.next_line()? {
        match &line.text {
            Ok(t) if t.trim().is_empty() => continue,
            Ok(t) if line.number == 1 && t.trim_start().starts_with("Usage") => continue,
            _ => return Ok(Some(line)),
        }
    }
    Ok(None)
}

/// Usage, image name and the 10 vote counts of one row.
fn parse_votes(fields: &[String]) -> Result<(&str, &str, [u32; VOTE_COLUMNS]), String> {
    if fields.len() != 2 + VOTE_COLUMNS {
        return Err(format!(
            "expected {} columns (Usage, Image name, 10 vote counts), found {}",
            2 + VOTE_COLUMNS,
            fields.len()
        ));
    }
    let mut votes = [0u32; VOTE_COLUMNS];
    for (v, text) in votes.iter_mut().zip(&fields[2..]) {
        *v = text
            .parse()
            .ok()
            .filter(|&n| n <= 1000)
            .ok_or_else(|| format!("vote count {text:?} is not a whole number"))?;
    }
    Ok((&fields[0], &fields[1], votes))
}

/// The FERPlus reference's majority vote: the winning column, or `None` without a majority.
fn majority(votes: &[u32; VOTE_COLUMNS]) -> Option<usize> {
    // Single votes are treated as outliers and discarded.
    let kept = votes.map(|v| if v <= 1 { 0 } else { v });
    let total: u32 = kept.iter().sum();
    let (winner, &top) = kept
        .iter()
        .enumerate()
        .rev()
        .max_by_key(|&(_, v)| v)
        .expect("ten columns");
    (2 * top > total).then_some(winner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_follows_the_ferplus_reference() {
        // 6 of 10 for happiness.
        assert_eq!(majority(&[4, 6, 0, 0, 0, 0, 0, 0, 0, 0]), Some(1));
        // 5 of 10 is not more than half ...
        assert_eq!(majority(&[5, 5, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        // ... but single votes are dropped first: 5 of 9 remaining wins.
        assert_eq!(majority(&[5, 4, 1, 0, 0, 0, 0, 0, 0, 0]), Some(0));
        // Only single votes: nothing remains, no majority.
        assert_eq!(majority(&[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), None);
        // Unknown and NF can win (the loader then leaves the face out).
        assert_eq!(majority(&[0, 0, 0, 0, 0, 0, 0, 0, 10, 0]), Some(UNKNOWN));
        assert_eq!(majority(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 8]), Some(NOT_FACE));
        // Contempt maps to canonical index 7.
        assert_eq!(
            majority(&[3, 0, 0, 0, 0, 0, 0, 7, 0, 0]).map(|w| TO_CANONICAL[w]),
            Some(7)
        );
    }
}
