//! Observables of a sampled state: energy, spin correlations, structure factor,
//! magnetization and Pauli strings, with Monte Carlo error bars.
//!
//! Everything is in the model's units (DESIGN §3): Pauli units give `⟨Z_i Z_j⟩`, spin units
//! `⟨S^z_i S^z_j⟩ = ⟨Z_i Z_j⟩/4`; `S(q) = (1/N) Σ_ij e^{iq·(r_j − r_i)} C_ij` of the same
//! correlation `C`; Pauli strings carry ½ per letter in spin units. Operators with X or Y are
//! measured in the sampled (possibly Marshall-rotated) basis through
//! [`Hamiltonian::observable`], so the numbers are those of the physical state.
//!
//! Local values `O_loc(σ) = Σ_σ' ⟨σ|O|σ'⟩ ψ(σ')/ψ(σ)` use the operator's connected elements and
//! the ansatz's cached ratios (never a full re-evaluation).

use crate::ansatz::Ansatz;
use crate::dist::Communicator;
use crate::error::{check_count, shorten, Invalid};
use crate::io::{Estimate, ResultsRecord};
use crate::lattice::Lattice;
use crate::operator::{check_pauli_string, Hamiltonian, PauliSum, Row};
use crate::sampler::{MetropolisSampler, SampleSet};
use crate::stats::{statistics, Stats};
use ndarray::Array2;
use num_complex::Complex64;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// One `[[observables]]` entry: a Pauli string `Π ops[k]_{sites[k]}` measured by name.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ObservableSpec {
    pub name: String,
    pub ops: String,
    pub sites: Vec<usize>,
}

/// Checks names (non-empty, unique, letters, digits, `_ - .`) and strings against the lattice.
pub fn validate_observables(list: &[ObservableSpec], n_sites: usize) -> Result<(), Invalid> {
    check_count("observables", list.len(), 0, 1024)?;
    for (k, o) in list.iter().enumerate() {
        let key = format!("observables[{k}]");
        let name_ok = !o.name.is_empty()
            && o.name.len() <= 64
            && o.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !name_ok {
            return Err(Invalid::new(
                format!("{key}.name"),
                format!(
                    "\"{}\": expected 1 to 64 letters, digits, '_', '-' or '.'",
                    shorten(&o.name)
                ),
            ));
        }
        if let Some(first) = list[..k].iter().position(|p| p.name == o.name) {
            return Err(Invalid::new(
                format!("{key}.name"),
                format!("\"{}\" is also the name of observables[{first}]", o.name),
            ));
        }
        check_pauli_string(&key, &o.ops, &o.sites, n_sites)?;
    }
    Ok(())
}

/// Parses `NAME:OPS:SITES` (`zz01:ZZ:0,1`) from the command line.
pub fn parse_observable(text: &str) -> Result<ObservableSpec, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let [name, ops, sites] = parts[..] else {
        return Err(format!(
            "\"{}\": expected NAME:OPS:SITES, e.g. zz01:ZZ:0,1",
            shorten(text)
        ));
    };
    let sites = sites
        .split(',')
        .map(|s| s.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            format!(
                "\"{}\": sites must be integers separated by commas",
                shorten(text)
            )
        })?;
    Ok(ObservableSpec {
        name: name.to_string(),
        ops: ops.to_string(),
        sites,
    })
}

/// How the samples' chains are laid out over processes.
#[derive(Clone, Copy, Debug)]
pub struct ChainLayout {
    /// Chains of this process and the global index of the first.
    pub local: usize,
    pub first: usize,
    /// Chains of all processes.
    pub total: usize,
}

