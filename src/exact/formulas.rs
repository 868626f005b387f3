//! Exact ground-state energies from closed forms, for sizes beyond exact diagonalization.
//!
//! All functions return energies in Pauli units (`σ`); divide by 4 (two-spin terms) or 2 (field
//! terms) for spin units as [`reference_energy`] does.

use crate::error::{Error, Result};
use crate::lattice::{Boundary, LatticeSpec};
use crate::operator::{ModelKind, ModelSpec, Units};
use ndarray::{Array1, Array2};

/// Ground-state energy of the periodic spin-1/2 Heisenberg chain `H = J Σ_i σ_i·σ_{i+1}`
/// (Pauli units, J > 0, L even ≥ 4) from the Bethe ansatz.
///
/// M = L/2 rapidities solve `L·atan(2λ_j) = π I_j + Σ_{k≠j} atan(λ_j − λ_k)` with
/// `I_j = −(M−1)/2, …, (M−1)/2`; in spin units `E = J L/4 − J Σ_j 2/(1 + 4λ_j²)`.
/// Solved by Newton's method from the free-magnon guess `λ_j = tan(π I_j/L)/2`.
pub fn bethe_heisenberg_chain(length: usize, coupling: f64) -> Result<f64> {
    if length < 4 || length % 2 == 1 {
        return Err(Error::Input(format!(
            "the Bethe-ansatz reference needs an even chain length ≥ 4, got {length}"
        )));
    }
    let l = length as f64;
    let m = length / 2;
    let quantum: Vec<f64> = (0..m).map(|j| j as f64 - (m as f64 - 1.0) / 2.0).collect();
    let mut lambda = Array1::from_iter(
        quantum
            .iter()
            .map(|i| 0.5 * (std::f64::consts::PI * i / l).tan()),
    );
    // Residual F_j of the logarithmic Bethe equations and, on request, its Jacobian.
    let system = |lambda: &Array1<f64>, with_jacobian: bool| -> (Array1<f64>, Array2<f64>) {
        let mut f = Array1::<f64>::zeros(m);
        let mut jac = Array2::<f64>::zeros(if with_jacobian { (m, m) } else { (0, 0) });
        for j in 0..m {
            let mut value = l * (2.0 * lambda[j]).atan() - std::f64::consts::PI * quantum[j];
            let mut diag = 2.0 * l / (1.0 + 4.0 * lambda[j] * lambda[j]);
            for k in 0..m {
                if k != j {
                    let d = lambda[j] - lambda[k];
                    value -= d.atan();
                    if with_jacobian {
                        let g = 1.0 / (1.0 + d * d);
                        diag -= g;
                        jac[[j, k]] = g;
                    }
                }
            }
            if with_jacobian {
                jac[[j, j]] = diag;
            }
            f[j] = value;
        }
        (f, jac)
    };
    let norm = |f: &Array1<f64>| f.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _ in 0..200 {
        let (f, jac) = system(&lambda, true);
        let f_norm = norm(&f);
        if f_norm < 1e-11 * l {
            let spin_units = l / 4.0
                - lambda
                    .iter()
                    .map(|x| 2.0 / (1.0 + 4.0 * x * x))
                    .sum::<f64>();
            return Ok(4.0 * coupling * spin_units);
        }
        let mut step = f.to_vec();
        crate::linalg::lu_solve(jac.view(), &mut step)
            .map_err(|e| Error::Numerical(format!("Bethe ansatz Newton step failed: {e}")))?;
        let step = Array1::from(step);
        // Backtracking: halve the step until the residual decreases.
        let mut damping = 1.0;
        let mut trial = &lambda - &step;
        while damping > 1e-6 && norm(&system(&trial, false).0) >= f_norm {
            damping *= 0.5;
            trial = &lambda - &(&step * damping);
        }
        lambda = trial;
    }
    Err(Error::Numerical(
        "Bethe ansatz equations did not converge".into(),
    ))
}

