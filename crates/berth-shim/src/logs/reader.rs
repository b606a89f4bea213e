//! Reading json-file and local logs back, for the daemon's `logs`.
//!
//! Semantics follow docker's (moby `daemon/logger/loggerutils/logfile.go`):
//! `tail` N takes the last N entries over all files, whatever their stream,
//! before the other filters; `since` drops entries before it until the first
//! one at or after it; an entry after `until` ends the read; the stream
//! filter applies last. With `follow`, entries written later come too,
//! across rotations, until the stop condition holds (then what is already
//! written is read to its end) or `until` has passed.
//!
//! The reader runs in the daemon, the writer in the shim: the set of files
//! is opened under a shared flock of the log directory (a rotation holds it
//! exclusively), and a rotation is noticed by the log path naming another
//! inode than the open file.

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::rotate::{DirLock, parent_dir, rotated_name};
use super::{LogConfig, LogDriver, LogEntry, LogError, local};

/// What to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Nanoseconds since the epoch.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// The last N entries only.
    pub tail: Option<usize>,
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions { since: None, until: None, tail: None, follow: false, stdout: true, stderr: true }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Local,
}

const CHUNK: usize = 64 * 1024;

/// One file being read from `pos` on.
struct Source {
    file: File,
    path: PathBuf,
    pos: u64,
    buf: Vec<u8>,
    eof: bool,
}

impl Source {
    fn new(file: File, path: PathBuf, pos: u64) -> Source {
        Source { file, path, pos, buf: Vec::new(), eof: false }
    }

    /// Reads more bytes into `buf`; false at the end of the file.
    fn fill(&mut self) -> Result<bool, LogError> {
        let old = self.buf.len();
        self.buf.resize(old + CHUNK, 0);
        let n = loop {
            match self.file.read_at(&mut self.buf[old..], self.pos) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    self.buf.truncate(old);
                    return Err(LogError::Read { path: self.path.clone(), source });
                }
            }
        };
        self.buf.truncate(old + n);
        self.pos += n as u64;
        Ok(n > 0)
    }

    /// The next entry in what has been read, skipping what is not one.
    fn decode(&mut self, format: Format) -> Option<LogEntry> {
        loop {
            match format {
                Format::Json => {
                    let nl = self.buf.iter().position(|&b| b == b'\n')?;
                    let entry = super::jsonfile::decode(&self.buf[..nl]);
                    self.buf.drain(..=nl);
                    if entry.is_some() {
                        return entry;
                    }
                }
                Format::Local => match local::decode(&self.buf) {
                    local::Decoded::Entry(e, n) => {
                        self.buf.drain(..n);
                        return Some(e);
                    }
                    local::Decoded::Incomplete => return None,
                    local::Decoded::Corrupt(n) => {
                        self.buf.drain(..n);
                    }
                },
            }
        }
    }
}

/// Stop condition for `follow`, checked between waits.
pub type StopFn = Box<dyn FnMut() -> bool + Send>;

/// Entries of one container's log. An iterator; with `follow` it blocks
/// for new entries.
pub struct LogReader {
    format: Format,
    path: PathBuf,
    opts: ReadOptions,
    /// Files left to read, oldest first; the last one is the current log.
    sources: VecDeque<Source>,
    since_passed: bool,
    done: bool,
    /// Following: the log path now names a newer file.
    rotated: bool,
    /// Following: the stop condition held; read to the end, then stop.
    stopping: bool,
    watch: Option<Inotify>,
    stop: Option<StopFn>,
    /// How long one wait for news lasts before the stop condition is checked.
    pub poll_interval: Duration,
}

fn open_file(path: &Path) -> Result<Option<File>, LogError> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LogError::Open { path: path.to_owned(), source }),
    }
}

fn file_size(f: &File, path: &Path) -> Result<u64, LogError> {
    f.metadata().map(|m| m.len()).map_err(|source| LogError::Read { path: path.to_owned(), source })
}

fn read_at(f: &File, path: &Path, buf: &mut [u8], pos: u64) -> Result<(), LogError> {
    f.read_exact_at(buf, pos).map_err(|source| LogError::Read { path: path.to_owned(), source })
}

