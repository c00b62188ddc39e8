//! `cucn predict`: the expressions of the faces in photos (or in face crops), as json, csv or a
//! table, optionally with annotated copies.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use cucn::predict::annotate::{annotated_path, write_annotated};
use cucn::predict::inputs::collect_inputs;
use cucn::predict::output::{OutputFormat, ResultWriter};
use cucn::predict::{DetectOptions, FileResult, PredictOptions, Predictor};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `cucn predict`.
#[derive(clap::Args, Debug, Clone)]
pub struct PredictArgs {
    /// Trained model: a run directory (its best checkpoint) or a model file (model.bpk).
    #[arg(long)]
    pub model: PathBuf,
    /// Images (JPEG, PNG) and folders (searched recursively).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The inputs are face crops: classify each whole image, detect nothing.
    #[arg(long)]
    pub no_detect: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Classes listed per face: in the table (default 3) and as a `top` list in json.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..))]
    pub top_k: Option<u16>,
    /// Write copies of the inputs with boxes and labels drawn into this folder.
    #[arg(long, value_name = "DIR")]
    pub annotate: Option<PathBuf>,
    /// Faces per network batch.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub batch: u16,
    /// Context around each detected face, as a fraction of the box size per side.
    #[arg(long, default_value_t = 0.2, value_parser = parse_margin)]
    pub margin: f32,
    /// Smallest face looked for, in pixels (40 or more; larger is faster on big photos).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(40..))]
    pub min_face: u32,
    /// Detector score a face needs (higher: fewer false faces, more missed ones).
    #[arg(long, default_value_t = 2.0)]
    pub score_threshold: f64,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Write the results to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print nothing but results and errors.
    #[arg(short, long)]
    pub quiet: bool,
}

fn parse_margin(text: &str) -> Result<f32, String> {
    let margin: f32 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=2.0).contains(&margin) {
        Ok(margin)
    } else {
        Err("the margin must lie between 0 and 2".into())
    }
}

/// Runs `cucn predict`. Exit code 0 when every input was read, 3 when some failed and 1 when all
/// did (CLI.md); an image without a face is not a failure.
pub fn run(args: &PredictArgs) -> anyhow::Result<ExitCode> {
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(usize::from(threads))
            .build_global()
            .context("cannot set the number of threads")?;
    }
    let options = PredictOptions {
        detect: (!args.no_detect).then_some(DetectOptions {
            min_face: args.min_face,
            score_threshold: args.score_threshold,
        }),
        margin: args.margin,
        batch: usize::from(args.batch),
        ..PredictOptions::default()
    };
    let predictor = Predictor::load(&args.model)?.with_options(options);
    let inputs = collect_inputs(&args.paths);
    let total = inputs.files.len() + inputs.problems.len();
    if inputs.files.is_empty() && inputs.problems.is_empty() {
        anyhow::bail!("no JPEG or PNG images found in the paths given");
    }

    let format = if args.json {
        OutputFormat::Json
    } else {
        args.format
    };
    let sink = match &args.out {
        Some(_) => Sink::Buffer(Vec::new()),
        None => Sink::Stdout(std::io::stdout().lock()),
    };
    let top_k = args.top_k.map(usize::from);
    let mut writer = ResultWriter::new(sink, format, top_k, predictor.class_names())
        .context("cannot write the results")?;
    let progress = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total as u64).with_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} images, {per_sec}, eta {eta}")
                .expect("a valid template"),
        )
    };

    let start = Instant::now();
    let mut tally = Tally::default();
    let mut taken = HashSet::new();
    let mut write_error = None;
    let mut report = |mut result: FileResult, relative: Option<&Path>| {
        if let (Some(dir), Some(relative), Ok(faces)) = (&args.annotate, relative, &result.faces) {
            let out = annotated_path(dir, relative, &mut taken);
            if let Err(e) = write_annotated(&result.path, faces, &out, options.max_pixels) {
                result.faces = Err(e.to_string());
            }
        }
        tally.add(&result);
        if let Err(e) = &result.faces {
            progress.suspend(|| eprintln!("error: {}: {e}", result.path.display()));
        }
        if write_error.is_none() {
            write_error = progress.suspend(|| writer.write(&result)).err();
        }
        progress.inc(1);
    };
    for problem in inputs.problems {
        report(problem, None);
    }
    let paths: Vec<PathBuf> = inputs.files.iter().map(|f| f.path.clone()).collect();
    let mut relatives = inputs.files.iter().map(|f| f.relative.as_path());
    predictor.predict_files(&paths, |result| report(result, relatives.next()));
    progress.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e).context("cannot write the results");
    }

    if let (Sink::Buffer(bytes), Some(out)) = (
        writer.finish().context("cannot write the results")?,
        &args.out,
    ) {
        cucn::util::write_atomic(out, &bytes)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    let seconds = start.elapsed().as_secs_f64();
    if !args.quiet {
        eprintln!(
            "predicted {} files: {} faces, {} failed, {seconds:.1} s ({:.1} files/s)",
            tally.files,
            tally.faces,
            tally.failed,
            tally.files as f64 / seconds.max(1e-9)
        );
    }
    Ok(tally.exit_code())
}

/// Where results go: standard output as they come, or a buffer written atomically to `--out` at
/// the end.
enum Sink {
    Stdout(std::io::StdoutLock<'static>),
    Buffer(Vec<u8>),
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Stdout(out) => out.write(bytes),
            Sink::Buffer(buffer) => buffer.write(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout(out) => out.flush(),
            Sink::Buffer(_) => Ok(()),
        }
    }
}

/// Counts of the results seen.
#[derive(Default)]
struct Tally {
    files: usize,
    failed: usize,
    faces: usize,
}

impl Tally {
    fn add(&mut self, result: &FileResult) {
        self.files += 1;
        match &result.faces {
            Ok(faces) => self.faces += faces.len(),
            Err(_) => self.failed += 1,
        }
    }

    fn exit_code(&self) -> ExitCode {
        match self.failed {
            0 => ExitCode::SUCCESS,
            n if n == self.files => ExitCode::from(1),
            _ => ExitCode::from(3),
        }
    }
}
