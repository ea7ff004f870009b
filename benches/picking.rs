//! Picking, per strategy, with 3 and 1,000 endpoints: no I/O (endpoints dial lazily and are
//! never called). Two views:
//! - `pick`: `EndpointSet::pick`, what every request through a balanced channel pays (the
//!   strategy among healthy weighted endpoints, ejection checks included);
//! - `strategy`: the strategy's `Pick::pick` alone, every endpoint usable: the walk over the
//!   list that a custom rule gets and the built-in ones fall back to after a few draws found
//!   nothing usable (the endpoint set normally calls `Pick::pick_candidate`, which draws from
//!   tables made at each update).
//!
//! `cargo bench --bench picking --features testing` (the live list filled by hand is not part of
//! the API: the `testing` feature opens it to this benchmark); medians are in
//! `target/criterion/<group>/<strategy>/<n>/new/estimates.json`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use zoorpc::consumer::balance::{First, LeastLoaded, Random, RoundRobin};
use zoorpc::consumer::testing::EndpointSet;
use zoorpc::consumer::{EjectionPolicy, Endpoint, Pick, Strategy};
use zoorpc::registry::ProviderNode;

const SIZES: [usize; 2] = [3, 1000];

fn strategies() -> [(&'static str, Strategy, Arc<dyn Pick>); 4] {
    [
        ("random", Strategy::Random, Arc::new(Random::default())),
        (
            "round-robin",
            Strategy::RoundRobin,
            Arc::new(RoundRobin::default()),
        ),
        (
            "least-loaded",
            Strategy::LeastLoaded,
            Arc::new(LeastLoaded::default()),
        ),
        ("first", Strategy::First, Arc::new(First)),
    ]
}

fn nodes(n: usize) -> Vec<ProviderNode> {
    (0..n)
        .map(|i| ProviderNode {
            name: format!("provider{i:010}").into(),
            url: format!("http://10.0.{}.{}:9000", i / 256, i % 256)
                .parse()
                .expect("a valid URL"),
            created: i as i64 + 1,
        })
        .collect()
}

fn picking(c: &mut Criterion) {
    // Endpoints make their (lazy) tonic channels inside a runtime.
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let _guard = runtime.enter();

    let mut group = c.benchmark_group("pick");
    for (name, strategy, _) in strategies() {
        for n in SIZES {
            let set = EndpointSet::with_policy(&strategy, EjectionPolicy::default());
            set.update(&nodes(n));
            group.bench_with_input(BenchmarkId::new(name, n), &set, |b, set| {
                b.iter(|| black_box(set.pick(black_box(&[]))))
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("strategy");
    for (name, _, pick) in strategies() {
        for n in SIZES {
            let set = EndpointSet::new();
            set.update(&nodes(n));
            let endpoints: Arc<Vec<Arc<Endpoint>>> = set.snapshot();
            let usable = |_: &Endpoint| true;
            group.bench_with_input(BenchmarkId::new(name, n), &endpoints, |b, endpoints| {
                b.iter(|| black_box(pick.pick(black_box(endpoints), &usable)))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = picking
}
criterion_main!(benches);
