//! Reading manifests named by `-f`: files, directories (recursively, `*.yaml|*.yml|*.json`, in
//! name order, as kubectl does) and `-` for standard input.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// One input: the name errors should mention, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// File path as given (or `-`).
    pub source: String,
    /// Contents.
    pub text: String,
}

/// Reads every manifest named by `paths`, in order.
pub fn read_manifests(paths: &[PathBuf]) -> anyhow::Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            out.push(Manifest {
                source: "-".into(),
                text,
            });
        } else if path.is_dir() {
            let mut files = Vec::new();
            collect_dir(path, &mut files)?;
            if files.is_empty() {
                anyhow::bail!("no *.yaml, *.yml or *.json files in {}", path.display());
            }
            for file in files {
                out.push(read_file(&file)?);
            }
        } else {
            out.push(read_file(path)?);
        }
    }
    Ok(out)
}

fn read_file(path: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Manifest {
        source: path.display().to_string(),
        text,
    })
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_dir(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_read_recursively_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("b");
        std::fs::create_dir(&sub).expect("mkdir");
        std::fs::write(dir.path().join("a.yaml"), "a").expect("write");
        std::fs::write(sub.join("c.json"), "c").expect("write");
        std::fs::write(sub.join("notes.txt"), "x").expect("write");
        let read = read_manifests(&[dir.path().to_path_buf()]).expect("read");
        let texts: Vec<&str> = read.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["a", "c"]);
        assert!(read_manifests(&[dir.path().join("missing.yaml")]).is_err());
    }
}
