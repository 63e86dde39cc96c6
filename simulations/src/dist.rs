//! Random distributions for workloads, written over `rand`'s uniform `f64`
//! (each is a few lines; `rand_distr` would add a dependency for six
//! formulas).

use crate::error::ConfigError;
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

/// A distribution of non-negative reals, as written in a workload config
/// (`{ kind = "exponential", mean = 10.0 }`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// Always `value`.
    Constant {
        /// The value.
        value: f64,
    },
    /// Uniform on `[min, max)`.
    Uniform {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// Exponential with the given mean (rate 1/mean).
    Exponential {
        /// The mean.
        mean: f64,
    },
    /// Normal, truncated at zero (negative draws become 0).
    Normal {
        /// The mean.
        mean: f64,
        /// The standard deviation.
        std_dev: f64,
    },
    /// Log-normal: `exp(N(mu, sigma))`.
    Lognormal {
        /// Mean of the underlying normal.
        mu: f64,
        /// Standard deviation of the underlying normal.
        sigma: f64,
    },
    /// An empirical distribution given by its CDF: points `[value, p]` with
    /// both non-decreasing and the last `p` equal to 1; values between
    /// points are interpolated linearly (the released Omega simulator adds
    /// the lower bound here instead of subtracting it; we do not).
    Empirical {
        /// `(value, cumulative probability)` pairs.
        cdf: Vec<(f64, f64)>,
    },
}

impl Distribution {
    /// Checks the parameters; `key` names the config entry in the error.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let bad = |why: &str| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                reason: why.to_owned(),
            })
        };
        let finite_nonneg = |x: f64| x.is_finite() && x >= 0.0;
        match self {
            Self::Constant { value } if !finite_nonneg(*value) => bad("value must be finite and >= 0"),
            Self::Uniform { min, max } if !(finite_nonneg(*min) && max.is_finite() && min <= max) => {
                bad("need 0 <= min <= max")
            }
            Self::Exponential { mean } if !(mean.is_finite() && *mean > 0.0) => bad("mean must be > 0"),
            Self::Normal { mean, std_dev } if !(mean.is_finite() && std_dev.is_finite() && *std_dev >= 0.0) => {
                bad("need a finite mean and std_dev >= 0")
            }
            Self::Lognormal { mu, sigma } if !(mu.is_finite() && sigma.is_finite() && *sigma >= 0.0) => {
                bad("need a finite mu and sigma >= 0")
            }
            Self::Empirical { cdf } => {
                if cdf.is_empty() {
                    return bad("the cdf needs at least one point");
                }
                let monotone = cdf.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1);
                let in_range = cdf.iter().all(|(v, p)| finite_nonneg(*v) && (0.0..=1.0).contains(p));
                let ends_at_one = cdf.last().is_some_and(|(_, p)| (*p - 1.0).abs() < 1e-9);
                if monotone && in_range && ends_at_one {
                    Ok(())
                } else {
                    bad("cdf points must be non-decreasing in value and p, values >= 0, p in [0, 1], last p = 1")
                }
            }
            _ => Ok(()),
        }
    }

    /// One draw.
    pub fn sample(&self, rng: &mut StdRng) -> f64 {
        match self {
            Self::Constant { value } => *value,
            Self::Uniform { min, max } => min + (max - min) * unit(rng),
            // 1 - u is in (0, 1], so the logarithm is finite.
            Self::Exponential { mean } => -mean * (1.0 - unit(rng)).ln(),
            Self::Normal { mean, std_dev } => (mean + std_dev * standard_normal(rng)).max(0.0),
            Self::Lognormal { mu, sigma } => (mu + sigma * standard_normal(rng)).exp(),
            Self::Empirical { cdf } => empirical(cdf, unit(rng)),
        }
    }

    /// The distribution's mean (for analytic checks and summaries).
    pub fn mean(&self) -> f64 {
        match self {
            Self::Constant { value } => *value,
            Self::Uniform { min, max } => (min + max) / 2.0,
            Self::Exponential { mean } => *mean,
            // Truncation at zero is ignored: configs keep mean >> std_dev.
            Self::Normal { mean, .. } => *mean,
            Self::Lognormal { mu, sigma } => (mu + sigma * sigma / 2.0).exp(),
            Self::Empirical { cdf } => {
                let mut mean = 0.0;
                let mut prev = (0.0, 0.0);
                for (i, &(v, p)) in cdf.iter().enumerate() {
                    // The first point's mass sits on its value; later masses spread
                    // uniformly between consecutive values.
                    let mid = if i == 0 { v } else { (prev.0 + v) / 2.0 };
                    mean += (p - prev.1) * mid;
                    prev = (v, p);
                }
                mean
            }
        }
    }
}

/// Uniform on `[0, 1)`.
fn unit(rng: &mut StdRng) -> f64 {
    rng.random::<f64>()
}

