//! Tuning aid: how selective routing and the pre-filter are on a file, and single-thread evaluation
//! speed. usage: prefilter_stats RULES EVENTS.jsonl
use std::time::Instant;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let t = Instant::now();
    let set = purplecov::sigma::RuleSet::load(&[args[1].clone().into()], &Default::default());
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let out = purplecov::telemetry::read::read_path(std::path::Path::new(&args[2]), 0);
    let read = t.elapsed().as_secs_f64();
    let (routed, admitted, matched) = if std::env::var_os("NOSTATS").is_some() {
        (0, 0, 0)
    } else {
        set.prefilter_stats(&out.events)
    };
    let n = out.events.len() as f64;
    println!(
        "events={n} routed/ev={:.1} admitted/ev={:.1} matched/ev={:.2}",
        routed as f64 / n,
        admitted as f64 / n,
        matched as f64 / n
    );
    let mut sc = set.scratch();
    let mut hits = Vec::new();
    let t = Instant::now();
    let mut total = 0;
    for ev in &out.events {
        set.matches(ev, &mut sc, &mut hits);
        total += hits.len();
    }
    let eval = t.elapsed().as_secs_f64();
    println!("load_s={load:.3} read_s={read:.3} eval_s={eval:.3} events_per_s={:.0} us_per_event={:.2} hits={total}", n / eval, eval * 1e6 / n);
    if std::env::var_os("COSTS").is_some() {
        for (r, ns) in set.rule_costs(&out.events).into_iter().take(15) {
            let info = &set.rules()[r];
            println!(
                "{:>8.1} ms  {}  {}",
                ns as f64 / 1e6,
                info.meta.id.clone().unwrap_or_default(),
                info.meta.path.display()
            );
        }
    }
}
