//! Writing prediction results as they come, in one of three formats:
//!
//! - `json`: an array with one object per input file (CLI.md): `path`, `error` (null or a
//!   message), `faces`: `[{box: [x, y, w, h], label, probabilities: {class: p, ...},
//!   uncertainty}]`, plus `top` (the K most probable `[class, p]` pairs) when top-k is asked for.
//!   One file per line, so the array can be read while it grows.
//! - `csv`: a header, then one row per face (one row with empty face columns for a file without
//!   faces or with an error): `path, error, face, x, y, w, h, label, uncertainty`, then one
//!   column per class with its probability.
//! - `table`: aligned text for people, one line per face with the top-k classes (default 3).

use std::io::{self, Write};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::{FacePrediction, FileResult};

/// Classes a table lists per face when no top-k is given.
const TABLE_TOP_K: usize = 3;

/// The result formats of `cucn predict`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// JSON array, one object per file.
    Json,
    /// CSV, one row per face.
    Csv,
    /// Aligned text.
    Table,
}

/// Writes results one at a time in a format.
pub struct ResultWriter<W: Write> {
    out: W,
    format: OutputFormat,
    top_k: Option<usize>,
    num_classes: usize,
    written: usize,
}

impl<W: Write> ResultWriter<W> {
    /// Starts the output (CSV and table headers, JSON's opening bracket). `class_names` are the
    /// model's, in index order.
    pub fn new(
        mut out: W,
        format: OutputFormat,
        top_k: Option<usize>,
        class_names: &[String],
    ) -> io::Result<Self> {
        match format {
            OutputFormat::Json => write!(out, "[")?,
            OutputFormat::Csv => {
                let mut header = "path,error,face,x,y,w,h,label,uncertainty".to_string();
                for name in class_names {
                    header.push(',');
                    header.push_str(&crate::util::csv_field(name));
                }
                writeln!(out, "{header}")?;
            }
            OutputFormat::Table => {
                let k = top_k.unwrap_or(TABLE_TOP_K);
                writeln!(
                    out,
                    "{:<32}  {:>4}  {:<19}  {:<10}  {:>5}  {:>7}  top-{k}",
                    "path", "face", "box (x y w h)", "label", "p", "u"
                )?;
            }
        }
        Ok(ResultWriter {
            out,
            format,
            top_k,
            num_classes: class_names.len(),
            written: 0,
        })
    }

    /// Writes one file's result and flushes, so that a reader sees it at once.
    pub fn write(&mut self, result: &FileResult) -> io::Result<()> {
        match self.format {
            OutputFormat::Json => {
                let separator = if self.written == 0 { "\n" } else { ",\n" };
                let json = serde_json::to_string(&JsonFile(result, self.top_k))
                    .map_err(io::Error::other)?;
                write!(self.out, "{separator}{json}")?;
            }
            OutputFormat::Csv => write_csv(&mut self.out, result, self.num_classes)?,
            OutputFormat::Table => {
                write_table(&mut self.out, result, self.top_k.unwrap_or(TABLE_TOP_K))?
            }
        }
        self.written += 1;
        self.out.flush()
    }

    /// Closes the output (JSON's closing bracket) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.format == OutputFormat::Json {
            let close = if self.written == 0 { "]\n" } else { "\n]\n" };
            write!(self.out, "{close}")?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A file's result in CLI.md's JSON shape, with the top-k list when asked for.
struct JsonFile<'a>(&'a FileResult, Option<usize>);

impl Serialize for JsonFile<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let JsonFile(result, top_k) = self;
        let (faces, error) = match &result.faces {
            Ok(faces) => (faces.as_slice(), None),
            Err(e) => (&[][..], Some(e)),
        };
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("path", &result.path.display().to_string())?;
        map.serialize_entry("error", &error)?;
        let faces: Vec<JsonFace> = faces.iter().map(|f| JsonFace(f, *top_k)).collect();
        map.serialize_entry("faces", &faces)?;
        map.end()
    }
}

struct JsonFace<'a>(&'a FacePrediction, Option<usize>);

impl Serialize for JsonFace<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let JsonFace(face, top_k) = self;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("box", &face.bbox)?;
        map.serialize_entry("label", &face.label)?;
        map.serialize_entry("probabilities", &ClassProbabilities(&face.probabilities))?;
        map.serialize_entry("uncertainty", &face.uncertainty)?;
        if let Some(k) = top_k {
            map.serialize_entry("top", &face.top_k(*k))?;
        }
        map.end()
    }
}

/// Class name -> probability, as a JSON object in class order.
struct ClassProbabilities<'a>(&'a [(String, f32)]);

impl Serialize for ClassProbabilities<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(name, p)| (name, p)))
    }
}