/// `O_loc(σ_s) = Σ_σ' O_{σσ'} ψ(σ')/ψ(σ)` of every sample, in parallel (one scratch row per
/// task). With `sz_sector` the state is ψ restricted to the samples' S^z sector (the chains
/// never leave it): terms whose flips change S^z (`Σ_{i∈F} σ_i ≠ 0`) have ψ(σ') = 0 and are
/// dropped — they matter for observables that do not conserve S^z, such as `X_0 X_1`.
pub fn local_values<A: Ansatz>(
    op: &PauliSum,
    ansatz: &A,
    samples: &SampleSet<A::Cache>,
    sz_sector: bool,
    out: &mut [Complex64],
) {
    out.par_iter_mut()
        .enumerate()
        .for_each_init(Row::default, |row, (s, e)| {
            let sigma = samples.configuration(s);
            let cache = &samples.caches[s];
            op.row(sigma, row);
            let mut sum = row.diagonal;
            for (&g, &element) in row.groups.iter().zip(&row.elements) {
                let flips = op.flipped_sites(g);
                if sz_sector && flips.iter().map(|&i| i32::from(sigma[i])).sum::<i32>() != 0 {
                    continue;
                }
                sum += element * ansatz.ratio(sigma, cache, flips);
            }
            *e = sum;
        });
}

/// Statistics of per-sample values over the chain layout.
pub fn chain_statistics(
    values: &[Complex64],
    layout: ChainLayout,
    comm: &dyn Communicator,
) -> Stats {
    statistics(values, layout.local, layout.first, layout.total, &|d| {
        comm.sum_f64(d)
    })
}

fn estimate(s: &Stats) -> Estimate {
    Estimate {
        mean: s.mean.re,
        error: s.error,
    }
}

/// What a measurement needs besides the state and its samples.
pub struct Setup<'a> {
    pub layout: ChainLayout,
    pub hamiltonian: &'a Hamiltonian,
    pub lattice: &'a Lattice,
    pub observables: &'a [ObservableSpec],
    /// The chains stay in one S^z sector (`total_sz`, or exchange moves without it), see
    /// [`local_values`].
    pub sz_sector: bool,
}

/// Draws `per_chain` more samples from every chain of `sampler` and measures everything
/// [`ResultsRecord`] holds on them, `batch` samples per chain at a time: the local values
/// (energy and Pauli strings, which need each sample's cache) are taken batch by batch, so the
/// memory holds one batch of caches — with a projected ansatz a cache holds one RBM cache per
/// group element — plus the configurations (N bytes per sample) and one number per sample and
/// operator. The samples do not depend on `batch`; local values only to rounding (each batch
/// starts from a freshly computed cache). `interrupted` is asked before every batch; `None`
/// when it says stop.
pub fn sample_and_measure<A: Ansatz>(
    sampler: &mut MetropolisSampler<A::Cache>,
    ansatz: &A,
    per_chain: usize,
    batch: usize,
    setup: &Setup<'_>,
    comm: &dyn Communicator,
    interrupted: &mut dyn FnMut() -> bool,
) -> Option<ResultsRecord> {
    let (n, chains) = (ansatz.n_sites(), setup.layout.local);
    debug_assert_eq!(
        chains,
        sampler.chains.len(),
        "one layout chain per sampler chain"
    );
    let total = chains * per_chain;
    let mut configurations = SampleSet {
        n_sites: n,
        samples_per_chain: per_chain,
        sigma: vec![0; total * n],
        caches: vec![(); total],
    };
    let operators: Vec<PauliSum> = std::iter::once(setup.hamiltonian.operator.clone())
        .chain(
            setup
                .observables
                .iter()
                .map(|o| setup.hamiltonian.observable(&o.ops, &o.sites)),
        )
        .collect();
    let mut values = vec![vec![Complex64::new(0.0, 0.0); total]; operators.len()];
    let mut part: Option<SampleSet<A::Cache>> = None;
    let mut done = 0;
    while done < per_chain {
        if interrupted() {
            return None;
        }
        let len = batch.max(1).min(per_chain - done);
        let samples = match part.as_mut() {
            Some(p) if p.samples_per_chain == len => p,
            _ => part.insert(sampler.sample_set_of(ansatz, len)),
        };
        sampler.sample_range(ansatz, samples, done..done + len);
        let mut local = vec![Complex64::new(0.0, 0.0); chains * len];
        for (op, out) in operators.iter().zip(&mut values) {
            local_values(op, ansatz, samples, setup.sz_sector, &mut local);
            for (c, chunk) in local.chunks(len).enumerate() {
                let first = c * per_chain + done;
                out[first..first + len].copy_from_slice(chunk);
            }
        }
        for (c, chunk) in samples.sigma.chunks(len * n).enumerate() {
            let first = (c * per_chain + done) * n;
            configurations.sigma[first..first + len * n].copy_from_slice(chunk);
        }
        done += len;
    }
    Some(results(&configurations, &values, setup, comm))
}