/// Box–Muller; one of the pair is thrown away to keep draws independent of
/// call history.
fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1 = 1.0 - unit(rng);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Inverse CDF by linear interpolation between points.
fn empirical(cdf: &[(f64, f64)], u: f64) -> f64 {
    let i = cdf.partition_point(|&(_, p)| p < u);
    match (i.checked_sub(1).and_then(|j| cdf.get(j)), cdf.get(i)) {
        (_, None) => cdf.last().map_or(0.0, |&(v, _)| v),
        (None, Some(&(v, _))) => v,
        (Some(&(v0, p0)), Some(&(v1, p1))) => {
            if p1 - p0 <= 0.0 {
                v1
            } else {
                v0 + (v1 - v0) * (u - p0) / (p1 - p0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn stats(d: &Distribution) -> (f64, f64, Vec<f64>) {
        let mut rng = StdRng::seed_from_u64(42);
        let n = 200_000;
        let mut xs: Vec<f64> = (0..n).map(|_| d.sample(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        xs.sort_by(f64::total_cmp);
        (mean, var.sqrt(), xs)
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-9)
    }

    #[test]
    fn constant_is_always_its_value() {
        let (mean, sd, _) = stats(&Distribution::Constant { value: 3.5 });
        assert_eq!(mean, 3.5);
        assert_eq!(sd, 0.0);
    }

    #[test]
    fn uniform_has_the_mean_and_bounds() {
        let d = Distribution::Uniform { min: 2.0, max: 6.0 };
        let (mean, sd, xs) = stats(&d);
        assert!(close(mean, 4.0, 0.01), "{mean}");
        assert!(close(sd, 4.0 / 12f64.sqrt(), 0.02), "{sd}");
        assert!(xs[0] >= 2.0 && xs[xs.len() - 1] < 6.0);
    }

    #[test]
    fn exponential_has_mean_equal_to_std_dev() {
        let d = Distribution::Exponential { mean: 10.0 };
        let (mean, sd, xs) = stats(&d);
        assert!(close(mean, 10.0, 0.02), "{mean}");
        assert!(close(sd, 10.0, 0.03), "{sd}");
        // Median of an exponential is mean × ln 2.
        assert!(close(xs[xs.len() / 2], 10.0 * std::f64::consts::LN_2, 0.03));
    }

    #[test]
    fn normal_has_mean_and_std_dev() {
        let d = Distribution::Normal {
            mean: 100.0,
            std_dev: 15.0,
        };
        let (mean, sd, xs) = stats(&d);
        assert!(close(mean, 100.0, 0.005), "{mean}");
        assert!(close(sd, 15.0, 0.02), "{sd}");
        // About 68% within one standard deviation.
        let within = xs.iter().filter(|x| (**x - 100.0).abs() < 15.0).count() as f64 / xs.len() as f64;
        assert!(close(within, 0.6827, 0.02), "{within}");
    }

    #[test]
    fn lognormal_has_the_analytic_mean_and_median() {
        let d = Distribution::Lognormal { mu: 1.0, sigma: 0.5 };
        let (mean, _, xs) = stats(&d);
        assert!(close(mean, d.mean(), 0.01), "{mean} vs {}", d.mean());
        assert!(close(xs[xs.len() / 2], 1f64.exp(), 0.02));
    }

    #[test]
    fn empirical_interpolates_between_cdf_points() {
        let d = Distribution::Empirical {
            cdf: vec![(10.0, 0.0), (20.0, 0.5), (100.0, 1.0)],
        };
        d.validate("d").expect("valid");
        let (mean, _, xs) = stats(&d);
        // Half the mass uniform on [10, 20], half on [20, 100]: mean 15/2 + 60/2.
        assert!(close(mean, 37.5, 0.01), "{mean}");
        assert!(close(d.mean(), 37.5, 1e-9));
        assert!(close(xs[xs.len() / 2], 20.0, 0.01));
        assert!(xs[0] >= 10.0 && xs[xs.len() - 1] <= 100.0);
    }

    #[test]
    fn invalid_parameters_name_the_key() {
        let err = Distribution::Exponential { mean: -1.0 }.validate("framework.batch.duration");
        assert!(matches!(err, Err(ConfigError::Invalid { ref key, .. }) if key == "framework.batch.duration"));
        let cdf = Distribution::Empirical {
            cdf: vec![(5.0, 0.5), (1.0, 1.0)],
        };
        assert!(cdf.validate("x").is_err());
    }

    #[test]
    fn parses_from_toml() {
        #[derive(Deserialize)]
        struct W {
            d: Distribution,
        }
        let w: W = toml::from_str("d = { kind = \"normal\", mean = 1.0, std_dev = 0.5 }").expect("parses");
        assert_eq!(
            w.d,
            Distribution::Normal {
                mean: 1.0,
                std_dev: 0.5
            }
        );
    }
}