/// Offset where the last `n` complete lines of a json-file log start, and
/// how many lines there are from there (fewer than `n`: the whole file).
fn json_tail(f: &File, path: &Path, n: usize) -> Result<(u64, usize), LogError> {
    let size = file_size(f, path)?;
    let mut end = size;
    let mut count = 0usize;
    // Newlines seen; the one ending the last complete line is the first.
    let mut seen_last_nl = false;
    let mut buf = vec![0u8; CHUNK];
    while end > 0 {
        let start = end.saturating_sub(CHUNK as u64);
        let chunk = &mut buf[..(end - start) as usize];
        read_at(f, path, chunk, start)?;
        for i in (0..chunk.len()).rev() {
            if chunk[i] != b'\n' {
                continue;
            }
            if !seen_last_nl {
                seen_last_nl = true;
                continue;
            }
            count += 1;
            if count == n {
                return Ok((start + i as u64 + 1, count));
            }
        }
        end = start;
    }
    Ok((0, if seen_last_nl { count + 1 } else { 0 }))
}

/// The same for a local log, walking the records' trailers backwards.
fn local_tail(f: &File, path: &Path, n: usize) -> Result<(u64, usize), LogError> {
    let size = file_size(f, path)?;
    let mut pos = size;
    let mut count = 0;
    while count < n && pos > 0 {
        let ok = pos >= local::OVERHEAD as u64 && {
            let mut t = [0u8; 4];
            read_at(f, path, &mut t, pos - 4)?;
            let len = local::trailer_len(&t) as u64;
            let start = pos.checked_sub(len + 8);
            match start {
                Some(s) if len as usize <= local::MAX_PAYLOAD => {
                    let mut h = [0u8; 4];
                    read_at(f, path, &mut h, s)?;
                    if local::trailer_len(&h) as u64 == len {
                        pos = s;
                        true
                    } else {
                        false
                    }
                }
                _ => false,
            }
        };
        if !ok {
            return local_tail_forward(f, path, size, n);
        }
        count += 1;
    }
    Ok((pos, count))
}

/// Fallback for a damaged or half-written file: scan forward, keep the
/// offsets of the last `n` records.
fn local_tail_forward(f: &File, path: &Path, size: u64, n: usize) -> Result<(u64, usize), LogError> {
    let mut src = Source::new(f.try_clone().map_err(|source| LogError::Read { path: path.to_owned(), source })?, path.to_owned(), 0);
    let mut starts: VecDeque<u64> = VecDeque::new();
    let mut base = 0u64;
    while src.pos < size && src.fill()? {
        loop {
            match local::decode(&src.buf) {
                local::Decoded::Entry(_, used) => {
                    starts.push_back(base);
                    if starts.len() > n {
                        starts.pop_front();
                    }
                    src.buf.drain(..used);
                    base += used as u64;
                }
                local::Decoded::Corrupt(used) => {
                    src.buf.drain(..used);
                    base += used as u64;
                }
                local::Decoded::Incomplete => break,
            }
        }
    }
    Ok((starts.front().copied().unwrap_or(size), starts.len()))
}