/// The [`ResultsRecord`] of the samples' configurations and their local values (`values[0]` the
/// energy's, then one per observable of `setup`).
fn results(
    samples: &SampleSet<()>,
    values: &[Vec<Complex64>],
    setup: &Setup<'_>,
    comm: &dyn Communicator,
) -> ResultsRecord {
    let Setup {
        layout,
        hamiltonian,
        lattice,
        observables,
        ..
    } = *setup;
    let n = lattice.n_sites();
    let energy = chain_statistics(&values[0], layout, comm);
    let (label, factor) = hamiltonian.units.zz();
    let (correlations, correlation_errors) = correlations(samples, layout, factor, comm);
    let coordinates = Array2::from_shape_fn((n, lattice.extent().len()), |(i, d)| {
        lattice.coordinates(i)[d] as f64
    });
    let momenta_index = lattice.momentum_indices();
    let momenta = Array2::from_shape_fn((momenta_index.len(), lattice.extent().len()), |(k, d)| {
        lattice.momentum(&momenta_index[k])[d]
    });
    let structure_factor = momenta_index
        .iter()
        .map(|m| {
            let q = lattice.momentum(m);
            let phases: Vec<Complex64> = (0..n)
                .map(|i| {
                    let r = lattice.coordinates(i);
                    Complex64::from_polar(1.0, r.iter().zip(&q).map(|(&x, qd)| x as f64 * qd).sum())
                })
                .collect();
            let sq: Vec<Complex64> = (0..samples.len())
                .into_par_iter()
                .map(|s| {
                    let amplitude: Complex64 = samples
                        .configuration(s)
                        .iter()
                        .zip(&phases)
                        .map(|(&z, p)| p * f64::from(z))
                        .sum();
                    Complex64::new(factor * amplitude.norm_sqr() / n as f64, 0.0)
                })
                .collect();
            estimate(&chain_statistics(&sq, layout, comm))
        })
        .collect();
    let spin = factor.sqrt(); // 1 (Pauli) or ½ (S^z)
    let (m, m_abs): (Vec<Complex64>, Vec<Complex64>) = (0..samples.len())
        .map(|s| {
            let total: f64 = samples.configuration(s).iter().map(|&z| f64::from(z)).sum();
            let m = spin * total / n as f64;
            (Complex64::new(m, 0.0), Complex64::new(m.abs(), 0.0))
        })
        .unzip();
    let pauli = observables
        .iter()
        .zip(&values[1..])
        .map(|(o, v)| {
            let s = chain_statistics(v, layout, comm);
            (o.name.clone(), estimate(&s), s.mean.im)
        })
        .collect();
    ResultsRecord {
        units: hamiltonian.units.name().into(),
        samples: samples.len() / layout.local.max(1) * layout.total,
        energy: estimate(&energy),
        energy_variance: energy.variance,
        r_hat: energy.r_hat,
        tau: energy.tau,
        correlation_label: label.into(),
        correlations,
        correlation_errors,
        coordinates,
        momenta,
        structure_factor,
        magnetization: estimate(&chain_statistics(&m, layout, comm)),
        abs_magnetization: estimate(&chain_statistics(&m_abs, layout, comm)),
        pauli,
    }
}

