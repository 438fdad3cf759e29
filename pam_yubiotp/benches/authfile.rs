//! The central authfile scan of one login (issue 15): `keys_from_authfile`
//! on files of 10 to 100,000 users (one 12-character key each, the user
//! looked up on the last line), from the page cache: `scan/N` for a mapped
//! user (the user's lines are found by substring search), `unmapped/N` for
//! a user with no line ("no key" needs every line checked).
//! `benches/scale.sh` measures the whole login; this is the scan alone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pam_yubiotp::mapping::{KeyLookup, keys_from_authfile};

/// A modhex public id from a number (all distinct).
fn id(n: u32) -> String {
    const MH: &[u8; 16] = b"cbdefghijklnrtuv";
    let mut s = String::from("cccc");
    for shift in (0..8).rev() {
        s.push(char::from(MH[((n >> (4 * shift)) & 0xf) as usize]));
    }
    s
}

fn bench(c: &mut Criterion) {
    // Not under /tmp: the module refuses files under world-writable
    // directories.
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tempfile::Builder::new()
        .prefix("authfile-bench")
        .tempdir_in(base)
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut g = c.benchmark_group("authfile");
    for n in [10u32, 1_000, 10_000, 100_000] {
        let path = dir.path().join(format!("auth-{n}"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 1..n {
            writeln!(f, "user{i}:{}", id(i)).unwrap();
        }
        writeln!(f, "alice:{}", id(0)).unwrap();
        drop(f);
        let bytes = std::fs::metadata(&path).unwrap().len();
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function(format!("scan/{n}"), |b| {
            b.iter(|| {
                let r = keys_from_authfile(black_box("alice"), &path, 12);
                assert!(matches!(r, KeyLookup::Keys(_)));
            });
        });
        g.bench_function(format!("unmapped/{n}"), |b| {
            b.iter(|| {
                let r = keys_from_authfile(black_box("nobody"), &path, 12);
                assert!(matches!(r, KeyLookup::NoKeys(_)));
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