fn write_csv(out: &mut impl Write, result: &FileResult, num_classes: usize) -> io::Result<()> {
    let path = crate::util::csv_field(&result.path.display().to_string());
    // Rows without a face keep every column, empty, so that the table stays rectangular.
    let no_classes = ",".repeat(num_classes);
    match &result.faces {
        Err(e) => writeln!(
            out,
            "{path},{},,,,,,,{no_classes}",
            crate::util::csv_field(e)
        )?,
        Ok(faces) if faces.is_empty() => writeln!(out, "{path},,,,,,,,{no_classes}")?,
        Ok(faces) => {
            for (i, face) in faces.iter().enumerate() {
                let [x, y, w, h] = face.bbox;
                let mut row = format!(
                    "{path},,{i},{x},{y},{w},{h},{},{:.6}",
                    crate::util::csv_field(&face.label),
                    face.uncertainty
                );
                for (_, p) in &face.probabilities {
                    row.push_str(&format!(",{p:.6}"));
                }
                writeln!(out, "{row}")?;
            }
        }
    }
    Ok(())
}

fn write_table(out: &mut impl Write, result: &FileResult, top_k: usize) -> io::Result<()> {
    let path = result.path.display().to_string();
    match &result.faces {
        Err(e) => writeln!(out, "{path:<32}  {:>4}  error: {e}", "-"),
        Ok(faces) if faces.is_empty() => writeln!(out, "{path:<32}  {:>4}  no face found", "-"),
        Ok(faces) => {
            for (i, face) in faces.iter().enumerate() {
                let [x, y, w, h] = face.bbox;
                let top: Vec<String> = face
                    .top_k(top_k)
                    .iter()
                    .map(|(name, p)| format!("{name} {p:.2}"))
                    .collect();
                writeln!(
                    out,
                    "{path:<32}  {i:>4}  {:<19}  {:<10}  {:>5.3}  {:>7.3}  {}",
                    format!("{x} {y} {w} {h}"),
                    face.label,
                    face.probabilities[face.class_index].1,
                    face.uncertainty,
                    top.join(", ")
                )?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn names() -> Vec<String> {
        ["calm", "glad"].map(String::from).to_vec()
    }

    fn results() -> Vec<FileResult> {
        let face = FacePrediction {
            bbox: [1, 2, 30, 40],
            label: "glad".into(),
            class_index: 1,
            probabilities: vec![("calm".into(), 0.25), ("glad".into(), 0.75)],
            uncertainty: 0.5,
        };
        vec![
            FileResult {
                path: PathBuf::from("a,b.jpg"),
                faces: Ok(vec![face.clone(), face]),
            },
            FileResult {
                path: PathBuf::from("empty.png"),
                faces: Ok(vec![]),
            },
            FileResult {
                path: PathBuf::from("bad.jpg"),
                faces: Err("truncated JPEG".into()),
            },
        ]
    }

    fn render(format: OutputFormat, top_k: Option<usize>) -> String {
        let mut w = ResultWriter::new(Vec::new(), format, top_k, &names()).unwrap();
        for r in results() {
            w.write(&r).unwrap();
        }
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    #[test]
    fn json_follows_the_cli_contract() {
        let v: serde_json::Value = serde_json::from_str(&render(OutputFormat::Json, None)).unwrap();
        let files = v.as_array().unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(files[0]["path"], "a,b.jpg");
        assert!(files[0]["error"].is_null());
        let face = &files[0]["faces"][1];
        assert_eq!(face["box"], serde_json::json!([1, 2, 30, 40]));
        assert_eq!(face["label"], "glad");
        assert_eq!(face["probabilities"]["calm"], 0.25);
        assert_eq!(face["uncertainty"], 0.5);
        assert!(face.get("top").is_none());
        assert_eq!(files[1]["faces"].as_array().unwrap().len(), 0);
        assert_eq!(files[2]["error"], "truncated JPEG");
        assert_eq!(files[2]["faces"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn json_top_k_lists_the_most_probable_first() {
        let v: serde_json::Value =
            serde_json::from_str(&render(OutputFormat::Json, Some(1))).unwrap();
        assert_eq!(v[0]["faces"][0]["top"], serde_json::json!([["glad", 0.75]]));
    }

    #[test]
    fn empty_json_is_an_empty_array() {
        let w = ResultWriter::new(Vec::new(), OutputFormat::Json, None, &names()).unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!([])
        );
    }

    #[test]
    fn csv_has_a_row_per_face_and_quotes_fields() {
        let text = render(OutputFormat::Csv, None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "path,error,face,x,y,w,h,label,uncertainty,calm,glad"
        );
        assert_eq!(
            lines[1],
            "\"a,b.jpg\",,0,1,2,30,40,glad,0.500000,0.250000,0.750000"
        );
        assert_eq!(
            lines[2],
            "\"a,b.jpg\",,1,1,2,30,40,glad,0.500000,0.250000,0.750000"
        );
        assert_eq!(lines[3], "empty.png,,,,,,,,,,");
        assert_eq!(lines[4], "bad.jpg,truncated JPEG,,,,,,,,,");
        let columns = lines[0].split(',').count();
        assert!(lines[3..].iter().all(|l| l.split(',').count() == columns));
    }

    #[test]
    fn table_lists_top_k_and_problems() {
        let text = render(OutputFormat::Table, Some(2));
        assert!(text.lines().next().unwrap().ends_with("top-2"));
        assert!(text.contains("glad 0.75, calm 0.25"));
        assert!(text.contains("no face found"));
        assert!(text.contains("error: truncated JPEG"));
    }
}
