//! A realistic mix of LaunchDarkly export envelopes, for benchmarks: mostly flag
//! evaluations, then custom events, page views and clicks, with contexts in every form.
//! Deterministic, so that runs compare.

use serde_json::{Value, json};

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const FLAGS: [&str; 8] = [
    "checkout-flow",
    "new-pricing-page",
    "search-ranking-v2",
    "dark-mode",
    "onboarding-tour",
    "recommendations-widget",
    "payment-provider",
    "max-cart-items",
];

const PROVIDERS: [&str; 3] = ["stripe", "adyen", "braintree"];

fn context(rng: &mut Rng, user: u64) -> (&'static str, Value) {
    match rng.below(20) {
        0..=7 => ("contextKeys", json!({"user": format!("user-{user:06}")})),
        8..=14 => (
            "context",
            json!({"kind": "user", "key": format!("user-{user:06}"), "name": "Jo Example",
                   "email": format!("user{user}@example.com"), "country": "NZ"}),
        ),
        15..=17 => (
            "context",
            json!({"kind": "multi", "user": {"key": format!("user-{user:06}")},
                   "organization": {"key": format!("org-{:04}", user % 997), "name": "Acme"}}),
        ),
        18 => (
            "context",
            json!({"kind": "user", "key": format!("anon-{user:08x}"), "anonymous": true}),
        ),
        _ => ("userKey", json!(format!("user-{user:06}"))),
    }
}

/// `n` envelope bodies for one environment.
pub fn envelopes(n: usize, project: &str, environment: &str) -> Vec<String> {
    let mut rng = Rng(0x5EED);
    let start = 1_764_093_600_000_i64;
    (0..n)
        .map(|i| {
            let user = rng.below(50_000);
            let (context_field, context_value) = context(&mut rng, user);
            let created = start + i as i64 * 37;
            let id = format!("{:024x}", rng.next() as u128 * 31 + i as u128);
            let mut event = match rng.below(100) {
                0..=54 => {
                    let flag = FLAGS[rng.below(FLAGS.len() as u64) as usize];
                    let variation = rng.below(3);
                    let value = match flag {
                        "max-cart-items" => json!(10 + variation * 5),
                        "payment-provider" => json!(PROVIDERS[variation as usize]),
                        "recommendations-widget" => json!({"layout": "grid", "count": 4 + variation}),
                        _ => json!(variation == 1),
                    };
                    let reason = if variation == 0 {
                        "FALLTHROUGH"
                    } else {
                        "RULE_MATCH"
                    };
                    let mut e = json!({"kind": "feature", "key": flag, "value": value, "variation": variation,
                        "version": 10 + rng.below(90), "default": false, "reason": {"kind": reason}});
                    if rng.below(10) == 0 {
                        e["reason"]["inExperiment"] = json!(true);
                    }
                    e
                }
                55..=79 => {
                    let key = ["purchase", "add-to-cart", "signup", "search"][rng.below(4) as usize];
                    let mut e = json!({"kind": "custom", "key": key});
                    if rng.below(2) == 0 {
                        e["metricValue"] = json!(rng.below(20_000) as f64 / 100.0);
                    }
                    e["data"] = json!({"sku": format!("SKU-{}", rng.below(1000)), "qty": 1 + rng.below(3)});
                    e
                }
                80..=92 => json!({"kind": "pageview", "key": "new-pricing-page",
                    "url": format!("https://shop.example.com/products/{}", rng.below(500))}),
                _ => json!({"kind": "click", "key": "checkout-flow",
                    "url": "https://shop.example.com/cart", "selector": "button.checkout"}),
            };
            event["id"] = json!(id);
            event["creationDate"] = json!(created);
            event[context_field] = context_value;
            json!({"project": project, "environment": environment, "version": 1, "event": event}).to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_deterministic_and_varied() {
        let a = envelopes(2000, "p", "e");
        assert_eq!(a, envelopes(2000, "p", "e"));
        let kinds = |k: &str| {
            a.iter()
                .filter(|e| e.contains(&format!("\"kind\":\"{k}\"")))
                .count()
        };
        assert!(
            kinds("feature") > 900 && kinds("custom") > 300 && kinds("pageview") > 150 && kinds("click") > 80
        );
        let avg = a.iter().map(String::len).sum::<usize>() / a.len();
        assert!((250..700).contains(&avg), "average envelope {avg} bytes");
    }
}
