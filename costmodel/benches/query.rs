//! Query speed of cost tables against baselines in the same run:
//! - concrete `fbnet` subnet cost from the table vs a straightforward recomputation through the
//!   cost model (select the subnet, fuse, price every kernel);
//! - expected cost + full gradient of the `fbnet` supernet (22 × 9) and of `ofa-mbv3` (pairwise
//!   terms) from the table;
//! - a NumPy lookup-table sum invoked the way a Python framework would (`benches/numpy_lut.py`,
//!   fed this very table), when `python3` with NumPy is available.
//!
//! Run: `cargo bench -p nasc-costmodel --bench query`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use nasc_costmodel::expect::{Expected, Query};
use nasc_costmodel::table::CostTable;
use nasc_costmodel::{cost, Model};
use nasc_ir::spaces;
use rand::{Rng, SeedableRng};

fn table(space: &str) -> (CostTable, Box<dyn spaces::SearchSpace>, Model) {
    let model = Model::new(nasc_targets::lookup("cortex-a72").unwrap()).unwrap();
    let s = spaces::lookup(space).unwrap();
    let t = CostTable::build(space, s.supernet(), &model).unwrap();
    (t, s, model)
}

fn bench(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let (fb, fb_space, model) = table("fbnet:cifar100");
    let configs: Vec<Vec<usize>> =
        (0..1024).map(|_| fb.options.iter().map(|o| rng.gen_range(0..o.len())).collect()).collect();

    let mut g = c.benchmark_group("fbnet concrete subnet latency");
    g.measurement_time(Duration::from_secs(3));
    let mut i = 0;
    g.bench_function("cost table", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(fb.latency(black_box(&configs[i])))
        })
    });
    g.bench_function("recompute through the cost model (baseline)", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            let cfg =
                nasc_ir::Config { choices: fb.params.iter().zip(&configs[i]).map(|(p, &o)| (p.clone(), o)).collect() };
            let sub = fb_space.supernet().select(&cfg).unwrap();
            black_box(cost(&sub, &model).unwrap().latency_ms)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("expected cost + full gradient");
    g.measurement_time(Duration::from_secs(3));
    let q = Query::softmax((0..fb.n_logits()).map(|_| rng.gen_range(-1.0..1.0)).collect());
    let mut out = Expected::default();
    g.bench_function("fbnet 22x9", |b| b.iter(|| fb.expected_into(black_box(&q), &mut out).unwrap()));
    let (ofa, _, _) = table("ofa-mbv3");
    let q2 = Query::softmax((0..ofa.n_logits()).map(|_| rng.gen_range(-1.0..1.0)).collect());
    g.bench_function("ofa-mbv3 (pairwise terms)", |b| b.iter(|| ofa.expected_into(black_box(&q2), &mut out).unwrap()));
    g.finish();

    // The NumPy baseline, on the same table.
    let dir = std::env::temp_dir().join(format!("nasc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fbnet.json");
    std::fs::write(&path, fb.to_json()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../benches/numpy_lut.py");
    match std::process::Command::new("python3").arg(script).arg(&path).output() {
        Ok(o) if o.status.success() => print!("{}", String::from_utf8_lossy(&o.stdout)),
        Ok(o) => {
            println!("numpy baseline skipped: {}", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or(""))
        }
        Err(e) => println!("numpy baseline skipped: python3 not runnable ({e})"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