/// `factor·⟨Z_i Z_j⟩` with the error of the mean from per-chain means (sums of chain means and of
/// their squares reduced over processes).
fn correlations<C: Sync>(
    samples: &SampleSet<C>,
    layout: ChainLayout,
    factor: f64,
    comm: &dyn Communicator,
) -> (Array2<f64>, Array2<f64>) {
    let n = samples.n_sites;
    let per_chain = samples.samples_per_chain;
    let chain_means: Vec<Array2<f64>> = (0..layout.local)
        .into_par_iter()
        .map(|c| {
            let mut m = Array2::<f64>::zeros((n, n));
            for s in c * per_chain..(c + 1) * per_chain {
                let sigma = samples.configuration(s);
                for i in 0..n {
                    for j in 0..n {
                        m[[i, j]] += f64::from(sigma[i] * sigma[j]) * factor;
                    }
                }
            }
            m / per_chain.max(1) as f64
        })
        .collect();
    let mut sums = Array2::<f64>::zeros((2, n * n));
    for m in &chain_means {
        for (k, v) in m.iter().enumerate() {
            sums[[0, k]] += v;
            sums[[1, k]] += v * v;
        }
    }
    comm.sum_f64(sums.as_slice_mut().expect("contiguous"));
    let k = layout.total as f64;
    let mean = Array2::from_shape_fn((n, n), |(i, j)| sums[[0, i * n + j]] / k);
    let error = Array2::from_shape_fn((n, n), |(i, j)| {
        let m = mean[[i, j]];
        let var = ((sums[[1, i * n + j]] - k * m * m) / (k - 1.0).max(1.0)).max(0.0);
        (var / k).sqrt()
    });
    (mean, error)
}

/// `S(q) = (1/N) Σ_ij e^{i q·(r_j − r_i)} C_ij` of a correlation matrix on the momentum grid of a
/// chain or square lattice (empty for custom graphs): `(q, S(q))`.
pub fn structure_factor(lattice: &Lattice, c: &Array2<f64>) -> Vec<(Vec<f64>, f64)> {
    let n = lattice.n_sites();
    let coords: Vec<Vec<usize>> = (0..n).map(|i| lattice.coordinates(i)).collect();
    lattice
        .momentum_indices()
        .into_iter()
        .map(|m| {
            let q = lattice.momentum(&m);
            let mut s = 0.0;
            for i in 0..n {
                for j in 0..n {
                    let phase: f64 = q
                        .iter()
                        .enumerate()
                        .map(|(d, qd)| qd * (coords[j][d] as f64 - coords[i][d] as f64))
                        .sum();
                    s += phase.cos() * c[[i, j]];
                }
            }
            (q, s / n as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, ops: &str, sites: &[usize]) -> ObservableSpec {
        ObservableSpec {
            name: name.into(),
            ops: ops.into(),
            sites: sites.to_vec(),
        }
    }

    #[test]
    fn observables_are_checked_before_anything_runs() {
        assert!(validate_observables(&[spec("zz", "ZZ", &[0, 1])], 4).is_ok());
        let e = validate_observables(&[spec("zz", "ZZ", &[0, 9])], 4).unwrap_err();
        assert_eq!(e.key, "observables[0].sites");
        let e = validate_observables(&[spec("a", "Z", &[0]), spec("a", "X", &[1])], 4).unwrap_err();
        assert!(e.message.contains("also the name"), "{e:?}");
        let e = validate_observables(&[spec("a/b", "Z", &[0])], 4).unwrap_err();
        assert_eq!(e.key, "observables[0].name");
        assert_eq!(
            parse_observable("zz:ZZ:0,1").unwrap(),
            spec("zz", "ZZ", &[0, 1])
        );
        assert!(parse_observable("zz:ZZ").is_err());
    }
}
