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
