//! Records on disk: one JSON file per network and one per sandbox under
//! `<data root>/network/`, each replaced atomically.

use std::fs;
use std::path::{Path, PathBuf};

use berth_api::ErrorKind;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Errors reading or writing records, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("create {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("decode {path}: {source}")]
    Decode { path: PathBuf, source: serde_json::Error },
    #[error("store record: {source}")]
    Write { source: berth_sys::fs::FsError },
    #[error("remove {path}: {source}")]
    Remove { path: PathBuf, source: std::io::Error },
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// A directory of `<key>.json` records.
#[derive(Debug, Clone)]
pub struct RecordDir {
    dir: PathBuf,
}

impl RecordDir {
    /// Open (creating) `dir`, removing temporaries a crash left mid-write.
    pub fn open(dir: PathBuf) -> Result<RecordDir, StoreError> {
        fs::create_dir_all(&dir).map_err(|source| StoreError::Dir { path: dir.clone(), source })?;
        let _ = berth_sys::fs::remove_temp_leftovers(&dir);
        Ok(RecordDir { dir })
    }

    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn write<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let data = serde_json::to_vec_pretty(value).expect("records serialize");
        berth_sys::fs::write_atomic(&self.path(key), &data).map_err(|source| StoreError::Write { source })
    }

    pub fn remove(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Remove { path, source }),
        }
    }

    /// Every record, with the errors of those that could not be read.
    pub fn load_all<T: DeserializeOwned>(&self) -> (Vec<T>, Vec<StoreError>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(source) => return (out, vec![StoreError::Read { path: self.dir.clone(), source }]),
        };
        let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
        paths.sort();
        for path in paths {
            match fs::read(&path) {
                Ok(data) => match serde_json::from_slice(&data) {
                    Ok(v) => out.push(v),
                    Err(source) => errors.push(StoreError::Decode { path, source }),
                },
                Err(source) => errors.push(StoreError::Read { path, source }),
            }
        }
        (out, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_ones_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordDir::open(dir.path().join("n")).unwrap();
        store.write("a", &vec![1, 2]).unwrap();
        store.write("b", &vec![3]).unwrap();
        fs::write(store.path("c"), b"{half").unwrap();
        let (vals, errs): (Vec<Vec<i32>>, _) = store.load_all();
        assert_eq!(vals, vec![vec![1, 2], vec![3]]);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().contains("c.json"), "{}", errs[0]);
        store.remove("a").unwrap();
        store.remove("a").unwrap();
        assert_eq!(store.load_all::<Vec<i32>>().0.len(), 1);
    }
}
