//! Thin Linux seams shared by berth's crates.
//!
//! Everything here is a small, documented wrapper over one kernel facility,
//! with errors that name the path or object involved. Higher crates never call
//! `libc` for these things directly, so the failure messages stay uniform.

pub mod fs;
pub mod mount;
