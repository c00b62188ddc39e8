//! The image files a list of command-line paths stands for: files as given (whatever their
//! extension, so that a wrong file is reported rather than skipped), folders searched
//! recursively for JPEG and PNG files in sorted order.

use std::path::{Path, PathBuf};

use super::FileResult;

/// Extensions (lower case) picked up when searching a folder.
const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// One image file to predict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its path relative to the folder it was found in, or its file name when given directly:
    /// where its annotated copy goes inside the annotation folder.
    pub relative: PathBuf,
}

/// The files found, and the paths that could not be searched.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inputs {
    /// Image files, in the order of the paths given (each folder's files sorted).
    pub files: Vec<InputFile>,
    /// Folders (or entries in them) that could not be read, as failed results.
    pub problems: Vec<FileResult>,
}

/// Expands `paths` into image files. A path that does not exist is kept as a file, so that its
/// prediction reports it as not found.
pub fn collect_inputs(paths: &[PathBuf]) -> Inputs {
    let mut inputs = Inputs::default();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            search(path, &mut found, &mut inputs.problems);
            found.sort();
            inputs.files.extend(found.into_iter().map(|file| InputFile {
                relative: file.strip_prefix(path).unwrap_or(&file).to_path_buf(),
                path: file,
            }));
        } else {
            inputs.files.push(InputFile {
                path: path.clone(),
                relative: path.file_name().map_or_else(|| path.clone(), PathBuf::from),
            });
        }
    }
    inputs
}

/// Adds the image files under `dir` to `found`, recursively; hidden entries are skipped and
/// symbolic links to folders are not followed (no cycles).
fn search(dir: &Path, found: &mut Vec<PathBuf>, problems: &mut Vec<FileResult>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(FileResult {
                path: dir.to_path_buf(),
                faces: Err(format!("cannot read folder: {e}")),
            });
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(FileResult {
                    path: dir.to_path_buf(),
                    faces: Err(format!("cannot list folder entry: {e}")),
                });
                continue;
            }
        };
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        match entry.file_type() {
            Ok(t) if t.is_dir() => search(&path, found, problems),
            _ if is_image_name(&path) && path.is_file() => found.push(path),
            _ => {}
        }
    }
}

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_searched_recursively_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/deep")).unwrap();
        for name in [
            "z.JPG",
            "a.png",
            "notes.txt",
            ".hidden.jpg",
            "b/deep/c.jpeg",
            "b/x.jpg",
        ] {
            std::fs::write(root.join(name), b"x").unwrap();
        }
        let single = root.join("notes.txt");
        let inputs = collect_inputs(&[root.to_path_buf(), single.clone()]);
        let relative: Vec<_> = inputs.files.iter().map(|f| f.relative.clone()).collect();
        let expected: Vec<PathBuf> = ["a.png", "b/deep/c.jpeg", "b/x.jpg", "z.JPG", "notes.txt"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(relative, expected);
        assert_eq!(inputs.files[4].path, single);
        assert!(inputs.problems.is_empty());
    }

    #[test]
    fn a_missing_path_is_kept_to_be_reported() {
        let inputs = collect_inputs(&[PathBuf::from("/no/such/photo.jpg")]);
        assert_eq!(inputs.files.len(), 1);
        assert_eq!(inputs.files[0].relative, PathBuf::from("photo.jpg"));
    }
}
