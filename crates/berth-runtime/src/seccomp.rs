//! Seccomp as the runtime uses it: compiled in the runtime before fork,
//! loaded by init with a single syscall.

/// A compiled filter.
#[derive(Debug, Clone)]
pub struct Program;

pub fn load(_p: &Program) -> Result<(), String> {
    Ok(())
}
