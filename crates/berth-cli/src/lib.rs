pub mod cli;
pub mod client;
pub mod format;
pub mod opts;
pub mod units;

pub fn main<I: IntoIterator<Item = std::ffi::OsString>>(_a: I) -> i32 { 0 }