/// Ground-state energy of the transverse-field Ising chain `H = −J Σ Z_i Z_{i+1} − h Σ X_i`
/// (Pauli units) from its Jordan–Wigner free fermions.
///
/// After a Hadamard rotation and Jordan–Wigner, `H = Σ c†Ac + ½Σ(c†Bc† + h.c.) − hL` with
/// `A_ii = 2h`, `A_ij = −J s`, `B_ij = −J s = −B_ji` on bonds (i, j = i+1) with sign s; the
/// Bogoliubov vacuum has energy `−hL + ½(Tr A − Σ_k Λ_k)` (Λ_k the singular values of A − B)
/// and fermion parity `sign det(A − B)`. The open chain is the vacuum. On the periodic chain
/// the boundary bond carries `s = −P`: the even-parity sector (P = +1) uses antiperiodic
/// fermions, the odd one periodic fermions; a sector whose vacuum has the wrong parity costs
/// the smallest Λ. The ground state is the lower of the two sectors.
pub fn free_fermion_tfi_chain(
    length: usize,
    coupling: f64,
    field: f64,
    boundary: Boundary,
) -> Result<f64> {
    let sector = |boundary_sign: Option<f64>, parity: Option<f64>| -> Result<f64> {
        let n = length;
        let mut a = Array2::<f64>::zeros((n, n));
        let mut b = Array2::<f64>::zeros((n, n));
        for i in 0..n {
            a[[i, i]] = 2.0 * field;
        }
        let mut bonds: Vec<(usize, usize, f64)> = (0..n - 1).map(|i| (i, i + 1, 1.0)).collect();
        if let Some(s) = boundary_sign {
            bonds.push((n - 1, 0, s));
        }
        for (i, j, s) in bonds {
            a[[i, j]] += -coupling * s;
            a[[j, i]] += -coupling * s;
            b[[i, j]] += -coupling * s;
            b[[j, i]] -= -coupling * s;
        }
        let amb = &a - &b;
        let sv = crate::linalg::singular_values(amb.view())
            .map_err(|e| Error::Numerical(format!("free-fermion SVD failed: {e}")))?;
        let vacuum = -field * n as f64 + 0.5 * (a.diag().sum() - sv.iter().sum::<f64>());
        match parity {
            None => Ok(vacuum),
            Some(p) => {
                let det = crate::linalg::determinant(amb.view()).map_err(|e| {
                    Error::Numerical(format!("free-fermion determinant failed: {e}"))
                })?;
                let vacuum_parity = if det >= 0.0 { 1.0 } else { -1.0 };
                if vacuum_parity == p {
                    Ok(vacuum)
                } else {
                    Ok(vacuum + sv.iter().copied().fold(f64::INFINITY, f64::min))
                }
            }
        }
    };
    if length < 2 {
        return Err(Error::Input(
            "the free-fermion reference needs at least 2 sites".into(),
        ));
    }
    match boundary {
        Boundary::Open => sector(None, None),
        Boundary::Periodic => {
            Ok(sector(Some(-1.0), Some(1.0))?.min(sector(Some(1.0), Some(-1.0))?))
        }
    }
}

/// Ground-state energy of the J1-J2 chain at the Majumdar–Ghosh point J2 = J1/2 (periodic,
/// even L ≥ 6): `−3 J1 L/8` in spin units, `−3 J1 L/2` in Pauli units.
pub fn majumdar_ghosh(length: usize, coupling: f64) -> f64 {
    -1.5 * coupling * length as f64
}

/// An exact reference for a model, when a closed form applies: (energy in the model's units,
/// method name). Closed forms are for the physical Hamiltonian, which the Marshall rotation
/// does not change.
pub fn reference_energy(lattice: &LatticeSpec, model: &ModelSpec) -> Option<(f64, &'static str)> {
    let LatticeSpec::Chain(chain) = lattice else {
        return None;
    };
    let (length, periodic) = (chain.length, chain.boundary == Boundary::Periodic);
    let spin = model.units == Units::Spin;
    let sector_zero = model.total_sz.is_none_or(|s| s == 0.0);
    match &model.kind {
        ModelKind::Heisenberg(s)
            if periodic && length % 2 == 0 && length >= 4 && s.J > 0.0 && sector_zero =>
        {
            let e = bethe_heisenberg_chain(length, s.J).ok()?;
            Some((if spin { e / 4.0 } else { e }, "bethe_ansatz"))
        }
        ModelKind::Tfi(s) if model.total_sz.is_none() => {
            let (jz, h) = if spin {
                (s.J / 4.0, s.h / 2.0)
            } else {
                (s.J, s.h)
            };
            let e = free_fermion_tfi_chain(length, jz, h, chain.boundary).ok()?;
            Some((e, "free_fermions"))
        }
        ModelKind::J1j2(s)
            if periodic
                && length % 2 == 0
                && length >= 6
                && s.J > 0.0
                && (s.J2 - 0.5 * s.J).abs() < 1e-15 * s.J.abs()
                && sector_zero =>
        {
            let e = majumdar_ghosh(length, s.J);
            Some((if spin { e / 4.0 } else { e }, "majumdar_ghosh"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bethe_ansatz_small_and_thermodynamic() {
        // L = 4: E = −2J in spin units (−8 in Pauli units).
        assert!((bethe_heisenberg_chain(4, 1.0).unwrap() + 8.0).abs() < 1e-12);
        // Energy per site approaches 1/4 − ln 2 (spin units).
        let e = bethe_heisenberg_chain(1000, 1.0).unwrap() / 4.0 / 1000.0;
        assert!((e - (0.25 - 2f64.ln())).abs() < 1e-6, "{e}");
    }

    #[test]
    fn free_fermions_limits() {
        // h = 0: classical Ising, E = −J·(number of bonds).
        assert!(
            (free_fermion_tfi_chain(6, 1.0, 0.0, Boundary::Periodic).unwrap() + 6.0).abs() < 1e-12
        );
        assert!((free_fermion_tfi_chain(6, 1.0, 0.0, Boundary::Open).unwrap() + 5.0).abs() < 1e-12);
        // J = 0: free spins, E = −hL.
        assert!(
            (free_fermion_tfi_chain(5, 0.0, 0.7, Boundary::Periodic).unwrap() + 3.5).abs() < 1e-12
        );
    }
}