impl LogReader {
    /// Opens the container's log as `config` describes it.
    pub fn open(config: &LogConfig, opts: ReadOptions) -> Result<LogReader, LogError> {
        let format = match config.driver {
            LogDriver::JsonFile => Format::Json,
            LogDriver::Local => Format::Local,
            d => return Err(LogError::NotReadable { driver: d.name() }),
        };
        let path = config.path.clone();
        let dir = parent_dir(&path).to_owned();
        let watch = if opts.follow {
            let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
                .map_err(|errno| LogError::Watch { path: dir.clone(), errno })?;
            let mask = AddWatchFlags::IN_MODIFY
                | AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_MOVED_FROM
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_CLOSE_WRITE;
            ino.add_watch(&dir, mask).map_err(|errno| LogError::Watch { path: dir.clone(), errno })?;
            Some(ino)
        } else {
            None
        };

        // Newest first: the current file, then .1, .2, ...
        let mut files: Vec<(PathBuf, File)> = Vec::new();
        {
            let _lock = match DirLock::lock(&dir, false) {
                Ok(l) => Some(l),
                Err(LogError::Open { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            if let Some(f) = open_file(&path)? {
                files.push((path.clone(), f));
            }
            for n in 1..=10_000 {
                let p = rotated_name(&path, n);
                match open_file(&p)? {
                    Some(f) => files.push((p, f)),
                    None => break,
                }
            }
        }
        let current_present = files.first().is_some_and(|(p, _)| *p == path);

        let mut sources = VecDeque::new();
        match opts.tail {
            None => {
                for (p, f) in files {
                    sources.push_front(Source::new(f, p, 0));
                }
            }
            // Nothing old; the current file's end is where following starts.
            Some(0) => {
                if let Some((p, f)) = files.into_iter().next().filter(|_| current_present) {
                    let size = file_size(&f, &p)?;
                    sources.push_back(Source::new(f, p, size));
                }
            }
            Some(mut n) => {
                for (p, f) in files {
                    let (start, count) = match format {
                        Format::Json => json_tail(&f, &p, n)?,
                        Format::Local => local_tail(&f, &p, n)?,
                    };
                    sources.push_front(Source::new(f, p, start));
                    n -= count.min(n);
                    if n == 0 {
                        break;
                    }
                }
            }
        }
        // Following a log not created yet: wait for the file.
        let mut r = LogReader {
            format,
            path,
            opts,
            sources,
            since_passed: opts.since.is_none(),
            done: false,
            rotated: false,
            stopping: false,
            watch,
            stop: None,
            poll_interval: Duration::from_millis(100),
        };
        if !current_present {
            r.rotated = true;
        }
        Ok(r)
    }

    /// With `follow`: stop once `f` returns true (after reading what has
    /// been written by then). Without it, following goes on until `until`
    /// or forever.
    pub fn with_stop(mut self, f: impl FnMut() -> bool + Send + 'static) -> LogReader {
        self.stop = Some(Box::new(f));
        self
    }

    /// Adds a stop condition to the one set (either one stops).
    pub fn with_stop_also(mut self, mut g: impl FnMut() -> bool + Send + 'static) -> LogReader {
        self.stop = Some(match self.stop.take() {
            Some(mut f) => Box::new(move || f() || g()),
            None => Box::new(g),
        });
        self
    }

    /// The next entry; None at the end (without `follow`, the end of the
    /// log; with it, the stop condition or `until`).
    pub fn next_entry(&mut self) -> Result<Option<LogEntry>, LogError> {
        while !self.done {
            let Some(e) = self.next_raw()? else { break };
            if !self.since_passed {
                if e.time < self.opts.since.unwrap_or(i64::MIN) {
                    continue;
                }
                self.since_passed = true;
            }
            if self.opts.until.is_some_and(|u| e.time > u) {
                self.done = true;
                break;
            }
            let wanted = match e.stream {
                super::Stream::Stdout => self.opts.stdout,
                super::Stream::Stderr => self.opts.stderr,
            };
            if wanted {
                return Ok(Some(e));
            }
        }
        self.done = true;
        Ok(None)
    }

    fn next_raw(&mut self) -> Result<Option<LogEntry>, LogError> {
        loop {
            if let Some(src) = self.sources.front_mut() {
                if let Some(e) = src.decode(self.format) {
                    return Ok(Some(e));
                }
                if !src.eof && src.fill()? {
                    continue;
                }
                src.eof = true;
                if self.sources.len() > 1 {
                    self.sources.pop_front();
                    continue;
                }
            }
            // At the end of the newest file.
            if !self.opts.follow {
                return Ok(None);
            }
            if self.rotated {
                // The old file was read to its end after the rotation was
                // seen: move on to the files written after it (more than
                // one when the log rotated again meanwhile), oldest first.
                let newer = self.open_newer()?;
                if !newer.is_empty() {
                    self.sources.clear();
                    self.sources.extend(newer.into_iter().map(|(p, f)| Source::new(f, p, 0)));
                    self.rotated = false;
                    continue;
                }
            } else if self.current_replaced()? {
                self.rotated = true;
                if let Some(s) = self.sources.front_mut() {
                    s.eof = false;
                }
                continue;
            }
            if self.stopping {
                return Ok(None);
            }
            self.wait()?;
            if let Some(s) = self.sources.front_mut() {
                s.eof = false;
            }
        }
    }

    /// The files of the log newer than the one being read, oldest first,
    /// the current one last: the rotated ones of lower number than it has
    /// now (all of them if it is gone or there is none), then the current.
    fn open_newer(&self) -> Result<Vec<(PathBuf, File)>, LogError> {
        let dir = parent_dir(&self.path);
        let _lock = DirLock::lock(dir, false)?;
        let ours = match self.sources.back() {
            Some(src) => Some(src.file.metadata().map_err(|source| LogError::Read { path: src.path.clone(), source })?),
            None => None,
        };
        let mut rotated = Vec::new();
        for n in 1..=10_000 {
            let p = rotated_name(&self.path, n);
            let Some(f) = open_file(&p)? else { break };
            let m = f.metadata().map_err(|source| LogError::Read { path: p.clone(), source })?;
            if ours.as_ref().is_some_and(|o| o.ino() == m.ino() && o.dev() == m.dev()) {
                break;
            }
            rotated.push((p, f));
        }
        rotated.reverse();
        if let Some(f) = open_file(&self.path)? {
            rotated.push((self.path.clone(), f));
        }
        Ok(rotated)
    }

    /// The log path names another file than the one being read.
    fn current_replaced(&self) -> Result<bool, LogError> {
        let Some(src) = self.sources.back() else { return Ok(true) };
        let open = src.file.metadata().map_err(|source| LogError::Read { path: src.path.clone(), source })?;
        match std::fs::metadata(&self.path) {
            Ok(m) => Ok(m.ino() != open.ino() || m.dev() != open.dev()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(LogError::Read { path: self.path.clone(), source }),
        }
    }

    /// Waits for a change in the log directory, at most `poll_interval`;
    /// checks the stop condition and `until`.
    fn wait(&mut self) -> Result<(), LogError> {
        let stop_now = self.stop.as_mut().is_some_and(|f| f())
            || self.opts.until.is_some_and(|u| crate::timefmt::now_nanos() > u);
        if stop_now {
            // One more pass over what is there, then the end.
            self.stopping = true;
            return Ok(());
        }
        let Some(ino) = &self.watch else { return Ok(()) };
        let mut fds = [nix::poll::PollFd::new(ino.as_fd(), nix::poll::PollFlags::POLLIN)];
        let ms = self.poll_interval.as_millis().min(u16::MAX as u128) as u16;
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(errno) => return Err(LogError::Watch { path: self.path.clone(), errno }),
        }
        // Drain the events; which file changed does not matter.
        while let Ok(ev) = ino.read_events() {
            if ev.is_empty() {
                break;
            }
        }
        Ok(())
    }
}

impl Iterator for LogReader {
    type Item = Result<LogEntry, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A stop condition for following a shim's log: true once the shim has
/// written its exit record or is gone.
pub fn stop_when_shim_done(state_dir: &Path) -> impl FnMut() -> bool + Send + 'static {
    let exit = state_dir.join(crate::protocol::EXIT_FILE);
    let pid_file = state_dir.join(crate::protocol::PID_FILE);
    move || {
        if exit.exists() {
            return true;
        }
        match std::fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            // SAFETY: signal 0 only checks for existence.
            Some(pid) => unsafe { libc::kill(pid, 0) != 0 && nix::Error::last() == nix::Error::ESRCH },
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::copier::Message;
    use super::super::{LogWriter, Stream};
    use super::*;

    fn write(config: &LogConfig, lines: &[(&str, Stream, i64)]) {
        let mut w = LogWriter::open(config).unwrap();
        for (l, s, t) in lines {
            w.log(&Message { stream: *s, line: l.as_bytes(), time: *t, partial: false }).unwrap();
        }
    }

    fn read(config: &LogConfig, opts: ReadOptions) -> Vec<String> {
        LogReader::open(config, opts)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                format!("{}:{}:{}", e.stream.as_str(), e.time, String::from_utf8_lossy(&e.line).trim_end())
            })
            .collect()
    }

    fn configs(dir: &Path) -> Vec<LogConfig> {
        let mut json = LogConfig::json_file(dir.join("j/c-json.log"));
        json.max_size = Some(200);
        json.max_file = 4;
        let mut local = LogConfig::local(dir.join("l/c-local.log"));
        local.max_size = Some(70);
        local.max_file = 4;
        vec![json, local]
    }

    fn lines(n: usize) -> Vec<(String, Stream, i64)> {
        (0..n).map(|i| (format!("line {i}"), if i % 3 == 2 { Stream::Stderr } else { Stream::Stdout }, 1000 + i as i64)).collect()
    }

    #[test]
    fn filters_over_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        for config in configs(dir.path()) {
            let all = lines(12);
            let borrowed: Vec<(&str, Stream, i64)> = all.iter().map(|(l, s, t)| (l.as_str(), *s, *t)).collect();
            write(&config, &borrowed);
            assert!(rotated_name(&config.path, 1).exists(), "{:?} rotated", config.driver);
            let got = read(&config, ReadOptions::default());
            let want: Vec<String> = all.iter().map(|(l, s, t)| format!("{}:{t}:{l}", s.as_str())).collect();
            // max-file 4 keeps the newest entries only; what is kept is in order.
            assert!(!got.is_empty() && want.ends_with(&got), "{:?}: {got:?}", config.driver);
            let kept = got.len();

            // tail counts every stream, then the stream filter applies.
            let got = read(&config, ReadOptions { tail: Some(3), stdout: false, ..ReadOptions::default() });
            assert_eq!(got, vec!["stderr:1011:line 11"], "{:?}", config.driver);
            let got = read(&config, ReadOptions { tail: Some(5), ..ReadOptions::default() });
            assert_eq!(got, want[7..], "{:?}", config.driver);
            let got = read(&config, ReadOptions { tail: Some(kept + 10), ..ReadOptions::default() });
            assert_eq!(got.len(), kept);
            assert!(read(&config, ReadOptions { tail: Some(0), ..ReadOptions::default() }).is_empty());

            let got = read(&config, ReadOptions { since: Some(1009), until: Some(1010), ..ReadOptions::default() });
            assert_eq!(got, want[9..11], "{:?}", config.driver);
            let got = read(&config, ReadOptions { since: Some(1010), tail: Some(4), stderr: false, ..ReadOptions::default() });
            assert_eq!(got, vec!["stdout:1010:line 10"], "{:?}", config.driver);
        }
    }

    #[test]
    fn follow_goes_across_rotation_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        for config in configs(dir.path()) {
            write(&config, &[("before", Stream::Stdout, 1)]);
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let s2 = stop.clone();
            let mut r = LogReader::open(&config, ReadOptions { follow: true, tail: Some(1), ..ReadOptions::default() })
                .unwrap()
                .with_stop(move || s2.load(std::sync::atomic::Ordering::SeqCst));
            r.poll_interval = Duration::from_millis(20);
            let cfg = config.clone();
            let writer = std::thread::spawn(move || {
                let mut w = LogWriter::open(&cfg).unwrap();
                for i in 0..20 {
                    let l = format!("after {i}");
                    w.log(&Message { stream: Stream::Stdout, line: l.as_bytes(), time: 10 + i, partial: false }).unwrap();
                    std::thread::sleep(Duration::from_millis(5));
                }
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            let got: Vec<String> = r.by_ref().map(|e| String::from_utf8(e.unwrap().line).unwrap()).collect();
            writer.join().unwrap();
            let mut want = vec!["before\n".to_owned()];
            want.extend((0..20).map(|i| format!("after {i}\n")));
            assert_eq!(got, want, "{:?}", config.driver);
        }
    }

    #[test]
    fn follow_reads_every_file_when_the_log_rotated_more_than_once_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        for mut config in configs(dir.path()) {
            config.max_file = 100;
            let mut w = LogWriter::open(&config).unwrap();
            let mut log = |l: &str, t: i64| w.log(&Message { stream: Stream::Stdout, line: l.as_bytes(), time: t, partial: false }).unwrap();
            log("first", 1);
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let s2 = stop.clone();
            let mut r = LogReader::open(&config, ReadOptions { follow: true, ..ReadOptions::default() })
                .unwrap()
                .with_stop(move || s2.load(std::sync::atomic::Ordering::SeqCst));
            r.poll_interval = Duration::from_millis(10);
            assert_eq!(r.next().unwrap().unwrap().line, b"first\n");
            // The reader sits at the end of the current file; the log
            // rotates several times before it looks again.
            for i in 0..30 {
                log(&format!("n{i}"), 10 + i);
            }
            assert!(rotated_name(&config.path, 3).exists(), "{:?} rotated", config.driver);
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            let got: Vec<String> = r.map(|e| String::from_utf8(e.unwrap().line).unwrap()).collect();
            let want: Vec<String> = (0..30).map(|i| format!("n{i}\n")).collect();
            assert_eq!(got, want, "{:?}", config.driver);
        }
    }

    #[test]
    fn follow_waits_for_a_log_not_created_yet() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig::json_file(dir.path().join("late.log"));
        let mut r = LogReader::open(&config, ReadOptions { follow: true, ..ReadOptions::default() }).unwrap();
        r.poll_interval = Duration::from_millis(10);
        let mut r = r.with_stop({
            let p = config.path.clone();
            move || p.exists()
        });
        write(&config, &[("x", Stream::Stdout, 5)]);
        let got: Vec<LogEntry> = r.by_ref().map(Result::unwrap).collect();
        assert_eq!(got.len(), 1);
        assert!(matches!(LogReader::open(&LogConfig::none(), ReadOptions::default()), Err(LogError::NotReadable { .. })));
    }
}
