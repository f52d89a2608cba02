//! Samples collected by every benchmark, keyed by metric and runtime.

use crate::stats::{summarize, Summary};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default)]
pub struct Series {
    pub samples: Vec<f64>,
    pub failures: usize,
    pub first_error: Option<String>,
}

impl Series {
    pub fn summary(&self) -> Option<Summary> {
        summarize(&self.samples)
    }
}

#[derive(Default)]
pub struct Results {
    series: BTreeMap<(String, String), Series>,
    /// Names of the runtime processes the memory sampler counted, per runtime.
    pub mem_processes: BTreeMap<String, BTreeSet<String>>,
}

impl Results {
    fn entry(&mut self, metric: &str, rt: &str) -> &mut Series {
        self.series
            .entry((metric.to_string(), rt.to_string()))
            .or_default()
    }

    pub fn ok(&mut self, metric: &str, rt: &str, v: f64) {
        self.entry(metric, rt).samples.push(v);
    }

    pub fn err(&mut self, metric: &str, rt: &str, msg: impl Into<String>) {
        let s = self.entry(metric, rt);
        s.failures += 1;
        if s.first_error.is_none() {
            s.first_error = Some(msg.into());
        }
    }

    pub fn get(&self, metric: &str, rt: &str) -> Option<&Series> {
        self.series.get(&(metric.to_string(), rt.to_string()))
    }

    pub fn median(&self, metric: &str, rt: &str) -> Option<f64> {
        self.get(metric, rt)?.summary().map(|s| s.median)
    }

    /// Every sample, for readers who want more than medians (written as results.json).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for ((metric, rt), s) in &self.series {
            let e = m
                .entry(metric.clone())
                .or_insert_with(|| serde_json::json!({}));
            e[rt] = serde_json::json!({
                "samples": s.samples,
                "failures": s.failures,
                "first_error": s.first_error,
            });
        }
        serde_json::Value::Object(m)
    }

    /// Failures recorded for `rt` across all metrics.
    pub fn failures_of(&self, rt: &str) -> Vec<(String, usize, String)> {
        self.series
            .iter()
            .filter(|((_, r), s)| r == rt && s.failures > 0)
            .map(|((m, _), s)| {
                (
                    m.clone(),
                    s.failures,
                    s.first_error.clone().unwrap_or_default(),
                )
            })
            .collect()
    }
}
