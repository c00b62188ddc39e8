//! Comparison of runs: the Table II Markdown and the overlaid per-class chart.

use cucn::eval::compare::{CompareRow, compare_chart, compare_markdown, write_comparison};
use cucn::eval::report::{Report, evaluate};

/// A report over classes a, b with the given per-class accuracies on 10 samples each.
fn report(classes: &[&str], correct: &[usize]) -> Report {
    let k = classes.len();
    let mut y_true = Vec::new();
    let mut probs = Vec::new();
    for (class, &right) in correct.iter().enumerate() {
        for i in 0..10 {
            y_true.push(class);
            let predicted = if i < right { class } else { (class + 1) % k };
            probs.extend((0..k).map(|c| {
                if c == predicted {
                    0.9
                } else {
                    0.1 / (k - 1) as f32
                }
            }));
        }
    }
    evaluate(&y_true, &probs, None, classes).unwrap()
}

fn row(method: &str, correct: &[usize]) -> CompareRow {
    CompareRow {
        method: method.into(),
        dataset: "RAF-DB".into(),
        report: report(&["a", "b"], correct),
    }
}

#[test]
fn table_has_table_ii_columns_per_run() {
    let md = compare_markdown(&[row("R18", &[9, 3]), row("R18+W|CBAM", &[8, 6])]);
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(
        lines[0],
        "| method | dataset | max acc (%) | min acc (%) | accuracy (%) | mean class acc (%) | macro-F1 (%) |"
    );
    assert_eq!(lines.len(), 4);
    assert!(
        lines[2].starts_with("| R18 | RAF-DB | 90.00 | 30.00 | 60.00 | 60.00 |"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with("| R18+W\\|CBAM | RAF-DB | 80.00 | 60.00 | 70.00 | 70.00 |"),
        "{}",
        lines[3]
    );
}

#[test]
fn chart_needs_runs_with_the_same_classes() {
    let other = CompareRow {
        method: "x".into(),
        dataset: "d".into(),
        report: report(&["a", "c"], &[5, 5]),
    };
    let message = compare_chart(&[row("R18", &[9, 3]), other], "t")
        .unwrap_err()
        .to_string();
    assert!(message.contains("different classes"), "{message}");
    assert!(compare_chart(&[], "t").is_err());
}

#[test]
fn writes_table_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    write_comparison(&[row("R18", &[9, 3]), row("R18+W", &[8, 6])], dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("comparison.md")).unwrap();
    assert!(md.contains("| R18+W | RAF-DB |") && md.contains("per_class.png"));
    let chart = image::open(dir.path().join("per_class.png")).unwrap();
    assert_eq!(
        (chart.width(), chart.height()),
        cucn::eval::plots::PER_CLASS_SIZE
    );
}
