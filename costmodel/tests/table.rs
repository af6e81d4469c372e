//! Cost tables against the concrete path: every table query equals pricing the selected subnet.

use nasc_costmodel::report::cost;
use nasc_costmodel::table::CostTable;
use nasc_costmodel::Model;
use nasc_ir::{spaces, Config};
use rand::{Rng, SeedableRng};

pub fn config_vec(space: &dyn spaces::SearchSpace, cfg: &Config) -> Vec<usize> {
    space.supernet().params().iter().map(|p| cfg.choices[&p.name]).collect()
}

#[test]
fn table_queries_equal_the_concrete_path_on_every_space() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for target in nasc_targets::names() {
        let model = Model::new(nasc_targets::lookup(target).unwrap()).unwrap();
        for name in spaces::NAMES {
            let space = spaces::lookup(name).unwrap();
            let t0 = std::time::Instant::now();
            let table = CostTable::build(name, space.supernet(), &model).unwrap();
            eprintln!(
                "{name} on {target}: {} groups, max scope {}, built in {:.2} s",
                table.groups.len(),
                table.max_scope(),
                t0.elapsed().as_secs_f64()
            );
            for _ in 0..4 {
                let cfg = space.sample(&mut rng);
                let v = config_vec(space.as_ref(), &cfg);
                let sub = space.subnet_of(&cfg).unwrap();
                let r = cost(&sub, &model).unwrap();
                let q = table.cost(&v);
                assert!(
                    (q.latency_ms - r.latency_ms).abs() <= 1e-9 * r.latency_ms,
                    "{name}: {} vs {}",
                    q.latency_ms,
                    r.latency_ms
                );
                assert!((q.energy_mj - r.energy_mj).abs() <= 1e-9 * r.energy_mj, "{name}: energy");
                for e in &r.exits {
                    let exit = (e.index < table.exits.len()).then_some(e.index);
                    let d = table.cost_dynamic(&v, exit, None);
                    assert!((d.latency_ms - e.latency_ms).abs() <= 1e-9 * e.latency_ms, "{name} exit {}", e.name);
                }
                for (k, gate) in r.gates.iter().enumerate() {
                    let mut open = vec![true; table.gates.len()];
                    open[k] = false;
                    let d = table.cost_dynamic(&v, None, Some(&open));
                    assert!(
                        (d.latency_ms - gate.latency_without_ms).abs() <= 1e-9 * d.latency_ms,
                        "{name} {}",
                        gate.name
                    );
                }
                let _ = rng.gen::<u8>();
            }
            let back = CostTable::from_json(&table.to_json()).unwrap();
            let v = vec![0; table.params.len()];
            assert_eq!(back.cost(&v), table.cost(&v));
        }
    }
}

#[test]
fn tables_are_thread_safe_and_batch_queries_equal_single_ones() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CostTable>();
    let model = Model::new(nasc_targets::lookup("cortex-a72").unwrap()).unwrap();
    let space = spaces::lookup("fbnet:cifar100").unwrap();
    let table = std::sync::Arc::new(CostTable::build("fbnet:cifar100", space.supernet(), &model).unwrap());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let configs: Vec<Vec<usize>> =
        (0..500).map(|_| table.options.iter().map(|o| rng.gen_range(0..o.len())).collect()).collect();
    let batch = table.cost_batch(&configs);
    let threads: Vec<_> = (0..4)
        .map(|k| {
            let (t, c) = (table.clone(), configs.clone());
            std::thread::spawn(move || c.iter().skip(k).step_by(4).map(|x| (x.clone(), t.cost(x))).collect::<Vec<_>>())
        })
        .collect();
    for h in threads {
        for (c, p) in h.join().unwrap() {
            let i = configs.iter().position(|x| *x == c).unwrap();
            assert_eq!(batch[i], p);
        }
    }
}

#[test]
fn a_fixed_energy_per_inference_is_paid_once_on_every_path() {
    // A profile's fixed energy per inference (`Scaling::fixed_energy_j`): the concrete path adds
    // it once to the network, to every early exit and with every gate closed, and the table
    // answers the same.
    use nasc_costmodel::analytic::{term, Scaling};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for (name, target) in
        [("fbnet:cifar100", "eyeriss"), ("ee-mbv2:cifar10", "cortex-a72"), ("skipnet-resnet:cifar10", "jetson-tx2")]
    {
        let space = spaces::lookup(name).unwrap();
        let bare = Model::new(nasc_targets::lookup(target).unwrap()).unwrap();
        let mut fixed = bare.clone();
        fixed.scaling = Some(Scaling { latency: [1.0; term::N], energy: 1.0, static_power: 1.0, fixed_energy_j: 2e-3 });
        let table = CostTable::build(name, space.supernet(), &fixed).unwrap();
        for _ in 0..3 {
            let cfg = space.sample(&mut rng);
            let sub = space.subnet_of(&cfg).unwrap();
            let (r0, r) = (cost(&sub, &bare).unwrap(), cost(&sub, &fixed).unwrap());
            assert!(
                (r.energy_mj - r0.energy_mj - 2.0).abs() < 1e-9,
                "{name}: {} against {}",
                r.energy_mj,
                r0.energy_mj
            );
            assert!((r.latency_ms - r0.latency_ms).abs() < 1e-12, "{name}: latency moved");
            for (e, e0) in r.exits.iter().zip(&r0.exits) {
                assert!((e.energy_mj - e0.energy_mj - 2.0).abs() < 1e-9, "{name} exit {}", e.name);
            }
            for (g, g0) in r.gates.iter().zip(&r0.gates) {
                assert!((g.energy_without_mj - g0.energy_without_mj - 2.0).abs() < 1e-9, "{name} {}", g.name);
            }
            let q = table.cost(&config_vec(space.as_ref(), &cfg));
            assert!(
                (q.energy_mj - r.energy_mj).abs() <= 1e-9 * r.energy_mj,
                "{name}: table {} against {}",
                q.energy_mj,
                r.energy_mj
            );
        }
    }
}
