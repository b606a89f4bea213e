//! Benchmark helper for `bench/image-unpack.sh`:
//!
//! - `gen DIR MB`: a deterministic tree of about MB megabytes, mostly small
//!   files, with symlinks and hardlinks, in nested directories;
//! - `unpack TAR DIR`: berth's layer unpack of TAR into DIR (made empty);
//! - `archive LAYER OUT`: a `docker save` archive holding LAYER as an image;
//! - `load ARCHIVE ROOT`: `load` of ARCHIVE into a store under ROOT.
//!
//! Each timed command prints its wall time in seconds on stdout.

use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::time::Instant;

use berth_image::digest::{Algorithm, HashReader};

fn usage() -> ! {
    eprintln!("usage: berth-image-bench gen DIR MB | unpack TAR DIR | archive LAYER OUT | load ARCHIVE ROOT");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["gen", dir, mb] => gen_tree(Path::new(dir), mb.parse().unwrap_or_else(|_| usage())),
        ["unpack", tar, dir] => {
            fs::create_dir_all(dir).expect("create target");
            let t = Instant::now();
            let f = fs::File::open(tar).expect("open tar");
            let u = berth_image::unpack::unpack(f, Path::new(dir)).expect("unpack");
            println!("{:.3}", t.elapsed().as_secs_f64());
            eprintln!("{} entries, {} bytes of content, diff id {}", u.entries, u.content_size, u.diff_id);
            Ok(())
        }
        ["archive", layer, out] => make_archive(Path::new(layer), Path::new(out)),
        ["load", archive, root] => {
            let store = berth_image::store::ImageStore::open(Path::new(root)).expect("open store");
            let t = Instant::now();
            let r = store.load(fs::File::open(archive).expect("open archive")).expect("load");
            println!("{:.3}", t.elapsed().as_secs_f64());
            eprintln!("{}", r.lines.join("\n"));
            Ok(())
        }
        _ => usage(),
    };
    if let Err(e) = result {
        eprintln!("berth-image-bench: {e}");
        std::process::exit(1);
    }
}

/// xorshift: the same tree on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn gen_tree(dir: &Path, mb: u64) -> std::io::Result<()> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let budget = mb << 20;
    let mut total = 0u64;
    let mut n = 0u64;
    let mut buf = vec![0u8; 4 << 20];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d).rotate_left(17) as u8 | 1;
    }
    while total < budget {
        let d = dir.join(format!("d{:02}/s{:02}/t{:02}", rng.below(24), rng.below(16), rng.below(8)));
        fs::create_dir_all(&d)?;
        // Sizes as a distribution root file system has: most files small.
        let size = match rng.below(100) {
            0..=69 => rng.below(8 << 10),
            70..=97 => (8 << 10) + rng.below(56 << 10),
            _ => (64 << 10) + rng.below(2 << 20),
        } as usize;
        let p = d.join(format!("f{n}"));
        let off = rng.below((buf.len() - size) as u64) as usize;
        fs::write(&p, &buf[off..off + size])?;
        if n.is_multiple_of(50) {
            std::os::unix::fs::symlink(format!("f{n}"), d.join(format!("l{n}")))?;
        }
        if n.is_multiple_of(200) {
            fs::hard_link(&p, d.join(format!("h{n}")))?;
        }
        total += size as u64;
        n += 1;
    }
    eprintln!("{n} files, {total} bytes");
    Ok(())
}

fn make_archive(layer: &Path, out: &Path) -> std::io::Result<()> {
    let (diff, size) = HashReader::new(fs::File::open(layer)?, Algorithm::Sha256).finish_draining()?;
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"]}},"created":"2024-01-01T00:00:00Z","history":[{{"created":"2024-01-01T00:00:00Z","created_by":"bench"}}],"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    );
    let id = berth_image::digest::Digest::sha256_of(config.as_bytes());
    let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 20, fs::File::create(out)?));
    let mut add = |p: &str, len: u64, r: &mut dyn Read| -> std::io::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_size(len);
        h.set_mode(0o644);
        b.append_data(&mut h, p, r)
    };
    add(&format!("blobs/sha256/{}", diff.hex()), size, &mut fs::File::open(layer)?)?;
    add(&format!("blobs/sha256/{}", id.hex()), config.len() as u64, &mut config.as_bytes())?;
    let manifest = format!(r#"[{{"Config":"blobs/sha256/{}","RepoTags":["bench:layer"],"Layers":["blobs/sha256/{}"]}}]"#, id.hex(), diff.hex());
    add("manifest.json", manifest.len() as u64, &mut manifest.as_bytes())?;
    b.into_inner()?.flush()
}
