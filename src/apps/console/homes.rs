//! Which service's chart each endpoint's traffic is drawn in: the base path it is registered
//! under, remembered for a while after it left the registry so a provider that died still shows
//! in its service's chart as its traffic moves to the others.
//!
//! Guarantees (what the memory follows is the live tree, whatever the churn):
//! - Every endpoint registered now has its home, however many came and went before it.
//! - An endpoint gone from the registry keeps its home only while its line is on the chart: for
//!   [`CHART_WINDOW`] after it left, and only while the scraped traffic still names it; never
//!   more than [`MAX_GONE`] of them (the longest gone are forgotten first).
//! - The state's `homes` names only endpoints the traffic names: without `--scrape` it is
//!   empty, so the state's size follows the live tree alone.

use std::collections::BTreeMap;

use serde_json::Value;

use super::scrape::CHART_WINDOW;

/// The most endpoints gone from the registry whose home is remembered at once.
pub(super) const MAX_GONE: usize = 1000;

/// The homes of the endpoints registered now and of those gone within the chart's window.
#[derive(Debug, Default)]
pub(super) struct Homes {
    by_endpoint: BTreeMap<String, Home>,
}

/// Where one endpoint's traffic is charted.
#[derive(Debug)]
struct Home {
    /// The base path it was last seen under.
    base: String,
    /// When it was first seen gone from the registry (Unix ms); `None` while registered.
    gone_ms: Option<i64>,
}

impl Homes {
    /// Takes in the endpoints registered now (endpoint, base path), read at `now` (Unix ms),
    /// then forgets what the chart no longer needs (`traffic`: the scraper's last reading).
    pub(super) fn update(
        &mut self,
        live: impl IntoIterator<Item = (String, String)>,
        now: i64,
        traffic: &Value,
    ) {
        let live: BTreeMap<String, String> = live.into_iter().collect();
        for (endpoint, home) in &mut self.by_endpoint {
            if !live.contains_key(endpoint) && home.gone_ms.is_none() {
                home.gone_ms = Some(now);
            }
        }
        for (endpoint, base) in live {
            self.by_endpoint.insert(
                endpoint,
                Home {
                    base,
                    gone_ms: None,
                },
            );
        }
        self.forget(now, traffic);
    }

    /// Forgets the endpoints gone from the registry that the chart no longer draws: gone for
    /// longer than [`CHART_WINDOW`], or not in `traffic`; then the longest gone beyond
    /// [`MAX_GONE`].
    pub(super) fn forget(&mut self, now: i64, traffic: &Value) {
        let window = i64::try_from(CHART_WINDOW.as_millis()).unwrap_or(i64::MAX);
        let charted = |endpoint: &str| traffic["endpoints"].get(endpoint).is_some();
        self.by_endpoint
            .retain(|endpoint, home| match home.gone_ms {
                None => true,
                Some(gone) => now - gone < window && charted(endpoint),
            });
        let mut gone: Vec<(i64, String)> = self
            .by_endpoint
            .iter()
            .filter_map(|(endpoint, home)| Some((home.gone_ms?, endpoint.clone())))
            .collect();
        if gone.len() > MAX_GONE {
            gone.sort();
            for (_, endpoint) in &gone[..gone.len() - MAX_GONE] {
                self.by_endpoint.remove(endpoint);
            }
        }
    }

    /// `{endpoint: base path}` of the endpoints `traffic` names (the only ones a chart draws).
    pub(super) fn to_json(&self, traffic: &Value) -> Value {
        let Some(charted) = traffic["endpoints"].as_object() else {
            return Value::Object(serde_json::Map::new());
        };
        let homes = charted
            .keys()
            .filter_map(|endpoint| {
                let home = self.by_endpoint.get(endpoint)?;
                Some((endpoint.clone(), Value::from(home.base.as_str())))
            })
            .collect();
        Value::Object(homes)
    }

    /// How many endpoints have a home (registered or gone).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_endpoint.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoint(i: usize) -> String {
        format!("http://127.0.0.1:{}", 20_000 + i)
    }

    fn traffic_of(endpoints: &[String]) -> Value {
        let map: serde_json::Map<String, Value> = endpoints
            .iter()
            .map(|e| (e.clone(), json!({ "calls_per_s": 1.0, "history": [1.0] })))
            .collect();
        json!({ "endpoints": map })
    }

    #[test]
    fn endpoints_gone_and_not_charted_are_forgotten_at_once() {
        let mut homes = Homes::default();
        for i in 0..20_000 {
            homes.update([(endpoint(i), "/churn".to_owned())], i as i64, &Value::Null);
        }
        assert_eq!(homes.len(), 1, "only the one registered now");
        homes.update(
            [(endpoint(20_001), "/svc".to_owned())],
            20_001,
            &Value::Null,
        );
        assert_eq!(homes.to_json(&Value::Null), json!({}), "nothing charted");
        let traffic = traffic_of(&[endpoint(20_001)]);
        assert_eq!(
            homes.to_json(&traffic),
            json!({ endpoint(20_001): "/svc" }),
            "a newcomer after any churn has its home"
        );
    }

    #[test]
    fn a_charted_endpoint_gone_keeps_its_home_for_the_chart_window_only() {
        let mut homes = Homes::default();
        let traffic = traffic_of(&[endpoint(1), endpoint(2)]);
        homes.update(
            [
                (endpoint(1), "/a".to_owned()),
                (endpoint(2), "/a".to_owned()),
            ],
            0,
            &traffic,
        );
        homes.update([(endpoint(2), "/a".to_owned())], 1_000, &traffic);
        assert_eq!(homes.to_json(&traffic)[endpoint(1)], "/a", "still charted");
        let window = CHART_WINDOW.as_millis() as i64;
        homes.forget(1_000 + window - 1, &traffic);
        assert_eq!(homes.to_json(&traffic)[endpoint(1)], "/a");
        homes.forget(1_000 + window, &traffic);
        assert!(homes.to_json(&traffic).get(endpoint(1)).is_none());
        assert_eq!(homes.to_json(&traffic)[endpoint(2)], "/a", "live: kept");
    }

    #[test]
    fn at_most_max_gone_gone_endpoints_are_remembered() {
        let mut homes = Homes::default();
        let all: Vec<String> = (0..MAX_GONE + 50).map(endpoint).collect();
        let traffic = traffic_of(&all);
        for (i, e) in all.iter().enumerate() {
            homes.update([(e.clone(), "/a".to_owned())], i as i64, &traffic);
        }
        homes.update([], all.len() as i64, &traffic);
        assert_eq!(homes.len(), MAX_GONE);
        let shown = homes.to_json(&traffic);
        assert!(shown.get(&all[0]).is_none(), "the longest gone go first");
        assert_eq!(shown[all.last().unwrap()], "/a");
    }
}
