//! Compiled programs kept on disk, so that a container start does not pay
//! for libseccomp again.
//!
//! Compiling docker's default profile for x86_64 + x86 + x32 takes about
//! 6 ms, most of it libseccomp generating the two 32-bit ABIs: as much as
//! crun's whole container start. Most containers share a handful of
//! profiles (docker's default for the default capabilities), so the runtime
//! compiles each once and reads it back afterwards, in microseconds.
//!
//! One file per profile, named after a hash of the profile's JSON, berth's
//! and libseccomp's versions and the native architecture. The file holds
//! that whole key, so a hash collision, a stale entry or a damaged file is a
//! miss, never a wrong filter. Entries are written with
//! `berth_sys::fs::write_atomic`; the directory may be emptied at any time.
//! The cache never makes compiling fail: a directory it cannot read or write
//! only costs the time of compiling.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;

use crate::{Arch, CompileError, Program, compile};

const MAGIC: &[u8; 8] = b"BSCACHE1";

/// A directory of compiled programs. The caller chooses it, e.g.
/// `<exec-root>/seccomp` for the daemon, or `$XDG_RUNTIME_DIR/berth/seccomp`.
#[derive(Debug, Clone)]
pub struct ProgramCache {
    dir: PathBuf,
}

impl ProgramCache {
    /// A cache in `dir`, created on first write.
    pub fn new(dir: impl Into<PathBuf>) -> ProgramCache {
        ProgramCache { dir: dir.into() }
    }

    /// The cache's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The program for `seccomp`: read from the cache, or compiled and
    /// stored. Fails only when compiling fails.
    pub fn compile(&self, seccomp: &LinuxSeccomp) -> Result<Program, CompileError> {
        let key = cache_key(seccomp);
        let path = self.entry_path(&key);
        match std::fs::read(&path) {
            Ok(bytes) => {
                if let Some(program) = decode(&bytes, &key) {
                    return Ok(program);
                }
                tracing::debug!(path = %path.display(), "seccomp cache entry does not match, recompiling");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "reading seccomp cache entry")
            }
        }
        let program = compile(seccomp)?;
        if let Err(e) = self.store(&path, &key, &program) {
            tracing::warn!(error = %e, "seccomp program not cached; every start compiles it again");
        }
        Ok(program)
    }

    fn entry_path(&self, key: &[u8]) -> PathBuf {
        let mut hasher = std::hash::DefaultHasher::new();
        key.hash(&mut hasher);
        self.dir.join(format!("{:016x}.bpf", hasher.finish()))
    }

    fn store(&self, path: &Path, key: &[u8], program: &Program) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| StoreError::CreateDir {
            path: self.dir.clone(),
            source,
        })?;
        berth_sys::fs::write_replace(path, &encode(key, program))?;
        Ok(())
    }
}

/// Why an entry could not be written; logged, never returned.
#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error("create seccomp cache directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] berth_sys::fs::FsError),
}

/// Everything the compiled program depends on.
fn cache_key(seccomp: &LinuxSeccomp) -> Vec<u8> {
    let libseccomp = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let mut key = format!(
        "berth-seccomp {} libseccomp {} native {}\n",
        env!("CARGO_PKG_VERSION"),
        libseccomp,
        Arch::native()
    )
    .into_bytes();
    serde_json::to_writer(&mut key, seccomp).expect("a seccomp section serialises to JSON");
    key
}

fn encode(key: &[u8], program: &Program) -> Vec<u8> {
    let body = program.to_bytes();
    let mut out = Vec::with_capacity(MAGIC.len() + 8 + key.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn decode(bytes: &[u8], key: &[u8]) -> Option<Program> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (stored_key, rest) = length_prefixed(rest)?;
    if stored_key != key {
        return None;
    }
    let (body, rest) = length_prefixed(rest)?;
    if !rest.is_empty() {
        return None;
    }
    Program::from_bytes(body)
}

fn length_prefixed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker_default;

    fn entries(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn compiles_once_then_reads_back_the_same_program() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ProgramCache::new(tmp.path().join("seccomp"));
        let profile = docker_default(&[], Arch::native());
        let fresh = compile(&profile).unwrap();

        assert_eq!(cache.compile(&profile).unwrap(), fresh);
        let files = entries(cache.dir());
        assert_eq!(files.len(), 1);
        let stored = std::fs::read(&files[0]).unwrap();
        assert_eq!(cache.compile(&profile).unwrap(), fresh);
        assert_eq!(
            std::fs::read(&files[0]).unwrap(),
            stored,
            "a hit does not rewrite"
        );

        // Another profile, another entry.
        let admin = docker_default(&["CAP_SYS_ADMIN".into()], Arch::native());
        assert_eq!(cache.compile(&admin).unwrap(), compile(&admin).unwrap());
        assert_eq!(entries(cache.dir()).len(), 2);
    }

    #[test]
    fn damaged_or_foreign_entries_are_recompiled() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ProgramCache::new(tmp.path());
        let profile = docker_default(&[], Arch::native());
        let fresh = compile(&profile).unwrap();
        let path = cache.entry_path(&cache_key(&profile));

        let good = encode(&cache_key(&profile), &fresh);
        for bad in [
            good[..good.len() - 8].to_vec(), // one instruction short
            [good.as_slice(), b"x"].concat(),
            encode(b"another profile", &fresh),
            b"garbage".to_vec(),
        ] {
            std::fs::write(&path, &bad).unwrap();
            assert_eq!(cache.compile(&profile).unwrap(), fresh);
            assert_eq!(std::fs::read(&path).unwrap(), good);
        }
    }

    #[test]
    fn an_unwritable_directory_only_costs_time() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, b"").unwrap();
        let cache = ProgramCache::new(&file);
        let profile = docker_default(&[], Arch::native());
        assert_eq!(cache.compile(&profile).unwrap(), compile(&profile).unwrap());
    }
}
